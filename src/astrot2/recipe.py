"""The data recipe of a model folder trained on PLAsTiCC: its split, its training
settings and the light curves built from them.

A model folder written by ``astrot2 train`` records how its data were made: ``split.json``
(the ``train``, ``validation`` and ``test`` object ids) and ``train_config.json`` (the
augmentation and survey re-observation settings and the seed).  This module reads them and
rebuilds the light curves from the labelled PLAsTiCC set, as training built them:

- :func:`split_indices`, :func:`training_settings`: the split and the settings;
- :func:`training_views`: the train objects, their augmented and re-observed copies;
- :func:`split_views`: the held-out views that evaluation, calibration, the companion and
  the benchmarks score (whole light curves, alert windows, survey windows).

The model inputs of these views (GP fits, cached) are :mod:`astrot2.compress.features`; the
real-sky recipe of the ``ztf`` model is :mod:`astrot2.realsky`.  NumPy only (torch-free).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from astrot2.augment import (
    AugmentConfig,
    ResampleConfig,
    alert_windows,
    survey_windows,
    training_copies,
)
from astrot2.classes import class_index
from astrot2.errors import ModelError
from astrot2.lightcurves import LightCurveBatch
from astrot2.manifest import read_manifest

if TYPE_CHECKING:
    from astrot2.runtime import Classifier

__all__ = ["TrainingSettings", "json_tuples", "split_indices", "split_views", "training_settings",
           "training_views"]


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


def json_tuples(doc: dict) -> dict:
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
    resample = ResampleConfig(**json_tuples(doc.get("resample") or {})) if n_resample else None
    return TrainingSettings(AugmentConfig(**json_tuples(doc["augment"])), resample,
                            int(doc["seed"]), int(doc["n_augment"]), n_resample,
                            float(doc.get("redshift_dropout") or 0.0))


def split_views(clf: Classifier, batch: LightCurveBatch, split: str, draw: int = 0
                ) -> dict[str, tuple[LightCurveBatch, np.ndarray]]:
    """The views of one split of a model's data that :func:`astrot2.evaluate.evaluate_model` scores.

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


def training_views(folder: str | Path, batch: LightCurveBatch, *,
                   n_augment: int | None = None) -> list[LightCurveBatch]:
    """The light curves a model folder was trained on, one batch per copy.

    The ``train`` objects of ``split.json`` as they are, ``n_augment`` augmented copies
    (seeds ``seed * 1000 + k`` of :func:`astrot2.train.train`; with the run's
    ``redshift_dropout``, some of their objects without host photo-z, as trained) and, for
    a model trained on re-observed survey alerts (``ztf``), its re-observed copies; every
    batch holds the train objects in the same order.

    Parameters
    ----------
    folder : str or Path
        A model folder as written by ``astrot2 train``.
    batch : LightCurveBatch
        The labelled PLAsTiCC training set.
    n_augment : int, optional
        Augmented copies (default: the training run's).
    """
    folder = Path(folder)
    m = read_manifest(folder)
    settings = training_settings(folder)
    return training_copies(
        batch.take(split_indices(batch, folder, "train")), settings.augment, settings.seed,
        settings.n_augment if n_augment is None else n_augment,
        redshift_dropout=settings.redshift_dropout if m.features.use_redshift else 0.0,
        gp=m.gp, target=m.survey, bands=m.features.bands, resample=settings.resample,
        n_resample=settings.n_resample)
