"""The real-sky data recipe of the ``ztf`` model: labelled real ZTF light curves, their
object-level split, their training views and the alert times they are judged at.

Torch-free.  Used identically by training (:mod:`astrot2.train_real`), by the real-sky
benchmark (``python -m benchmarks.real_sky``) and by its feature + trees baseline, so every
figure is measured on the same objects cut the same way.

- **Split**: one stratified object-level split (train / validation / test, seeded); the
  augmented copies of an object stay in its part.
- **Training views**: every train object as itself and ``n_fainter`` copies moved farther
  (:func:`astrot2.augment.fainter`), each cut ``n_cuts`` times at a random alert time
  (1 to ``max_days`` days after the first detection, log-uniform) with ``max_history`` days
  of history, as a ZTF alert carries.
- **Evaluation cuts** (:data:`CUTS`): first detection + 3 d and + 7 d, peak, peak + 5 d,
  peak + 15 d, each with <= 30 days of history.  The peak time is the catalogue's (a label:
  it places the cut, it is never an input).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from astrot2.augment import FainterConfig, cut_at, fainter, first_detection
from astrot2.classes import CLASSES, class_index
from astrot2.lightcurves import LightCurveBatch

__all__ = ["CUTS", "MAIN_CLASSES", "RealSkyConfig", "balanced_recall", "class_weights",
           "evaluation_cut", "labels_of", "random_cuts", "split_objects", "stratified_split",
           "trainable", "training_views"]

#: Alert times of the real-sky evaluation: name -> (reference, days after it).
CUTS: dict[str, tuple[str, float]] = {
    "first+3": ("first", 3.0), "first+7": ("first", 7.0), "peak": ("peak", 0.0),
    "peak+5": ("peak", 5.0), "peak+15": ("peak", 15.0)}

#: The classes of the balanced recall: the three supernova types a broker must separate.
MAIN_CLASSES = ("SNIa", "SNII", "SNIbc")


@dataclass(frozen=True)
class RealSkyConfig:
    """How real labelled light curves become training and evaluation data.

    Parameters
    ----------
    split : tuple of float
        Train, validation, test fractions (stratified by class).
    seed : int
        Split, cuts and augmentation.
    n_cuts : int
        Alert-time cuts of every training light curve (and of every fainter copy).
    min_days, max_days : float
        Range of a training cut, days after the first detection (log-uniform).
    max_history : float
        Days of history an alert carries (ZTF: 30).
    n_fainter : int
        Copies of every train object moved farther (:func:`astrot2.augment.fainter`).
    fainter : FainterConfig
    weight_floor : float
        Class weights are ``1 / max(n_class, weight_floor * n_largest)``: flat over the
        well-populated classes, without letting a class of 20 objects weigh as much as
        one of 700 (the effective class mix is written to the manifest).
    min_objects : int
        Classes with fewer train objects are left out of training (their probability is
        then 0 under every prior): a handful of objects (BTS: 5 TDE, 4 SN Iax, 3 SN
        Ia-91bg) cannot teach a class, and re-weighting to a flat prior would multiply
        whatever the network guesses for it.
    """

    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    n_cuts: int = 20
    min_days: float = 1.0
    max_days: float = 80.0
    max_history: float = 30.0
    n_fainter: int = 3
    fainter: FainterConfig = field(default_factory=FainterConfig)
    weight_floor: float = 0.1
    min_objects: int = 10


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train / validation / test, stratified by label, reproducible."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_train = round(fractions[0] * len(idx))
        n_val = round(fractions[1] * len(idx))
        for k, chunk in enumerate((idx[:n_train], idx[n_train:n_train + n_val],
                                   idx[n_train + n_val:])):
            parts[k].append(chunk)
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def split_objects(labels: np.ndarray, config: RealSkyConfig) -> dict[str, np.ndarray]:
    """Indices of the train / validation / test objects (stratified, seeded, disjoint)."""
    parts = stratified_split(np.asarray(labels), config.split, config.seed)
    return dict(zip(("train", "validation", "test"), parts, strict=True))


def evaluation_cut(batch: LightCurveBatch, name: str, max_history: float = 30.0
                   ) -> LightCurveBatch:
    """``batch`` as alerts issued at the cut ``name`` (one of :data:`CUTS`).

    Light curves without a catalogue peak (``extra["peak_mjd"]`` NaN) use their brightest
    detection for the peak cuts.
    """
    ref, days = CUTS[name]
    if ref == "first":
        base = first_detection(batch)
    else:
        base = np.asarray(batch.extra.get("peak_mjd", np.full(len(batch), np.nan)), float)
        brightest = _brightest_time(batch)
        base = np.where(np.isfinite(base), base, brightest)
    return cut_at(batch, base + days, max_history)


def _brightest_time(batch: LightCurveBatch) -> np.ndarray:
    """Time of each light curve's brightest detection (NaN without one)."""
    flux = np.where(batch.detected, batch.flux, -np.inf)
    out = np.full(len(batch), np.nan)
    for i in np.flatnonzero(batch.n_points > 0):
        s, e = batch.offsets[i], batch.offsets[i + 1]
        if np.isfinite(flux[s:e]).any():
            out[i] = batch.time[s + int(np.argmax(flux[s:e]))]
    return out


