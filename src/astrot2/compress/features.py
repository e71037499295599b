"""Training-side inputs of a model folder, rebuilt exactly as ``astrot2 train`` built them.

Compression fine-tuning, clustering calibration, static-quantisation calibration and
distillation all need the model's training inputs: the folder's training views
(:func:`astrot2.recipe.training_views`: the ``train`` objects of its ``split.json`` plus
``n_augment`` augmented copies, same seeds as :func:`astrot2.train.train`) and its
``validation`` objects, fed through the torch-free seam :func:`astrot2.features.prepare`
with the folder's GP and feature settings.  The GP fits take tens of seconds, so the arrays
are cached in an ``.npz`` (plain arrays, never pickles).

Torch-free (NumPy only).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from astrot2.classes import class_index
from astrot2.features import FeatureConfig, prepare
from astrot2.gp import GPConfig
from astrot2.lightcurves import LightCurveBatch
from astrot2.manifest import read_manifest
from astrot2.recipe import split_indices, training_settings, training_views

__all__ = ["TrainingInputs", "training_inputs"]


@dataclass(frozen=True)
class TrainingInputs:
    """Model inputs of a model's train views (with augmentation) and validation objects.

    Attributes
    ----------
    x_train : ndarray of float32, shape (n_views, n_steps, n_channels)
    extra_train : ndarray of float32, shape (n_views, n_extra)
    y_train : ndarray of int64, shape (n_views,)
    x_val, extra_val, y_val : the same for the validation objects (no augmentation).
    class_weight : ndarray of shape (n_classes,), optional
        Loss weight of each class in fine-tuning and in the validation loss (default:
        ``1 / n_class`` over the train views, the flat metric).
    """

    x_train: np.ndarray
    extra_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    extra_val: np.ndarray
    y_val: np.ndarray
    class_weight: np.ndarray | None = None

    def subset(self, n: int, seed: int = 0) -> TrainingInputs:
        """At most ``n`` train views and ``n`` validation objects, a seeded random choice."""
        rng = np.random.default_rng(seed)
        tr = np.sort(rng.permutation(len(self.y_train))[:n])
        va = np.sort(rng.permutation(len(self.y_val))[:n])
        return TrainingInputs(self.x_train[tr], self.extra_train[tr], self.y_train[tr],
                              self.x_val[va], self.extra_val[va], self.y_val[va],
                              self.class_weight)


def _usable(batch: LightCurveBatch, gp: GPConfig, feats: FeatureConfig):
    x, extra, _, result = prepare(batch, gp, feats)
    ok = result.converged  # as astrot2.train: converged GP fits only
    return x[ok], extra[ok], ok


def training_inputs(folder: str | Path, batch: LightCurveBatch, *,
                    n_augment: int | None = None, cache: str | Path | None = None,
                    log=print) -> TrainingInputs:
    """Train and validation inputs of a model folder (``split.json``, ``train_config.json``).

    Parameters
    ----------
    folder, batch
        The model folder and the labelled PLAsTiCC set, as :func:`astrot2.recipe.
        training_views`.
    n_augment : int, optional
        Augmented copies per train object (default: the training run's); copies ``k``
        use the seed ``seed * 1000 + k`` of :func:`astrot2.train.train`, so the first
        ``n_augment`` of training are reproduced exactly.
    cache : str or Path, optional
        Folder for an ``.npz`` cache keyed by the settings and the data.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    gp = manifest.gp
    feats = manifest.features
    settings = training_settings(folder)
    aug, seed = settings.augment, settings.seed
    n_aug = settings.n_augment if n_augment is None else n_augment
    key = hashlib.sha256(json.dumps(
        [{f.name: getattr(gp, f.name) for f in fields(gp)}, feats.to_dict(), repr(aug), seed,
         n_aug, (folder / "split.json").read_text(), (folder / "train_config.json").read_text(),
         batch.n_objects,
         len(batch.time)], default=list).encode()).hexdigest()[:16]
    path = Path(cache) / f"inputs-{key}.npz" if cache is not None else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return TrainingInputs(**{f.name: z[f.name] for f in fields(TrainingInputs)
                                     if f.name != "class_weight"})
    y_all = class_index(batch.extra["target"])
    tr = split_indices(batch, folder, "train")
    va = split_indices(batch, folder, "validation")
    xs, es, ys = [], [], []
    for k, view in enumerate(training_views(folder, batch, n_augment=n_aug)):
        x, e, ok = _usable(view, gp, feats)
        xs.append(x)
        es.append(e)
        ys.append(y_all[tr][ok])
        log(f"train view {k}: {len(x)} objects")
    x_va, e_va, ok_va = _usable(batch.take(va), gp, feats)
    out = TrainingInputs(np.concatenate(xs), np.concatenate(es),
                         np.concatenate(ys).astype(np.int64), x_va, e_va,
                         y_all[va][ok_va].astype(np.int64))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{f.name: getattr(out, f.name) for f in fields(TrainingInputs)
                          if f.name != "class_weight"})
    return out
