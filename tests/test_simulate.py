"""The survey simulator: sncosmo templates on the real ZTF observing log and on LSST's
PLAsTiCC cadences."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from astrot2.cli import main
from astrot2.io.labelled import read_labelled
from astrot2.lightcurves import LightCurveBatch
from astrot2.photometry import distance_modulus

sncosmo = pytest.importorskip("sncosmo")

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def pointings(shared_data):
    from astrot2.simulate import read_pointings

    return read_pointings(shared_data / "surveys" / "ztf_pointings.csv.gz")


@pytest.fixture(scope="module")
def plasticc(shared_data):
    from astrot2.io import read_file

    root = shared_data / "plasticc"
    return read_file(root / "training_set.csv.gz", format="plasticc",
                     metadata=root / "training_set_metadata.csv")


@pytest.fixture(scope="module")
def lsst_pointings(plasticc):
    from astrot2.simulate import pointings_from_light_curves

    return pointings_from_light_curves(plasticc)


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


def _assert_same_batch(a, b) -> None:
    """Two simulated batches hold the same objects, points and labels (NaN = NaN)."""
    np.testing.assert_array_equal(a.object_id, b.object_id)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    for col in ("time", "flux", "flux_err", "band", "detected"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    assert set(a.extra) == set(b.extra)
    for key in a.extra:
        np.testing.assert_array_equal(a.extra[key], b.extra[key])


def test_output_is_the_same_whatever_the_number_of_workers(sncosmo_dir, pointings):
    """Chunks draw from streams of their own: one process or two give the same table, and
    the first chunk's objects do not depend on how many objects follow."""
    from astrot2.simulate import CHUNK, simulate

    one = simulate(CHUNK + 20, pointings, seed=6, data_dir=sncosmo_dir, workers=1)
    two = simulate(CHUNK + 20, pointings, seed=6, data_dir=sncosmo_dir, workers=2)
    _assert_same_batch(one, two)
    first = simulate(CHUNK, pointings, seed=6, data_dir=sncosmo_dir)
    _assert_same_batch(first, one.take(np.arange(CHUNK)))
    assert len(set(one.extra["template"])) > 5  # the chunks' draws differ


def test_template_families_are_disjoint(sncosmo_dir, pointings):
    """``templates="v19"`` draws only Vincenzi et al. 2019's core-collapse templates,
    ``"classic"`` none of them; SNe Ia are SALT2 in both: a training simulation and a check
    simulation whose core-collapse supernovae differ."""
    from astrot2.errors import ConfigError
    from astrot2.simulate import SimulateConfig, simulate

    drawn = {}
    for family in ("v19", "classic"):
        batch = simulate(60, pointings, SimulateConfig(limit_mag=19.0, templates=family),
                         seed=3, data_dir=sncosmo_dir)
        cc = batch.extra["target"] != 90
        assert cc.sum() > 5 and (batch.extra["template"][~cc] == "salt2").all()
        drawn[family] = {str(t) for t in batch.extra["template"][cc]}
    assert all(t.startswith("v19-") for t in drawn["v19"])
    assert not any(t.startswith("v19-") for t in drawn["classic"])
    with pytest.raises(ConfigError, match="templates"):
        SimulateConfig(templates="v20")


def test_hsiao_sn_ia_model(sncosmo_dir, pointings):
    """``ia_model="hsiao"`` draws SNe Ia from Hsiao's template (core collapse unchanged), with
    the same luminosity function as SALT2's; an unknown model is a ConfigError."""
    from astrot2.errors import ConfigError
    from astrot2.simulate import SimulateConfig, simulate

    batch = simulate(60, pointings, SimulateConfig(limit_mag=19.0, ia_model="hsiao"),
                     seed=3, data_dir=sncosmo_dir)
    ia = batch.extra["target"] == 90
    assert ia.sum() > 5 and (batch.extra["template"][ia] == "hsiao").all()
    assert not np.isin(batch.extra["template"][~ia], ["hsiao", "salt2"]).any()
    assert np.isfinite(batch.flux).all()
    with pytest.raises(ConfigError, match="ia_model"):
        SimulateConfig(ia_model="salt3")


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