def training_views(train: LightCurveBatch, config: RealSkyConfig, amplitude: np.ndarray,
                   length_scale: np.ndarray, wavelength_scale: float = 6000.0
                   ) -> list[LightCurveBatch]:
    """The training views of the train objects (see the module docstring), one batch per
    (copy, cut); rejected light curves (no detection before the cut) are left in, marked.

    Parameters
    ----------
    train : LightCurveBatch
        The train objects, with ``extra["redshift"]`` for the fainter copies.
    config : RealSkyConfig
    amplitude, length_scale : ndarray of shape (n_objects,)
        Their GP hyperparameters on all bands (:func:`astrot2.gp.fit_gp`).
    """
    rng = np.random.default_rng(config.seed + 1)
    sources = [train] + [fainter(train, amplitude, length_scale, config.fainter,
                                 config.seed * 1000 + 100 + k, wavelength_scale)
                         for k in range(config.n_fainter)]
    return [view for src in sources for view in random_cuts(src, config, config.n_cuts, rng)]


def random_cuts(batch: LightCurveBatch, config: RealSkyConfig, n: int,
                rng: np.random.Generator) -> list[LightCurveBatch]:
    """``n`` alert views of every light curve: cut ``min_days``-``max_days`` days after its
    first detection (log-uniform, drawn from ``rng``), ``max_history`` days of history."""
    first = first_detection(batch)
    return [cut_at(batch, first + np.exp(rng.uniform(np.log(config.min_days),
                                                      np.log(config.max_days), len(batch))),
                   config.max_history) for _ in range(n)]


def trainable(y: np.ndarray, min_objects: int) -> np.ndarray:
    """Mask of the objects whose class has at least ``min_objects`` of them in ``y``."""
    counts = np.bincount(np.asarray(y), minlength=len(CLASSES))
    return counts[np.asarray(y)] >= min_objects


def class_weights(y: np.ndarray, floor: float) -> np.ndarray:
    """Loss weight of each class: ``1 / max(n_c, floor * n_max)``, 0 for absent classes,
    normalised to sum to 1 (see :class:`RealSkyConfig`)."""
    counts = np.bincount(np.asarray(y), minlength=len(CLASSES)).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.maximum(counts, floor * counts.max()), 0.0)
    return w / w.sum()


def balanced_recall(y: np.ndarray, top: np.ndarray, classes=MAIN_CLASSES) -> tuple[
        float, dict[str, float]]:
    """Mean recall over ``classes`` (class names) of top-class predictions, and each recall.

    Parameters
    ----------
    y, top : ndarray of int, shape (n,)
        True and predicted class indices (-1: rejected, counted wrong).
    """
    names = [c.name for c in CLASSES]
    recalls = {}
    for c in classes:
        sel = np.asarray(y) == names.index(c)
        recalls[c] = float(np.mean(np.asarray(top)[sel] == names.index(c))) if sel.any() \
            else float("nan")
    return float(np.nanmean(list(recalls.values()))), recalls


def labels_of(batch: LightCurveBatch) -> np.ndarray:
    """Class indices of a labelled batch (``extra["target"]`` PLAsTiCC codes)."""
    return class_index(batch.extra["target"])
