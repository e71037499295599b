"""Metrics: t2's log-loss test vector, the Kaggle weights, agreement with scikit-learn; the
top-label ECE against a loop; risk-coverage."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from astrot2.classes import CLASSES, KAGGLE_WEIGHTS, class_index
from astrot2.metrics import (
    classification_report,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    reliability,
    risk_coverage,
    weighted_log_loss,
)


def test_t2_test_vector():
    y = [[1, 0, 0], [1, 0, 0], [0, 1, 0]]
    p = [[0.9, 0.1, 0.2], [0.9, 0.4, 0.1], [0.2, 0.9, 0.2]]
    # The published value was computed in float32; ours is float64 (same float32 value).
    assert weighted_log_loss(y, p) == pytest.approx(0.07024034167855889, abs=1e-8)
    assert np.float32(weighted_log_loss(y, p)) == np.float32(0.07024034167855889)
    assert weighted_log_loss([0, 0, 1], p) == pytest.approx(weighted_log_loss(y, p))


def test_weights_and_clipping():
    y = np.array([0, 1, 2, 2])
    p = np.array([[1.0, 0, 0], [0.5, 0.5, 0], [0, 0, 1.0], [0, 1.0, 0]])
    flat = weighted_log_loss(y, p)
    per_class = [0.0, -np.log(0.5), -0.5 * np.log(1e-15)]
    assert flat == pytest.approx(np.mean(per_class))
    w = np.array([1.0, 2.0, 1.0])
    assert weighted_log_loss(y, p, w) == pytest.approx((per_class[0] + 2 * per_class[1]
                                                         + per_class[2]) / 4)


def test_classes_and_kaggle_weights():
    assert [c.code for c in CLASSES] == [6, 15, 16, 42, 52, 53, 62, 64, 65, 67, 88, 90, 92, 95]
    assert [c.slug for c in CLASSES][:4] == ["mu_lens", "tde", "eb", "snii"]
    assert KAGGLE_WEIGHTS.sum() == 16 and KAGGLE_WEIGHTS[1] == KAGGLE_WEIGHTS[7] == 2
    np.testing.assert_array_equal(class_index([90, 6, 99]), [11, 0, -1])


def test_confusion_and_f1_match_sklearn():
    from sklearn.metrics import confusion_matrix as sk_cm
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, 5, 300))
    cm = confusion_matrix(y, pred, 5)
    np.testing.assert_array_equal(cm, sk_cm(y, pred, labels=range(5)))
    assert macro_f1(cm) == pytest.approx(f1_score(y, pred, average="macro"))


def test_report_is_complete():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(14), 200)
    y = rng.integers(0, 14, 200)
    rep = classification_report(y, p, [c.name for c in CLASSES])
    assert rep["n"] == 200 and 0 <= rep["accuracy"] <= 1
    assert rep["kaggle_log_loss"] is not None and len(rep["pr_auc"]) == 14
    assert np.array(rep["confusion_matrix"]["counts"]).sum() == 200


def test_ece_matches_a_loop_implementation():
    """Top-label ECE against a direct per-bin loop; 0 for an exact toy case."""
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4) * 0.5, 500)
    y = rng.integers(0, 4, 500)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    edges = np.linspace(0, 1, 16)
    expected = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            expected += sel.mean() * abs((pred[sel] == y[sel]).mean() - conf[sel].mean())
    assert expected_calibration_error(p, y) == pytest.approx(expected, abs=1e-12)
    # 4 samples at confidence 0.75, 3 right: perfectly calibrated
    p4 = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(p4, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(p4, np.array([1, 1, 1, 1])) == pytest.approx(0.75)
    assert sum(reliability(p, y)["count"]) == 500


def test_risk_coverage():
    """A ranking that puts every error last gives accuracy 1 up to the accuracy."""
    k = 14
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(k), 1000)
    y = rng.integers(0, k, 1000)
    correct = p.argmax(axis=1) == y
    rc = risk_coverage(p, y, uncertainty=(~correct).astype(float),
                       coverages=np.array([correct.mean() * 0.99, 1.0]))
    assert rc["accuracy"][0] == 1.0 and rc["accuracy"][1] == pytest.approx(correct.mean())
    worst = risk_coverage(p, y, uncertainty=correct.astype(float))
    assert worst["aurc"] > rc["aurc"]
