"""Classification metrics of the PLAsTiCC benchmark (NumPy; scikit-learn for PR curves).

- :func:`weighted_log_loss`: the class-weighted log-loss of t2/PLAsTiCC,
  ``L = -sum_j w_j (1/N_j) sum_{i in j} ln p_ij / sum_j w_j``, with ``p`` clipped to
  ``[1e-15, 1 - 1e-15]`` and not renormalised; flat weights give t2's "flat" metric,
  :data:`astrot2.classes.KAGGLE_WEIGHTS` the Kaggle one.  As in t2, a class absent from
  ``y`` adds 0 to the numerator but its weight still counts in the denominator (this is
  what reproduces t2's test vector, 0.07024034167855889).
- accuracy, macro-F1, per-class precision-recall AUC, confusion matrix.

Calibration and uncertainty (NumPy):

- :func:`expected_calibration_error` (top-label, equal-width bins of the top probability):
  ``ECE = sum_b (n_b / n) |accuracy_b - confidence_b|``, with its :func:`reliability`
  table, the :func:`ece_noise_floor` of a perfectly calibrated model and an
  :func:`ece_bootstrap` interval;
- :func:`negative_log_likelihood` of ``softmax(logits / T)`` (:func:`softmax`), the
  objective of temperature scaling (:mod:`astrot2.calibration`);
- :func:`risk_coverage`: how well an uncertainty ranks alerts (accuracy of the most
  certain fraction), :func:`uncertainty_report` for the entropy and the top probability.
"""

from __future__ import annotations

import numpy as np

from astrot2.errors import ConfigError
from astrot2.uncertainty import predictive_entropy

__all__ = ["N_BINS", "classification_report", "confusion_matrix", "ece_bootstrap",
           "ece_noise_floor", "expected_calibration_error", "macro_f1",
           "negative_log_likelihood", "reliability", "risk_coverage", "softmax",
           "uncertainty_report", "weighted_log_loss"]


def _one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2:
        return y.astype(np.float64)
    out = np.zeros((len(y), n_classes))
    out[np.arange(len(y)), y] = 1.0
    return out


