"""The ZTF survey simulator: sncosmo templates on the real ZTF observing log."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from astrot2.augment import distance_modulus
from astrot2.cli import main
from astrot2.io.labelled import read_labelled
from astrot2.lightcurves import LightCurveBatch

sncosmo = pytest.importorskip("sncosmo")

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def sncosmo_dir(shared_data, tmp_path_factory):
    """sncosmo's templates unpacked from the data folder (astrot2 data fetch sncosmo)."""
    import os

    from astrot2.data import fetch_dataset

    old = os.environ.get("ASTROT2_DATA")
    os.environ["ASTROT2_DATA"] = str(shared_data)
    try:
        path = fetch_dataset("sncosmo", tmp_path_factory.mktemp("cache"), source="local",
                             progress=False)
    finally:
        if old is None:
            os.environ.pop("ASTROT2_DATA")
        else:
            os.environ["ASTROT2_DATA"] = old
    sncosmo.conf.data_dir = str(path)
    return path


@pytest.fixture(scope="module")
def pointings(shared_data):
    from astrot2.simulate import read_pointings

    return read_pointings(shared_data / "surveys" / "ztf_pointings.csv.gz")


def test_salt2_snia_peaks_at_its_absolute_magnitude_and_rises_faster(sncosmo_dir):
    from astrot2.simulate import CLASSES_SIMULATED, set_parameters

    model = sncosmo.Model(source=sncosmo.get_source("salt2", version="2.4"))
    subtype = CLASSES_SIMULATED[0].subtypes[0]
    m_abs = set_parameters(model, subtype, 0.05, np.random.default_rng(1))
    assert m_abs == pytest.approx(-19.3, abs=1.0)
    # rest-frame B peak: M_B + distance modulus (sncosmo's own bandpass)
    assert model.source_peakabsmag("bessellb", "ab") == pytest.approx(m_abs, abs=1e-6)
    t = np.linspace(-20, 60, 801)
    g = model.bandflux("ztfg", t, zp=27.5, zpsys="ab")
    peak_mag = 27.5 - 2.5 * np.log10(g.max())
    mu = distance_modulus(np.array([0.05]))[0]
    assert peak_mag == pytest.approx(m_abs + mu, abs=0.25)  # g ~ rest-frame B at z = 0.05
    i = int(g.argmax())
    rise = t[i] - t[:i][g[:i] < g.max() / 2].max()
    fall = t[i:][g[i:] < g.max() / 2].min() - t[i]
    assert rise < fall
    # the same draw gives the same model whatever the model object simulated before
    before = model.parameters.copy()
    set_parameters(model, subtype, 0.12, np.random.default_rng(7))
    set_parameters(model, subtype, 0.05, np.random.default_rng(1))
    np.testing.assert_array_equal(model.parameters, before)


def test_simulation_is_deterministic_and_sane(sncosmo_dir, pointings):
    from astrot2.simulate import SimulateConfig, simulate

    config = SimulateConfig(limit_mag=19.0)
    a = simulate(25, pointings, config, seed=4, data_dir=sncosmo_dir)
    b = simulate(25, pointings, config, seed=4, data_dir=sncosmo_dir)
    c = simulate(25, pointings, config, seed=5, data_dir=sncosmo_dir)
    assert len(a) == 25 and a.survey.name == "ztf"
    for col in ("time", "flux", "flux_err", "band", "detected"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    assert not np.array_equal(a.extra["redshift"], c.extra["redshift"])
    n_det = a.reduce(a.detected.astype(float), np.add, 0.0)
    assert (n_det >= 2).all()
    peak = a.reduce(np.where(a.detected, a.flux, np.nan), np.fmax)
    assert (27.5 - 2.5 * np.log10(peak) < 19.0 + 0.5).all()  # noise can add a little
    assert (a.flux[~a.detected] == 0).all() and (a.flux_err > 0).all()
    assert set(a.extra["target"]) <= {90, 42, 62}
    # detections are >= 5 sigma
    assert (a.flux[a.detected] >= 5 * a.flux_err[a.detected] - 1e-9).all()


def test_cli_writes_a_labelled_table(sncosmo_dir, shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASTROT2_SNCOSMO_DIR", str(sncosmo_dir))
    monkeypatch.setenv("ASTROT2_DATA", str(shared_data))
    out = tmp_path / "sim.parquet"
    assert main(["simulate", "--survey", "ztf", "--n", "8", "-o", str(out), "--seed",
                 "2"]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 8
    real = read_labelled(out)
    again = LightCurveBatch.from_arrow(table)
    np.testing.assert_array_equal(real.batch.flux, again.flux)
    assert set(real.batch.extra) >= {"target", "redshift", "peak_mjd", "type"}
    assert main(["simulate", "--survey", "ztf", "--n", "0", "-o", str(tmp_path / "x.parquet")
                 ]) == 2
