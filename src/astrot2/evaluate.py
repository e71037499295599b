"""Evaluate a model folder on its held-out PLAsTiCC split (``astrot2 evaluate``).

Torch-free: predictions come from the ONNX model through :class:`astrot2.Classifier`, with
the GP and feature settings of its manifest, so the figures are those a broker gets.  The
test objects are the ``test`` ids of the model's ``split.json``; the alert-like windows
use the training augmentation settings of ``train_config.json`` and the same seed as
``astrot2 train`` (:func:`astrot2.augment.alert_windows`), so a shipped model's stored
metrics are reproduced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrot2.augment import AugmentConfig, ResampleConfig, alert_windows, survey_windows
from astrot2.classes import CLASSES, class_index
from astrot2.errors import ModelError
from astrot2.gp import classified
from astrot2.lightcurves import LightCurveBatch
from astrot2.metrics import classification_report
from astrot2.runtime import Classifier

__all__ = ["TrainingSettings", "evaluate_model", "plot_confusion", "split_indices",
           "split_views", "training_settings"]


def split_indices(batch: LightCurveBatch, folder: Path, split: str = "test") -> np.ndarray:
    """Indices in ``batch`` of the objects of one split of a model folder's ``split.json``.

    Raises
    ------
    ModelError
        If the folder has no split file, or ids of the split are missing from ``batch``.
    """
    file = folder / "split.json"
    if not file.is_file():
        raise ModelError(f"{folder}: no split.json, cannot tell its held-out objects")
    ids = np.asarray(json.loads(file.read_text())[split]).astype(str)
    pos = {oid: i for i, oid in enumerate(batch.object_id.astype(str))}
    missing = [oid for oid in ids if oid not in pos]
    if missing:
        raise ModelError(f"{file}: {len(missing)} {split} objects are not in the data "
                         f"(first: {missing[0]}); was it trained on another data set?")
    return np.array([pos[oid] for oid in ids], dtype=np.int64)


def _tuples(doc: dict) -> dict:
    """JSON lists back to the tuples of a frozen dataclass."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in doc.items()}


@dataclass(frozen=True)
class TrainingSettings:
    """What ``train_config.json`` says about how a model's training inputs were made."""

    augment: AugmentConfig
    resample: ResampleConfig | None  # None: no re-observed survey copies
    seed: int
    n_augment: int
    n_resample: int
    redshift_dropout: float = 0.0  # augmented copies' objects without host photo-z


def training_settings(folder: Path) -> TrainingSettings:
    """Augmentation and survey re-observation settings of a model folder's training run."""
    file = folder / "train_config.json"
    if not file.is_file():
        raise ModelError(f"{folder}: no train_config.json, cannot rebuild its inputs")
    doc = json.loads(file.read_text())
    n_resample = int(doc.get("n_resample") or 0)
    resample = ResampleConfig(**_tuples(doc.get("resample") or {})) if n_resample else None
    return TrainingSettings(AugmentConfig(**_tuples(doc["augment"])), resample,
                            int(doc["seed"]), int(doc["n_augment"]), n_resample,
                            float(doc.get("redshift_dropout") or 0.0))


def split_views(clf: Classifier, batch: LightCurveBatch, split: str, draw: int = 0
                ) -> dict[str, tuple[LightCurveBatch, np.ndarray]]:
    """The views of one split of a model's data that :func:`evaluate_model` scores.

    ``whole``, ``alert_windows``, and for a model trained on re-observed survey alerts,
    ``survey_windows`` (windows seeded by the run's ``seed + 99 + draw``); each with its
    class indices.  Calibration, the companion and the benchmarks use the same views
    (``draw`` 0); other ``draw`` values cut the same objects at other alert times.
    """
    folder = clf.manifest.model_file.parent
    m = clf.manifest
    part = batch.take(split_indices(batch, folder, split))
    y = class_index(part.extra["target"])
    settings = training_settings(folder)
    aug, resample, seed = settings.augment, settings.resample, settings.seed
    seed += 99 + draw
    views = {"whole": (part, y), "alert_windows": (alert_windows(part, aug, seed), y)}
    if resample is not None:  # the model's own survey's alerts, re-observed from PLAsTiCC
        views["survey_windows"] = (survey_windows(part, m.gp, m.survey, m.features.bands,
                                                  resample, seed), y)
    return views


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