def test_lsst_pointings_are_plasticc_visits_with_their_sky_depth(plasticc, lsst_pointings):
    p = lsst_pointings
    np.testing.assert_array_equal(p["field_start"], plasticc.offsets)
    np.testing.assert_array_equal(p["mjd"], plasticc.time)
    assert str(p["survey"][0]) == "lsst" and p["band"].max() == 5
    quiet = ~plasticc.detected  # a non-detection's error is its sky noise
    np.testing.assert_allclose(p["depth"][quiet],
                               27.5 - 2.5 * np.log10(5 * plasticc.flux_err[quiet]))
    # a detection: the median non-detection error of its object and band (checked on the
    # first 200 objects' bright detections, whose error also holds the source's photons)
    checked = 0
    for i in range(200):
        lc, s = plasticc[i], plasticc.offsets[i]
        for band in np.unique(lc.band[lc.detected]):
            quiet = (lc.band == band) & ~lc.detected
            if quiet.any():
                sky = np.median(lc.flux_err[quiet])
                bright = np.flatnonzero(lc.detected & (lc.band == band) & (lc.flux_err > sky))
                np.testing.assert_allclose(p["depth"][s + bright],
                                           27.5 - 2.5 * np.log10(5 * sky))
                checked += len(bright)
    assert checked > 100
    np.testing.assert_array_equal(p["ddf_bool"], plasticc.extra["ddf_bool"])
    ddf = np.repeat(p["ddf_bool"], np.diff(p["field_start"])) == 1
    r = p["band"] == 2  # deep drilling fields go deeper than the wide survey
    assert np.median(p["depth"][r & ddf]) > np.median(p["depth"][r & ~ddf]) + 0.5


