"""The columnar LightCurveBatch: construction rules, round trips, invariances."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from astrot2.lightcurves import METADATA_COLUMNS, LightCurveBatch, segment_reduce
from astrot2.surveys import LSST, ZTF, get_survey


def _batch() -> LightCurveBatch:
    owner = np.array([1, 0, 1, 0, 2, 1, 0])
    time = np.array([5.0, 3.0, 1.0, 1.0, 2.0, 1.0, 2.0])
    flux = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, np.nan])
    err = np.array([1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0])
    band = np.array([0, 1, 2, 0, 1, 1, 0])
    return LightCurveBatch.from_observations(
        ZTF, ["a0", "a1", "a2", "a3"], ["o0", "o1", "o2", "o3"], owner, time, flux, err, band,
        np.ones(7, bool), metadata={"mwebv": np.array([0.1, 0.2, 0.3, 0.4])})


def test_sorting_is_stable_and_invalid_points_are_counted():
    b = _batch()
    assert list(b.n_points) == [2, 3, 0, 0]
    assert list(b.n_dropped) == [1, 0, 1, 0]  # NaN flux, negative error
    np.testing.assert_array_equal(b[1].time, [1.0, 1.0, 5.0])
    # equal times keep input order: flux 30 came before flux 60
    np.testing.assert_array_equal(b[1].flux, [30.0, 60.0, 10.0])
    assert list(b.reject) == ["", "", "no_valid_points", "empty"]
    assert set(METADATA_COLUMNS) <= set(b.metadata)
    assert np.isnan(b.metadata["hostgal_photoz"]).all()


def test_inputs_are_not_mutated():
    time = np.array([3.0, 1.0, 2.0])
    before = time.copy()
    LightCurveBatch.from_observations(ZTF, ["a"], ["o"], np.zeros(3, int), time,
                                      np.ones(3), np.ones(3), np.zeros(3, int), np.ones(3, bool))
    np.testing.assert_array_equal(time, before)


def test_take_chunks_concat_round_trip():
    b = _batch()
    again = LightCurveBatch.concat(list(b.chunks(3)))
    for name in ("time", "flux", "flux_err", "band", "detected", "offsets", "n_dropped"):
        np.testing.assert_array_equal(getattr(again, name), getattr(b, name))
    sub = b.take([1, 0])
    np.testing.assert_array_equal(sub[0].flux, b[1].flux)
    np.testing.assert_array_equal(sub.metadata["mwebv"], [0.2, 0.1])
    assert list(sub.alert_id) == ["a1", "a0"]


def test_concat_refuses_mixed_surveys():
    lsst = LightCurveBatch.from_observations(LSST, ["x"], ["x"], [0], [1.0], [1.0], [1.0], [0],
                                             [True])
    with pytest.raises(ValueError, match="different surveys"):
        LightCurveBatch.concat([_batch(), lsst])


def test_to_arrow_has_one_row_per_light_curve():
    b = _batch()
    table = b.to_arrow()
    assert table.num_rows == len(b)
    assert table.column("flux").to_pylist()[1] == list(b[1].flux)
    assert table.column("band").to_pylist()[0] == ["g", "r"]  # band names, not indices
    assert table.schema.metadata[b"astrot2.flux_unit"] == b"FLUXCAL"
    assert isinstance(table, pa.Table)


def test_reduce_handles_empty_light_curves():
    b = _batch()
    np.testing.assert_array_equal(b.reduce(b.time, np.fmax)[:2], [3.0, 5.0])
    assert np.isnan(b.reduce(b.time, np.fmax)[2:]).all()
    assert segment_reduce(np.array([]), np.array([0, 0]), np.add, 0.0)[0] == 0.0


def test_band_order_is_fixed_by_the_survey():
    assert ZTF.bands == ("g", "r", "i") and LSST.bands == ("u", "g", "r", "i", "z", "y")
    np.testing.assert_array_equal(LSST.band_index(["y", "Y", "u", "q"]), [5, 5, 0, -1])
    assert get_survey("rubin") is LSST


def test_band_mapping_does_not_depend_on_hash_seed():
    import subprocess
    import sys

    code = ("from astrot2.surveys import LSST; "
            "print(LSST.band_index(['z','g','Y','r','u','i','y']).tolist())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": seed}, check=True).stdout
            for seed in ("0", "1", "12345")}
    assert outs == {"[4, 1, 5, 2, 0, 3, 5]\n"}
