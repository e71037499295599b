"""Per-alert uncertainty at inference time (NumPy; torch-free; the layer of ``classify``).

- :func:`predictive_entropy`: the Shannon entropy of the calibrated probabilities
  (``astrot2 classify --uncertainty``, the ``entropy`` column of
  :func:`astrot2.classify.classify_batch`);
- :func:`tta_probabilities`: test-time augmentation, the mean and spread of the
  probabilities of randomly thinned copies of each light curve (``astrot2 classify --tta
  K``).

The copies are thinned with training's own perturbation (:func:`astrot2.augment.augment`,
imported lazily: the one module above the inference layer that ``classify`` reaches).  How
well these rank alerts is measured by :func:`astrot2.metrics.risk_coverage`.
"""

from __future__ import annotations

import numpy as np

from astrot2.errors import ConfigError
from astrot2.gp import classified
from astrot2.lightcurves import LightCurveBatch

__all__ = ["TTA_DROP", "predictive_entropy", "tta_probabilities"]


def predictive_entropy(prob: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row, shape (n,); 0 for one-hot, ln K for uniform."""
    p = np.asarray(prob, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


#: Test-time augmentation: fraction of points each copy drops (uniform range).
TTA_DROP = (0.1, 0.3)


def tta_probabilities(clf, batch: LightCurveBatch, n_copies: int = 5, *, seed: int = 0,
                      check_survey: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Test-time augmentation: mean and spread of the probabilities of perturbed copies.

    Each copy drops a random 10-30 % of the points of every light curve (never its first
    detection; :func:`astrot2.augment.augment` without cut or time shift), then runs the
    whole chain (GP, features, network, temperature) as :meth:`astrot2.runtime.Classifier.
    predict`.  It costs ``n_copies`` predictions: the GP dominates, so this is an opt-in
    mode.

    Parameters
    ----------
    clf : Classifier
    batch : LightCurveBatch
    n_copies : int
        Perturbed copies (>= 1).
    seed : int
        Copy ``k`` drops points with the generator seeded ``seed + k``.
    check_survey : bool
        As :meth:`astrot2.runtime.Classifier.predict`.

    Returns
    -------
    mean : ndarray of float64, shape (n_alerts, n_classes)
        Mean over the copies that were classified; zeros where none was.
    std : ndarray of float64, shape (n_alerts, n_classes)
        Per-class standard deviation over those copies.
    """
    from dataclasses import replace

    from astrot2.augment import AugmentConfig, augment

    if n_copies < 1:
        raise ConfigError(f"n_copies must be >= 1, got {n_copies}")
    config = replace(AugmentConfig(), p_truncate=0.0, drop_fraction=TTA_DROP, max_shift=0.0)
    preds = [clf.predict(augment(batch, config, seed + k), check_survey=check_survey)
             for k in range(n_copies)]
    probs = np.stack([p.probabilities.astype(np.float64) for p in preds])  # (k, n, K)
    used = np.stack([classified(p.status) for p in preds])[:, :, None]  # copies classified
    count = np.maximum(used.sum(axis=0), 1)
    mean = (probs * used).sum(axis=0) / count
    std = np.sqrt(((probs - mean) ** 2 * used).sum(axis=0) / count)
    return mean, std
