"""Classification metrics of the PLAsTiCC benchmark (NumPy; scikit-learn for PR curves).

- :func:`weighted_log_loss`: the class-weighted log-loss of t2/PLAsTiCC,
  ``L = -sum_j w_j (1/N_j) sum_{i in j} ln p_ij / sum_j w_j``, with ``p`` clipped to
  ``[1e-15, 1 - 1e-15]`` and not renormalised; flat weights give t2's "flat" metric,
  :data:`astrot2.classes.KAGGLE_WEIGHTS` the Kaggle one.  As in t2, a class absent from
  ``y`` adds 0 to the numerator but its weight still counts in the denominator (this is
  what reproduces t2's test vector, 0.07024034167855889).
- accuracy, macro-F1, per-class precision-recall AUC, confusion matrix.
"""

from __future__ import annotations

import numpy as np

__all__ = ["classification_report", "confusion_matrix", "macro_f1", "weighted_log_loss"]


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