def weighted_log_loss(
    y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Class-weighted multi-class log-loss.

    Parameters
    ----------
    y : array-like of shape (n_samples,) of int, or (n_samples, n_classes) one-hot
    p : array-like of shape (n_samples, n_classes)
        Predicted probabilities (not renormalised).
    weights : array-like of shape (n_classes,), optional
        Class weights (default: all 1, the flat metric).

    Examples
    --------
    >>> y = [[1, 0, 0], [1, 0, 0], [0, 1, 0]]
    >>> p = [[.9, .1, .2], [.9, .4, .1], [.2, .9, .2]]
    >>> round(weighted_log_loss(y, p), 12)
    0.070240341679
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    onehot = _one_hot(y, p.shape[1])
    w = np.ones(p.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    n_per_class = onehot.sum(axis=0)
    sums = (onehot * np.log(p)).sum(axis=0)
    per_class = np.divide(sums, n_per_class, out=np.zeros_like(sums), where=n_per_class > 0)
    return float(-(w * per_class).sum() / w.sum())


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, shape (n_classes, n_classes): rows true class, columns predicted class."""
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(y), np.asarray(pred)), 1)
    return out


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean F1 over the classes present (rows with at least one object)."""
    tp = np.diag(cm).astype(np.float64)
    precision = np.divide(tp, cm.sum(axis=0), out=np.zeros_like(tp), where=cm.sum(axis=0) > 0)
    recall = np.divide(tp, cm.sum(axis=1), out=np.zeros_like(tp), where=cm.sum(axis=1) > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[cm.sum(axis=1) > 0].mean())


def classification_report(
    y: np.ndarray, p: np.ndarray, class_names: list[str] | None = None
) -> dict[str, object]:
    """All metrics of a set of predictions, as a JSON-ready dict.

    Parameters
    ----------
    y : array-like of int, shape (n_samples,)
    p : array-like of shape (n_samples, n_classes)
    class_names : list of str, optional
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    from astrot2.classes import KAGGLE_WEIGHTS

    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    k = p.shape[1]
    names = class_names or [str(i) for i in range(k)]
    pred = p.argmax(axis=1)
    cm = confusion_matrix(y, pred, k)
    pr_auc, roc_auc = {}, {}
    for j, name in enumerate(names):
        positive = y == j
        if positive.any() and (~positive).any():
            pr_auc[name] = float(average_precision_score(positive, p[:, j]))
            roc_auc[name] = float(roc_auc_score(positive, p[:, j]))
    weights = KAGGLE_WEIGHTS if k == len(KAGGLE_WEIGHTS) else None
    return {
        "n": len(y),
        "flat_log_loss": weighted_log_loss(y, p),
        "kaggle_log_loss": weighted_log_loss(y, p, weights) if weights is not None else None,
        "accuracy": float((pred == y).mean()),
        "macro_f1": macro_f1(cm),
        "pr_auc": pr_auc,
        "roc_auc": roc_auc,
        "confusion_matrix": {"labels": names, "counts": cm.tolist()},
    }


#: Bins of the top-label ECE and of the reliability diagrams.
N_BINS = 15



def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, shape (n, n_classes), float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def ensemble_logits(logits: list[np.ndarray]) -> np.ndarray:
    """Logits of an ensemble: the log of its members' mean class probabilities (one
    member: its own logits), float32, shape (n, n_classes)."""
    if len(logits) == 1:
        return logits[0]
    mean = np.mean([softmax(z) for z in logits], axis=0)
    return np.log(np.maximum(mean, 1e-30)).astype(np.float32)


def negative_log_likelihood(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0
                            ) -> float:
    """Mean negative log-likelihood of labels ``y`` under ``softmax(logits / T)``."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def reliability(prob: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> dict[str, list]:
    """Top-label reliability table over ``n_bins`` equal-width bins of the top probability.

    Returns
    -------
    dict
        ``edges`` (n_bins + 1), and per bin ``count``, ``confidence`` (mean top
        probability) and ``accuracy`` (NaN for empty bins).
    """
    prob = np.asarray(prob, dtype=np.float64)
    conf = prob.max(axis=1)
    correct = (prob.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(which, conf, n_bins) / count
        accuracy = np.bincount(which, correct, n_bins) / count
    return {"edges": edges.tolist(), "count": count.astype(int).tolist(),
            "confidence": mean_conf.tolist(), "accuracy": accuracy.tolist()}


def expected_calibration_error(prob: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """Top-label ECE: ``sum_b (n_b / n) |accuracy_b - confidence_b|``.

    Parameters
    ----------
    prob : array-like of shape (n_samples, n_classes)
    y : array-like of int, shape (n_samples,)
    n_bins : int
        Equal-width bins of the top probability on [0, 1].
    """
    table = reliability(prob, y, n_bins)
    count = np.asarray(table["count"], dtype=np.float64)
    gap = np.abs(np.asarray(table["accuracy"]) - np.asarray(table["confidence"]))
    return float(np.nansum(count * gap) / max(count.sum(), 1.0))


def ece_noise_floor(prob: np.ndarray, n_bins: int = N_BINS, n_draws: int = 200,
                    seed: int = 0) -> float:
    """Mean ECE of a *perfectly calibrated* model with these probabilities and this ``n``.

    Labels are drawn from ``prob`` itself ``n_draws`` times: the ECE that finite-sample
    noise alone gives (an ECE measured on ``n`` samples cannot be trusted below it).
    """
    rng = np.random.default_rng(seed)
    p = np.asarray(prob, dtype=np.float64)
    cdf = p.cumsum(axis=1)
    draws = [np.minimum((cdf < rng.random((len(p), 1))).sum(axis=1), p.shape[1] - 1)
             for _ in range(n_draws)]
    return float(np.mean([expected_calibration_error(p, y, n_bins) for y in draws]))


def ece_bootstrap(prob: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, *,
                  n_bins: int = N_BINS, n_boot: int = 1000, level: float = 0.95,
                  seed: int = 0) -> dict[str, float | list[float]]:
    """The top-label ECE with a bootstrap bias correction and confidence interval.

    Resamples whole ``groups`` (e.g. the object each alert window was cut from: windows
    of one object are not independent) with replacement, ``n_boot`` times, and returns
    the *basic* bootstrap interval ``(2 E - q_high, 2 E - q_low)`` around the measured
    ECE ``E``, clipped at 0 (``q``: the draws' quantiles).  The ECE is biased upwards by
    sampling noise, and more so on a resample (duplicated rows): the percentile
    interval would sit above ``E``; the basic one corrects for that bias.  Unlike
    :func:`ece_noise_floor`, which asks what a perfectly calibrated model would score,
    this says how precisely the calibration error is known.

    Parameters
    ----------
    prob : array-like of shape (n_samples, n_classes)
    y : array-like of int, shape (n_samples,)
    groups : array-like, shape (n_samples,), optional
        Group label of each sample (default: every sample its own group).
    n_bins, n_boot, level, seed
        ECE bins, bootstrap draws, interval coverage, random seed.

    Returns
    -------
    dict
        ``ece`` (measured), ``ece_debiased`` (``2 E - mean of the draws``, clipped at 0:
        the centre of the interval) and ``ci`` (``[low, high]``).
    """
    prob, y = np.asarray(prob, dtype=np.float64), np.asarray(y)
    if len(y) == 0:
        raise ConfigError("ece_bootstrap needs at least one labelled sample, got 0")
    _, group = np.unique(np.arange(len(y)) if groups is None else np.asarray(groups),
                         return_inverse=True)
    members = np.split(np.argsort(group, kind="stable"),
                       np.cumsum(np.bincount(group))[:-1])
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        draws.append(expected_calibration_error(prob[rows], y[rows], n_bins))
    tail = 100.0 * (1.0 - level) / 2.0
    q_low, q_high = np.percentile(draws, [tail, 100.0 - tail])
    ece = expected_calibration_error(prob, y, n_bins)
    return {"ece": ece, "ece_debiased": max(2.0 * ece - float(np.mean(draws)), 0.0),
            "ci": [max(2.0 * ece - float(q_high), 0.0), max(2.0 * ece - float(q_low), 0.0)]}


def risk_coverage(prob: np.ndarray, y: np.ndarray, uncertainty: np.ndarray,
                  coverages: np.ndarray | None = None) -> dict[str, list[float]]:
    """Accuracy of the most certain fraction of samples, for several fractions.

    Samples are sorted by increasing ``uncertainty`` (ties keep their order); for each
    coverage ``c`` the accuracy is that of the first ``ceil(c n)`` samples.

    Returns
    -------
    dict
        ``coverage`` and ``accuracy`` lists, and ``aurc`` (area under the risk-coverage
        curve, risk = 1 - accuracy, mean over all n prefixes; lower is better).
    """
    prob = np.asarray(prob, dtype=np.float64)
    correct = (prob.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    order = np.argsort(np.asarray(uncertainty), kind="stable")
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    if coverages is None:
        coverages = np.linspace(0.05, 1.0, 20)
    k = np.maximum(np.ceil(np.asarray(coverages) * len(order)).astype(int), 1)
    return {"coverage": [float(c) for c in coverages],
            "accuracy": [float(running[i - 1]) for i in k],
            "aurc": float(np.mean(1.0 - running))}


def uncertainty_report(curves: dict[str, tuple[np.ndarray, np.ndarray]],
                       temperature: float) -> dict[str, dict]:
    """Risk-coverage of the calibrated entropy and of ``1 - top probability``, per view.

    Parameters
    ----------
    curves : dict
        view -> ``(logits, y)`` (e.g. the test split of :func:`astrot2.calibration.split_logits`).
    temperature : float
    """
    out: dict[str, dict] = {}
    for view, (z, y) in curves.items():
        p = softmax(z, temperature)
        out[f"{view}: entropy"] = risk_coverage(p, y, predictive_entropy(p))
        out[f"{view}: 1 - top prob"] = risk_coverage(p, y, 1.0 - p.max(axis=1))
    return out
