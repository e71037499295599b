"""Evaluate a model folder on its held-out PLAsTiCC split (``astrot2 evaluate``).

Torch-free: predictions come from the ONNX model through :class:`astrot2.Classifier`, with
the GP and feature settings of its manifest, so the figures are those a broker gets.  The
views scored are those of the model folder's data recipe (:func:`astrot2.recipe.
split_views`): the ``test`` ids of its ``split.json``, whole and cut into alert-like
windows with the augmentation settings and seed of its ``train_config.json``, so a shipped
model's stored metrics are reproduced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrot2.classes import CLASSES
from astrot2.gp import classified
from astrot2.lightcurves import LightCurveBatch
from astrot2.metrics import classification_report
from astrot2.plotting import save_figure
from astrot2.recipe import split_views
from astrot2.runtime import Classifier

__all__ = ["evaluate_model", "plot_confusion"]


def evaluate_model(model: str | Path, batch: LightCurveBatch, *, split: str = "test",
                   threads: int | None = None) -> dict:
    """Metrics of a model on one split of its data, whole light curves and alert windows.

    Parameters
    ----------
    model : str or Path
        Shipped model name or model folder (with ``split.json`` and ``train_config.json``);
        ``NAME+companion`` for the network with its feature companion.
    batch : LightCurveBatch
        The labelled PLAsTiCC training set (``extra['target']``), as read by
        :func:`astrot2.io.plasticc.read_plasticc`.
    split : str
        ``test`` (default) or ``validation``.
    threads : int, optional
        ONNX Runtime threads.

    Returns
    -------
    dict
        ``{"model", "split", "n_objects", "whole": report, "alert_windows": report,
        "stored": {...}, "difference": {...}}`` where a report is
        :func:`astrot2.metrics.classification_report` and ``difference`` compares the
        flat log-loss with the figures stored in the manifest.
    """
    clf = Classifier.load(model, threads=threads)
    views = split_views(clf, batch, split)
    names = [c.name for c in CLASSES]
    out: dict = {"model": clf.name, "split": split, "n_objects": len(views["whole"][1]),
                 "companion": clf.companion is not None}
    for key, (view, y) in views.items():
        pred = clf.predict(view, check_survey=False)
        prob = pred.probabilities.astype(np.float64)
        usable = view.ok  # re-observed copies without a detection are not alerts
        rejected = ~classified(pred.status) & usable
        prob[rejected] = 1.0 / len(CLASSES)  # a reject counts as "no information"
        out[key] = classification_report(y[usable], prob[usable], names)
        out[key]["n_rejected"] = int(rejected.sum())
    owner = clf.manifest.raw if clf.companion is None else clf.companion.section
    stored = owner.get("metrics", {}).get("test_split", {}) if split == "test" else {}
    out["stored"] = stored
    out["difference"] = {k: out[k]["flat_log_loss"] - stored[k]["flat_log_loss"]
                         for k in views if k in stored}
    return out


def plot_confusion(report: dict, path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix of a classification report as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(report["confusion_matrix"]["counts"], dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    labels = [c.name for c in CLASSES]
    fig, ax = plt.subplots(figsize=(8.5, 7.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    return save_figure(fig, path)
