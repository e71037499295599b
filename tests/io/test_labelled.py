"""Readers of real labelled ZTF light curves, on committed real fixtures (tests/data/labelled)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyarrow import csv

from astrot2.classes import CLASSES
from astrot2.errors import AlertFormatError
from astrot2.io.labelled import SPECTRAL_CLASSES, detect_layout, read_labelled, spectral_class
from astrot2.photometry import mag_to_fluxcal

DATA = Path(__file__).resolve().parent.parent / "data" / "labelled"
CODE = {c.name: c.code for c in CLASSES}


@pytest.mark.parametrize(("spectral", "cls"), [
    ("SN Ia", "SNIa"), ("SN Ia-91T", "SNIa"), ("SN Ia-91bg", "SNIa-91bg"), ("SN Iax", "SNIax"),
    ("SN II", "SNII"), ("SN IIP", "SNII"), ("SN IIL", "SNII"), ("SN IIn", "SNII"),
    ("SN IIb", "SNII"), ("SN Ib", "SNIbc"), ("SN Ic", "SNIbc"), ("SN Ic-BL", "SNIbc"),
    ("SN Ibn", "SNIbc"), ("SLSN-I", "SLSN-I"), ("TDE", "TDE"), ("nova", None),
    ("SLSN-II", None), ("SN Ia-CSM", None), ("LBV", None), (" SN Ia ", "SNIa")])
def test_type_map(spectral, cls):
    assert spectral_class(spectral) == cls


def test_type_map_targets_are_model_classes():
    assert set(SPECTRAL_CLASSES.values()) <= set(CODE)


def test_bts_reader():
    assert detect_layout(DATA / "bts") == "bts"
    real = read_labelled(DATA / "bts")
    b = real.batch
    assert b.survey.name == "ztf"
    assert real.kept_out == {"nova": 1}
    assert real.class_counts() == {"SNIa": 3, "SNII": 3, "SNIbc": 2, "SLSN-I": 1}
    assert list(b.object_id) == sorted(b.object_id)
    # one light curve, point by point: ANTARES magnitudes -> FLUXCAL, R -> ZTF r
    oid = b.object_id[0]
    t = csv.read_csv(DATA / "bts" / "light-curves" / f"{oid}.csv").to_pydict()
    lc = b[0]
    order = np.argsort(t["ant_mjd"], kind="stable")
    flux, err = mag_to_fluxcal(np.array(t["ant_mag"])[order], np.array(t["ant_magerr"])[order])
    np.testing.assert_allclose(lc.time, np.array(t["ant_mjd"])[order])
    np.testing.assert_allclose(lc.flux, flux)
    np.testing.assert_allclose(lc.flux_err, err)
    bands = np.array(t["ant_passband"])[order]
    np.testing.assert_array_equal(lc.band, np.where(bands == "g", 0, 1))
    assert lc.detected.all()
    # labels stay out of the model inputs: no host redshift in the metadata
    assert np.isnan(b.metadata["hostgal_photoz"]).all()
    assert np.isfinite(b.extra["redshift"]).all()
    labels = csv.read_csv(DATA / "bts" / "labels.csv").to_pydict()
    row = labels["ZTFID"].index(oid)
    assert b.extra["peak_mjd"][0] == pytest.approx(labels["peakt"][row] + 58000.0)
    assert b.extra["type"][0] == labels["type"][row]
    assert b.extra["target"][0] == CODE[spectral_class(labels["type"][row])]


def test_lcdata_reader():
    assert detect_layout(DATA / "lcdata") == "lcdata"
    real = read_labelled(DATA / "lcdata")
    assert len(real.batch) == 2 and real.kept_out == {"SN Ia-pec": 1}
    assert set(real.batch.extra["source"]) == {"lcdata"}
    assert (real.batch.n_points > 5).all()


def test_alerce_reader_keeps_limits_as_non_detections():
    assert detect_layout(DATA / "alerce") == "alerce"
    real = read_labelled(DATA / "alerce")
    b = real.batch
    assert len(b) == 4
    assert (~b.detected).any() and b.detected.any()
    assert (b.flux[~b.detected] == 0).all()
    assert set(b.extra["source"]) == {"alerce"}


def test_not_a_labelled_folder(tmp_path):
    with pytest.raises(AlertFormatError, match="not a folder of labelled light curves"):
        read_labelled(tmp_path)


def test_labelled_table_round_trip(tmp_path):
    """A labelled batch written as the project's light-curve table reads back the same."""
    import pyarrow.parquet as pq

    from astrot2.lightcurves import LightCurveBatch

    b = read_labelled(DATA / "alerce").batch
    path = tmp_path / "lc.parquet"
    pq.write_table(b.to_arrow(), path)
    again = read_labelled(path)
    assert again.kept_out == {}
    for col in ("time", "flux", "flux_err", "band", "detected", "offsets"):
        np.testing.assert_array_equal(getattr(again.batch, col), getattr(b, col))
    for key in ("target", "type", "source"):
        np.testing.assert_array_equal(again.batch.extra[key], b.extra[key])
    np.testing.assert_array_equal(again.batch.object_id, b.object_id)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pq.read_table(path).drop(["extra.target"]), plain)
    with pytest.raises(AlertFormatError, match="without labels"):
        read_labelled(plain)
    with pytest.raises(ValueError, match="not an astrot2 light-curve table"):
        LightCurveBatch.from_arrow(pq.read_table(path).replace_schema_metadata({}))


def test_data_fetch_copies_a_local_labelled_set(tmp_path, monkeypatch):
    from astrot2.cli import main

    monkeypatch.setenv("ASTROT2_DATA", str(tmp_path / "data"))
    (tmp_path / "data" / "ztf-labelled").mkdir(parents=True)
    import shutil

    shutil.copytree(DATA / "bts", tmp_path / "data" / "ztf-labelled" / "bts-antares")
    assert main(["data", "fetch", "bts", "--dest", str(tmp_path / "cache"),
                 "--source", "local"]) == 0
    got = read_labelled(tmp_path / "cache" / "bts")
    assert got.class_counts() == read_labelled(DATA / "bts").class_counts()
    monkeypatch.delenv("ASTROT2_DATA")
    assert main(["data", "fetch", "alerce", "--dest", str(tmp_path / "c2"),
                 "--source", "local"]) == 2