def test_lsst_simulation_keeps_forced_photometry_and_photoz(sncosmo_dir, lsst_pointings,
                                                           pointings):
    from astrot2.simulate import SimulateConfig, simulate

    config = SimulateConfig(survey="lsst")
    assert (config.limit_mag, config.z_max) == (26.0, 1.5)
    a = simulate(12, lsst_pointings, config, seed=3, data_dir=sncosmo_dir)
    c = simulate(12, lsst_pointings, config, seed=4, data_dir=sncosmo_dir)
    b = simulate(12, lsst_pointings, config, seed=3, data_dir=sncosmo_dir)
    assert len(a) == 12 and a.survey.name == "lsst" and set(a.band) <= set(range(6))
    for col in ("time", "flux", "flux_err", "band", "detected"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    np.testing.assert_array_equal(a.metadata["hostgal_photoz"], b.metadata["hostgal_photoz"])
    assert not np.array_equal(a.extra["redshift"], c.extra["redshift"])
    n_det = a.reduce(a.detected.astype(float), np.add, 0.0)
    assert (n_det >= 2).all()
    assert (a.flux[a.detected] >= 5 * a.flux_err[a.detected]).all()
    # forced photometry: non-detections keep their measured flux (either sign) and error
    quiet = ~a.detected
    assert (a.flux[quiet] != 0).all() and (a.flux[quiet] < 0).any()
    assert (a.flux[quiet] < 5 * a.flux_err[quiet]).all() and (a.flux_err > 0).all()
    z = a.extra["redshift"]
    np.testing.assert_array_equal(a.extra["hostgal_specz"], z)
    np.testing.assert_allclose(a.metadata["hostgal_photoz_err"], 0.03 * (1 + z))
    assert (a.metadata["hostgal_photoz"] > 0).all() and (a.metadata["mwebv"] == 0).all()
    assert (np.abs(a.metadata["hostgal_photoz"] - z) < 5 * 0.03 * (1 + z)).all()
    assert z.max() <= 1.5 and set(a.extra["target"]) <= {90, 42, 62}
    assert set(a.extra["ddf_bool"]) <= {0.0, 1.0}
    # a ZTF observing log is not an LSST cadence
    from astrot2.errors import ConfigError

    with pytest.raises(ConfigError, match="pointings of ztf"):
        simulate(2, pointings, config, data_dir=sncosmo_dir)


def test_lsst_survey_span_observes_every_visit_of_the_field(sncosmo_dir, lsst_pointings):
    """``span="survey"``: every visit of the field (PLAsTiCC's ~3-year light curves), no
    source flux far from the supernova; ``template`` keeps ~6 months; ZTF refuses it."""
    from astrot2.errors import ConfigError
    from astrot2.simulate import SimulateConfig, simulate

    spans = {}
    for span in ("template", "survey"):
        config = SimulateConfig(survey="lsst", span=span, classes=("SNIa",))  # SALT2: 50 d
        batch = simulate(12, lsst_pointings, config, seed=3, data_dir=sncosmo_dir)
        spans[span] = batch.reduce(batch.time, np.maximum, -np.inf) - batch.reduce(
            batch.time, np.minimum, np.inf)
        if span == "survey":
            far = np.abs(batch.time - np.repeat(batch.extra["peak_mjd"],
                                                np.diff(batch.offsets))) > 400
            assert far.sum() > 100 and not batch.detected[far].any()
            assert np.abs(batch.flux[far] / batch.flux_err[far]).mean() < 1.5  # noise only
    assert spans["template"].max() < 400 and np.median(spans["survey"]) > 600
    with pytest.raises(ConfigError, match="span"):
        SimulateConfig(survey="ztf", span="survey")


@pytest.mark.parametrize(("z", "band"), [(0.41, "lsstr"), (0.715, "lssti"), (0.975, "lsstz")])
def test_lsst_snia_peak_flux_follows_the_distance_modulus(sncosmo_dir, z, band):
    """In the LSST band that sees the redshifted B band, a SN Ia peaks at
    ``M_B + mu(z) - 2.5 log10(1 + z)`` (AB: the K-correction of a matched band); mu from
    astrot2's own integral, the flux from sncosmo's SALT2 through Rubin's bandpass."""
    from astrot2.simulate import CLASSES_SIMULATED, SIM_SURVEYS, set_parameters

    assert band in SIM_SURVEYS["lsst"].bandpasses
    model = sncosmo.Model(source=sncosmo.get_source("salt2", version="2.4"))
    for seed in range(3):
        m_abs = set_parameters(model, CLASSES_SIMULATED[0].subtypes[0], z,
                               np.random.default_rng(seed))
        t = np.linspace(-15, 30, 451) * (1 + z)
        peak = 27.5 - 2.5 * np.log10(model.bandflux(band, t, zp=27.5, zpsys="ab").max())
        expected = m_abs + distance_modulus(np.array([z]))[0] - 2.5 * np.log10(1 + z)
        # within bandpass mismatch and sncosmo's WMAP9 distances (~0.02 mag from ours)
        assert peak == pytest.approx(expected, abs=0.06)


def test_cli_simulates_lsst_into_a_labelled_table(sncosmo_dir, shared_data, tmp_path,
                                                  monkeypatch, capsys):
    monkeypatch.setenv("ASTROT2_SNCOSMO_DIR", str(sncosmo_dir))
    monkeypatch.setenv("ASTROT2_DATA", str(shared_data))
    out = tmp_path / "sim-lsst.parquet"
    assert main(["simulate", "--survey", "lsst", "--n", "5", "-o", str(out), "--seed",
                 "1"]) == 0
    real = read_labelled(out)
    assert len(real.batch) == 5 and real.batch.survey.name == "lsst"
    assert np.isfinite(real.batch.metadata["hostgal_photoz"]).all()
    assert set(real.batch.extra) >= {"target", "redshift", "hostgal_specz", "ddf_bool"}
    capsys.readouterr()
    assert main(["simulate", "--survey", "lsst", "--n", "5", "-o", str(tmp_path / "x.parquet"),
                 "--pointings", str(tmp_path / "training_set.csv.gz")]) == 2
    err = capsys.readouterr().err
    assert "astrot2 data fetch plasticc" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("length, slope", [(100.0, 0.3), (70.0, 2.0)])
def test_plateau_source_follows_its_parametrisation(sncosmo_dir, length, slope):
    """The analytic plateau supernova: no light before the explosion, its V band 1 at phase
    0, declining by ``slope`` magnitudes per 100 days on the plateau, dropping by about
    ``drop`` magnitudes around ``length`` days, then fading as 56Co; its colour reddening as
    the photosphere cools."""
    from astrot2.simulate import PLATEAU_PHYSICS, plateau_source

    zero = 10.0
    model = sncosmo.Model(source=plateau_source(length, slope, zero))
    assert float(model.source.flux(0.0, 5500.0)) == pytest.approx(1.0, rel=1e-6)
    assert float(model.source.flux(-zero - 1.0, 5500.0)) == 0.0

    def v(day: float) -> float:  # the V-band parametrisation: the flux at 5500 A
        return -2.5 * np.log10(float(model.source.flux(day - zero, 5500.0)))

    assert v(length - 30.0) - v(30.0) == pytest.approx(slope * (length - 60.0) / 100.0,
                                                      abs=0.01)
    drop = v(length + 25.0) - v(length - 25.0)
    expected = (PLATEAU_PHYSICS["drop"] + slope * 0.25
                + PLATEAU_PHYSICS["tail"] * 0.25)
    assert drop == pytest.approx(expected, abs=0.03)
    assert v(length + 100.0) - v(length + 50.0) == pytest.approx(
        PLATEAU_PHYSICS["tail"] / 2.0, abs=0.01)

    def b_minus_v(day: float) -> float:
        return float(model.bandmag("bessellb", "ab", day - zero)
                     - model.bandmag("bessellv", "ab", day - zero))

    assert b_minus_v(50.0) > b_minus_v(5.0) + 0.5
