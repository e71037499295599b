"""Determinism: the same alerts give the same rows whatever the batch size, the batch
composition or the number of ONNX Runtime threads (within 1e-6), on real alerts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from astrot2.classify import classify_batch
from astrot2.io import read_alerts
from astrot2.lightcurves import LightCurveBatch
from astrot2.runtime import Classifier

ATOL = 1e-6


def _probabilities(table: pa.Table) -> np.ndarray:
    return np.column_stack([table.column(c).to_numpy(zero_copy_only=False)
                            for c in table.column_names if c.startswith("p_")])


def _in_chunks(clf: Classifier, batch: LightCurveBatch, size: int) -> pa.Table:
    return pa.concat_tables([classify_batch(clf, chunk) for chunk in batch.chunks(size)])


def _assert_same(table: pa.Table, ref: pa.Table) -> None:
    for name in ("alert_id", "object_id", "status", "top_class", "model"):
        assert table.column(name).to_pylist() == ref.column(name).to_pylist(), name
    np.testing.assert_allclose(_probabilities(table), _probabilities(ref), rtol=0, atol=ATOL)


@pytest.fixture(scope="module")
def lsst_alerts(fixtures) -> LightCurveBatch:
    """Every real Rubin and ELAsTiCC alert of the fixtures (31), with forced photometry."""
    batch = read_alerts([fixtures / "rubin", fixtures / "elasticc"], include_forced=True)
    assert len(batch) == 31
    return batch


@pytest.mark.parametrize("size", [1, 7, 64])
def test_batch_size_does_not_change_the_rows(lsst_classifier, lsst_alerts, size):
    ref = classify_batch(lsst_classifier, lsst_alerts)
    assert (np.array(ref.column("status").to_pylist()) == "ok").sum() >= 29
    _assert_same(_in_chunks(lsst_classifier, lsst_alerts, size), ref)


def test_batch_composition_does_not_change_the_rows(lsst_classifier, lsst_alerts):
    """Reversed order, and each alert next to copies of the others, give the same rows."""
    ref = classify_batch(lsst_classifier, lsst_alerts)
    order = np.arange(len(lsst_alerts))[::-1]
    reversed_table = classify_batch(lsst_classifier, lsst_alerts.take(order))
    _assert_same(reversed_table.take(pa.array(order)), ref)
    doubled = LightCurveBatch.concat([lsst_alerts, lsst_alerts.take(order)])
    _assert_same(classify_batch(lsst_classifier, doubled).slice(0, len(lsst_alerts)), ref)


def test_onnx_threads_do_not_change_the_rows(lsst_alerts):
    one = Classifier.load("lsst", threads=1)
    two = Classifier.load("lsst", threads=2)
    _assert_same(classify_batch(two, lsst_alerts), classify_batch(one, lsst_alerts))
    _assert_same(_in_chunks(two, lsst_alerts, 7), classify_batch(one, lsst_alerts))


def test_ztf_batch_size_and_threads(ztf_model, fixtures):
    """The same on the 30 real ZTF alerts of the fixtures, with the tiny ztf model."""
    alerts = read_alerts(fixtures / "ztf")
    one = Classifier.load(ztf_model, threads=1)
    ref = classify_batch(one, alerts)
    assert len(alerts) == 30 and (np.array(ref.column("status").to_pylist()) == "ok").all()
    for size in (1, 7, 64):
        _assert_same(_in_chunks(one, alerts, size), ref)
    _assert_same(classify_batch(Classifier.load(ztf_model, threads=2), alerts), ref)
