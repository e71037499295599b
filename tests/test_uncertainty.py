"""Per-alert uncertainty: predictive entropy and test-time augmentation, and their columns in
``classify_batch``."""

from __future__ import annotations

import numpy as np
import pytest

from astrot2.classify import classify_batch
from astrot2.io.plasticc import read_plasticc
from astrot2.uncertainty import predictive_entropy, tta_probabilities


def test_entropy_bounds():
    """0 for a one-hot row, ln K for a uniform one."""
    k = 14
    assert predictive_entropy(np.full((1, k), 1 / k))[0] == pytest.approx(np.log(k))
    assert predictive_entropy(np.eye(k)[:2]).tolist() == [0.0, 0.0]


def test_classify_batch_entropy_column(lsst_classifier, fixtures):
    """``uncertainty=True`` appends ``entropy``; the other columns are unchanged, in order."""
    batch = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                          fixtures / "plasticc" / "plasticc_meta_sample.csv")
    batch = batch.with_reject(np.arange(len(batch)) == 0, "test_reject")
    plain = classify_batch(lsst_classifier, batch)
    table = classify_batch(lsst_classifier, batch, uncertainty=True)
    assert table.column_names == [*plain.column_names, "entropy"]
    assert table.drop(["entropy"]).equals(plain)
    prob = np.column_stack([table.column(c).to_numpy() for c in table.column_names
                            if c.startswith("p_")])
    entropy = table.column("entropy").to_numpy(zero_copy_only=False)
    assert np.isnan(entropy[0])
    np.testing.assert_allclose(entropy[1:], predictive_entropy(prob[1:]), rtol=1e-5)
    assert ((entropy[1:] >= 0) & (entropy[1:] <= np.log(14) + 1e-6)).all()


def test_classify_batch_tta_columns(lsst_classifier, fixtures):
    """``tta=K`` appends four columns after ``entropy``; seeded, so reproducible."""
    batch = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                          fixtures / "plasticc" / "plasticc_meta_sample.csv").take(range(12))
    plain = classify_batch(lsst_classifier, batch, uncertainty=True)
    table = classify_batch(lsst_classifier, batch, uncertainty=True, tta=2)
    assert table.column_names == [*plain.column_names, "tta_top_class", "tta_top_prob",
                                  "tta_top_std", "tta_entropy"]
    assert table.select(plain.column_names).equals(plain)
    mean, std = tta_probabilities(lsst_classifier, batch, 2)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(table.column("tta_top_prob").to_numpy(), mean.max(axis=1),
                               rtol=1e-6)
    np.testing.assert_allclose(table.column("tta_top_std").to_numpy(),
                               std[np.arange(12), mean.argmax(axis=1)], rtol=1e-5, atol=1e-7)
    assert (std >= 0).all() and (std <= 0.5).all()
    # one copy without dropping anything would be the prediction itself: with drops, the
    # mean stays close to it for most light curves
    agree = (mean.argmax(axis=1) == lsst_classifier.predict(batch).probabilities.argmax(axis=1))
    assert agree.mean() >= 0.5
    with pytest.raises(ValueError, match="n_copies must be >= 1"):
        tta_probabilities(lsst_classifier, batch, 0)
