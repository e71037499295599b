"""The columnar LightCurveBatch: construction rules, offsets, round trips, invariances."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from astrot2.io import read_alerts
from astrot2.lightcurves import METADATA_COLUMNS, LightCurveBatch, segment_reduce
from astrot2.surveys import LSST, ZTF

PER_OBS = ("time", "flux", "flux_err", "band", "detected")
PER_OBJECT = ("alert_id", "object_id", "reject", "n_dropped")


def _batch() -> LightCurveBatch:
    owner = np.array([1, 0, 1, 0, 2, 1, 0])
    time = np.array([5.0, 3.0, 1.0, 1.0, 2.0, 1.0, 2.0])
    flux = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, np.nan])
    err = np.array([1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0])
    band = np.array([0, 1, 2, 0, 1, 1, 0])
    return LightCurveBatch.from_observations(
        ZTF, ["a0", "a1", "a2", "a3"], ["o0", "o1", "o2", "o3"], owner, time, flux, err, band,
        np.ones(7, bool), metadata={"mwebv": np.array([0.1, 0.2, 0.3, 0.4])})


@pytest.fixture(scope="module")
def real(fixtures) -> LightCurveBatch:
    """30 real ZTF light curves (fixtures), with a reject and an extra column added."""
    batch = read_alerts(fixtures / "ztf")
    batch = batch.with_reject(np.arange(len(batch)) == 4, "too_short")
    return replace(batch, extra={"label": np.arange(len(batch)) % 3})


def assert_batches_equal(a: LightCurveBatch, b: LightCurveBatch) -> None:
    assert a.survey == b.survey
    for name in (*PER_OBS, *PER_OBJECT, "offsets"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.metadata.keys() == b.metadata.keys() and a.extra.keys() == b.extra.keys()
    for k in a.metadata:
        np.testing.assert_array_equal(a.metadata[k], b.metadata[k], err_msg=k)
    for k in a.extra:
        np.testing.assert_array_equal(a.extra[k], b.extra[k], err_msg=k)


def assert_offsets_valid(b: LightCurveBatch) -> None:
    assert b.offsets.dtype == np.int64 and b.offsets.shape == (len(b) + 1,)
    assert b.offsets[0] == 0 and b.offsets[-1] == len(b.time)
    assert np.all(np.diff(b.offsets) >= 0)
    assert b.n_points.sum() == len(b.time)
    np.testing.assert_array_equal(np.bincount(b.owner, minlength=len(b)), b.n_points)


# ---------------------------------------------------------------- from_observations
def test_sorting_is_stable_and_invalid_points_are_counted():
    b = _batch()
    assert_offsets_valid(b)
    assert list(b.n_points) == [2, 3, 0, 0]
    assert list(b.n_dropped) == [1, 0, 1, 0]  # NaN flux, negative error
    np.testing.assert_array_equal(b[1].time, [1.0, 1.0, 5.0])
    # equal times keep input order: flux 30 came before flux 60
    np.testing.assert_array_equal(b[1].flux, [30.0, 60.0, 10.0])
    assert list(b.reject) == ["", "", "no_valid_points", "empty"]
    assert set(METADATA_COLUMNS) <= set(b.metadata)
    assert np.isnan(b.metadata["hostgal_photoz"]).all()


def test_duplicated_times_keep_input_order():
    """Many ties, random order: the result is a stable sort of each light curve by time."""
    rng = np.random.default_rng(3)
    n_obj, n_obs = 7, 400
    owner = rng.integers(0, n_obj, n_obs)
    time = rng.integers(0, 5, n_obs).astype(float)  # ~80 copies of each time
    flux = np.arange(n_obs, dtype=float)  # records the input position
    b = LightCurveBatch.from_observations(LSST, [str(i) for i in range(n_obj)],
                                          ["o"] * n_obj, owner, time, flux, np.ones(n_obs),
                                          rng.integers(0, 6, n_obs), np.ones(n_obs, bool))
    assert_offsets_valid(b)
    for i in range(n_obj):
        mine = np.flatnonzero(owner == i)
        expected = mine[np.argsort(time[mine], kind="stable")]
        np.testing.assert_array_equal(b[i].flux, flux[expected])


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(1)
    n = 50
    inputs = {
        "alert_id": np.array(["a", "b", "c"], dtype=object),
        "object_id": ["x", "y", "z"],
        "owner": rng.integers(0, 3, n),
        "time": rng.normal(size=n),
        "flux": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        "flux_err": rng.normal(1, 1, size=n),  # some negative: dropped
        "band": rng.integers(-1, 3, n).astype(np.int8),
        "detected": rng.random(n) < 0.5,
        "metadata": {"mwebv": np.array([0.1, np.nan, 0.3])},
        "reject": np.array(["", "bad_record: test", ""], dtype=object),
        "extra": {"label": np.array([1, 2, 3])},
    }
    before = {k: (dict((kk, vv.copy()) for kk, vv in v.items()) if isinstance(v, dict)
                  else np.array(v, copy=True)) for k, v in inputs.items()}
    b = LightCurveBatch.from_observations(ZTF, **inputs)
    assert_offsets_valid(b)
    for key, value in inputs.items():
        if isinstance(value, dict):
            for kk in value:
                np.testing.assert_array_equal(value[kk], before[key][kk])
        else:
            np.testing.assert_array_equal(np.asarray(value), before[key], err_msg=key)
    assert b.reject[1] == "bad_record: test"
    assert b.n_dropped.sum() + len(b.time) == n


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="owner"):
        LightCurveBatch.from_observations(ZTF, ["a"], ["a"], [1], [1.0], [1.0], [1.0], [0],
                                          [True])
    with pytest.raises(ValueError, match="reject"):
        LightCurveBatch.from_observations(ZTF, ["a"], ["a"], [0], [1.0], [1.0], [1.0], [0],
                                          [True], reject=["", ""])
    with pytest.raises(ValueError, match="chunk size"):
        next(_batch().chunks(0))


def test_constructor_checks_offsets():
    b = _batch()
    with pytest.raises(AssertionError, match="offsets"):
        replace(b, offsets=b.offsets[::-1].copy())
    with pytest.raises(AssertionError, match="offsets"):
        replace(b, offsets=b.offsets[:-1])


# ---------------------------------------------------------------- take / chunks / concat
@pytest.mark.parametrize("size", [1, 4, 7, 29, 30, 100])
def test_chunks_then_concat_is_the_identity(real, size):
    parts = list(real.chunks(size))
    assert [len(p) for p in parts] == [min(size, len(real) - s)
                                       for s in range(0, len(real), size)]
    for p in parts:
        assert_offsets_valid(p)
    assert_batches_equal(LightCurveBatch.concat(parts), real)


def test_take_is_a_permutation_and_back(real):
    perm = np.random.default_rng(0).permutation(len(real))
    shuffled = real.take(perm)
    assert_offsets_valid(shuffled)
    for k in (0, 5, len(real) - 1):
        np.testing.assert_array_equal(shuffled[k].flux, real[perm[k]].flux)
        assert shuffled.reject[k] == real.reject[perm[k]]
    assert_batches_equal(shuffled.take(np.argsort(perm)), real)
    empty = real.take([])
    assert len(empty) == 0 and len(empty.time) == 0
    assert_offsets_valid(empty)
    assert_batches_equal(LightCurveBatch.concat([empty, real, empty]), real)


def test_take_repeats_and_negative_indices(real):
    sub = real.take([2, 2, -1])
    assert_offsets_valid(sub)
    assert list(sub.alert_id) == [real.alert_id[2], real.alert_id[2], real.alert_id[-1]]
    np.testing.assert_array_equal(sub[1].time, real[2].time)
    np.testing.assert_array_equal(sub[2].time, real[len(real) - 1].time)


def test_concat_refuses_mixed_surveys():
    lsst = LightCurveBatch.from_observations(LSST, ["x"], ["x"], [0], [1.0], [1.0], [1.0], [0],
                                             [True])
    with pytest.raises(ValueError, match="different surveys"):
        LightCurveBatch.concat([_batch(), lsst])
    with pytest.raises(ValueError, match="at least one"):
        LightCurveBatch.concat([])


def test_indexing(real):
    assert real[-1].alert_id == real.alert_id[len(real) - 1]
    with pytest.raises(IndexError, match="out of range"):
        real[len(real)]
    assert sum(len(lc.time) for lc in real) == len(real.time)


# ---------------------------------------------------------------- views and output
def test_to_arrow_round_trip(real):
    """Every value survives to_arrow(): rebuild the batch from the table and compare."""
    table = real.to_arrow()
    assert isinstance(table, pa.Table) and table.num_rows == len(real)
    assert table.schema.metadata == {b"astrot2.survey": b"ztf", b"astrot2.flux_unit": b"FLUXCAL"}
    lists = {c: table.column(c).combine_chunks() for c in PER_OBS}
    offsets = lists["time"].offsets.to_numpy()
    np.testing.assert_array_equal(offsets, real.offsets)
    bands = np.array(lists["band"].values.to_pylist())
    back = LightCurveBatch(
        survey=ZTF,
        alert_id=np.array(table.column("alert_id").to_pylist(), dtype=object),
        object_id=np.array(table.column("object_id").to_pylist(), dtype=object),
        offsets=offsets.astype(np.int64),
        time=lists["time"].values.to_numpy(),
        flux=lists["flux"].values.to_numpy(),
        flux_err=lists["flux_err"].values.to_numpy(),
        band=np.array([ZTF.bands.index(b) for b in bands], dtype=np.int8),
        detected=np.array(lists["detected"].values.to_pylist()),
        metadata={k: table.column(k).to_numpy() for k in real.metadata},
        reject=np.array(table.column("reject").to_pylist(), dtype=object),
        n_dropped=table.column("n_dropped").to_numpy(),
        extra=dict(real.extra),  # per-object extras are not written
    )
    assert_batches_equal(back, real)
    assert set(bands) <= set(ZTF.bands)


def test_reduce_handles_empty_light_curves():
    b = _batch()
    np.testing.assert_array_equal(b.reduce(b.time, np.fmax)[:2], [3.0, 5.0])
    assert np.isnan(b.reduce(b.time, np.fmax)[2:]).all()
    assert segment_reduce(np.array([]), np.array([0, 0]), np.add, 0.0)[0] == 0.0


def test_summary_counts(real):
    s = real.summary()
    assert s["light_curves"] == len(real) == 30
    assert s["observations"] == len(real.time) == real.offsets[-1]
    assert s["detections"] == int(real.detected.sum())
    assert s["rejected"] == {"too_short": 1}
    assert s["max_points"] == int(real.n_points.max())
