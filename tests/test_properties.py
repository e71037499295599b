"""Property-based tests of the whole inference chain on hostile light curves.

Random batches (NaN/inf everywhere, empty and single-point histories, unsorted and
duplicated times, unknown bands, huge, tiny and negative fluxes and errors, thousands of
points, absurd metadata) go through ``LightCurveBatch.from_observations`` and
``classify_batch`` with real models: the shipped ``lsst`` model, and the tiny trained ztf
model of ``conftest.py`` for ZTF bands.  Whatever the input: exactly one output row per
alert, in order; finite probabilities summing to 1 for ``ok`` rows; a non-empty reason
otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrot2.classify import classify_batch
from astrot2.gp import classified
from astrot2.lightcurves import LightCurveBatch
from astrot2.surveys import LSST, ZTF, Survey

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])

_SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300, -1e300, 1e-300, -1e-30, 5e-324,
            np.finfo(np.float64).max, -np.finfo(np.float64).max]
_MJD = st.floats(59000, 61000, allow_nan=False)
_FLUX = st.one_of(st.floats(-1e4, 1e5), st.floats(-1e38, 1e38), st.sampled_from(_SPECIAL))
_ERR = st.one_of(st.floats(1e-3, 1e4), st.floats(-1e3, 1e38), st.sampled_from(_SPECIAL))
_META = st.one_of(st.floats(0, 3), st.sampled_from([np.nan, np.inf, -1.0, -9.0, 1e300, 0.0]))


@st.composite
def light_curve(draw, survey: Survey) -> dict[str, np.ndarray]:
    """One light curve: values drawn point by point, or a long real-looking series."""
    kind = draw(st.sampled_from(["points", "points", "empty", "single", "long"]))
    if kind == "long":  # thousands of points, a few of them corrupted
        n = draw(st.integers(1000, 4000))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        time = np.sort(rng.uniform(59000, 60500, n))
        cols = {"time": time, "flux": rng.normal(100, 300, n) * draw(st.sampled_from(
                    [1.0, -1.0, 1e30, 1e-20])),
                "flux_err": rng.uniform(1, 50, n), "band": rng.integers(-1, survey.n_bands + 2, n),
                "detected": rng.random(n) < 0.5}
        for key in ("time", "flux", "flux_err"):
            cols[key][rng.integers(0, n, draw(st.integers(0, 20)))] = draw(
                st.sampled_from(_SPECIAL))
        return cols
    n = {"empty": 0, "single": 1}.get(kind) or draw(st.integers(2, 40))
    times = draw(st.lists(st.one_of(_MJD, st.sampled_from([np.nan, np.inf, 60000.0])),
                          min_size=n, max_size=n))
    if n > 1 and draw(st.booleans()):  # duplicated times
        times[1:] = [times[0]] * (n - 1) if draw(st.booleans()) else times[1:]
        times[-1] = times[0]
    return {
        "time": np.array(times, dtype=np.float64),
        "flux": np.array(draw(st.lists(_FLUX, min_size=n, max_size=n)), dtype=np.float64),
        "flux_err": np.array(draw(st.lists(_ERR, min_size=n, max_size=n)), dtype=np.float64),
        "band": np.array(draw(st.lists(st.integers(-1, survey.n_bands + 1), min_size=n,
                                       max_size=n)), dtype=np.int64),
        "detected": np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool),
    }


@st.composite
def batches(draw, survey: Survey) -> LightCurveBatch:
    """A batch of 1-6 light curves whose observations are shuffled together."""
    curves = draw(st.lists(light_curve(survey), min_size=1, max_size=6))
    n = len(curves)
    owner = np.concatenate([np.full(len(c["time"]), i) for i, c in enumerate(curves)])
    cols = {k: np.concatenate([c[k] for c in curves]) for k in curves[0]}
    order = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).permutation(len(owner))
    metadata = {k: np.array(draw(st.lists(_META, min_size=n, max_size=n)))
                for k in ("hostgal_photoz", "hostgal_photoz_err", "mwebv")}
    return LightCurveBatch.from_observations(
        survey, alert_id=[f"a{i}" for i in range(n)], object_id=[f"o{i}" for i in range(n)],
        owner=owner[order], time=cols["time"][order], flux=cols["flux"][order],
        flux_err=cols["flux_err"][order], band=cols["band"][order],
        detected=cols["detected"][order], metadata=metadata)


def _check_rows(table, batch: LightCurveBatch) -> None:
    """One row per alert in order; classified rows (ok or a flagged GP fit) finite and
    normalised; others give a reason."""
    assert table.num_rows == len(batch)
    assert table.column("alert_id").to_pylist() == list(batch.alert_id)
    status = np.array(table.column("status").to_pylist(), dtype=object)
    probs = np.column_stack([table.column(c).to_numpy(zero_copy_only=False)
                             for c in table.column_names if c.startswith("p_")])
    assert probs.shape == (len(batch), 14)
    assert np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()
    ok = classified(status)
    np.testing.assert_allclose(probs[ok].sum(axis=1), 1.0, atol=1e-5)
    assert all(isinstance(s, str) and s.strip() for s in status[~ok])
    assert (probs[~ok] == 0).all()
    top = np.array(table.column("top_class").to_pylist(), dtype=object)
    assert all(t is not None for t in top[ok]) and all(t is None for t in top[~ok])
    # an alert the batch already rejects is never classified
    assert not ok[batch.reject != ""].any()


@settings(SETTINGS, max_examples=100)
@given(data=st.data())
def test_batch_keeps_only_valid_points_sorted(data):
    """Ingestion: every kept point is finite, in a known band, with a positive error, and
    sorted in time; kept + dropped = given, per light curve."""
    batch = data.draw(batches(LSST))
    assert np.isfinite(batch.time).all() and np.isfinite(batch.flux).all()
    assert np.isfinite(batch.flux_err).all() and (batch.flux_err > 0).all()
    assert ((batch.band >= 0) & (batch.band < LSST.n_bands)).all()
    for i in range(len(batch)):
        assert (np.diff(batch[i].time) >= 0).all()
    given_points = batch.n_points + batch.n_dropped
    assert ((batch.n_points == 0) == np.isin(batch.reject, ["empty", "no_valid_points"])).all()
    assert (batch.reject[given_points == 0] == "empty").all()


@SETTINGS
@given(data=st.data())
def test_lsst_any_light_curves_one_valid_row_each(lsst_classifier, data):
    batch = data.draw(batches(LSST))
    _check_rows(classify_batch(lsst_classifier, batch), batch)


@SETTINGS
@given(data=st.data(), min_points=st.integers(1, 5))
def test_min_points_rejects_are_reasons(lsst_classifier, data, min_points):
    batch = data.draw(batches(LSST))
    table = classify_batch(lsst_classifier, batch, min_points=min_points)
    _check_rows(table, batch)
    status = np.array(table.column("status").to_pylist(), dtype=object)
    assert (status[batch.n_points < min_points] != "ok").all()


@pytest.fixture(scope="module")
def ztf_classifier(ztf_model):
    from astrot2.runtime import Classifier

    return Classifier.load(ztf_model, threads=1)


@settings(SETTINGS, max_examples=40)
@given(data=st.data())
def test_ztf_any_light_curves_one_valid_row_each(ztf_classifier, data):
    batch = data.draw(batches(ZTF))
    _check_rows(classify_batch(ztf_classifier, batch), batch)


@pytest.fixture(scope="module")
def companion_classifiers():
    """The shipped models with their feature companions (``NAME+companion``)."""
    from astrot2.runtime import Classifier, shipped_models

    if not {"lsst-plasticc", "ztf-plasticc"} <= set(shipped_models()):
        pytest.skip("shipped models missing")
    return {survey: Classifier.load(f"{name}+companion", threads=1)
            for survey, name in (("lsst", "lsst-plasticc"), ("ztf", "ztf-plasticc"))}


@settings(SETTINGS, max_examples=60)
@given(data=st.data(), survey=st.sampled_from([LSST, ZTF]))
def test_companion_any_light_curves_one_valid_row_each(companion_classifiers, data, survey):
    """The companion's statistics of any light curve (empty bands, zero errors, one point)
    never make a NaN probability nor drop a row."""
    batch = data.draw(batches(survey))
    _check_rows(classify_batch(companion_classifiers[survey.name], batch), batch)


@pytest.fixture(scope="module")
def shipped_ztf():
    """The shipped real-sky ``ztf`` network (light-curve statistics among its inputs)."""
    from astrot2.runtime import Classifier, shipped_models

    if "ztf" not in shipped_models():
        pytest.skip("shipped ztf model missing")
    return Classifier.load("ztf", threads=1)


@settings(SETTINGS, max_examples=60)
@given(data=st.data())
def test_shipped_ztf_any_light_curves_one_valid_row_each(shipped_ztf, data):
    """The statistics inputs of any light curve (one band, one point, zero flux, huge
    values) never make a NaN probability nor drop a row."""
    batch = data.draw(batches(ZTF))
    _check_rows(classify_batch(shipped_ztf, batch), batch)


def test_the_strategy_reaches_both_outcomes(lsst_classifier):
    """Guard against a strategy that only makes rejects (or only clean curves)."""
    seen = set()

    @settings(SETTINGS, max_examples=30)
    @given(data=st.data())
    def collect(data):
        batch = data.draw(batches(LSST))
        seen.update(classify_batch(lsst_classifier, batch).column("status").to_pylist())

    collect()
    assert "ok" in seen and len(seen - {"ok"}) >= 2, seen
