"""Training-set augmentation of light curves (NumPy, deterministic given a seed).

The PLAsTiCC training set is small and brighter than what brokers see, and an alert
carries only part of a light curve.  Each augmented copy of a light curve:

- is cut at a random time after its first detection (``truncate``: alert-like partial
  light curves, from a few days to the whole curve), optionally keeping only the last
  ``max_history`` days before the cut (ZTF alerts carry <= 30 days of history);
- loses a random fraction of its points (``drop``: cadence and weather);
- is shifted in time (``shift``; the GP grid is relative, so this tests invariance);
- optionally keeps only some bands (``bands``: the ZTF model sees g and r only).

Redshifting of extragalactic objects (avocado) is not implemented yet.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from astrot2.lightcurves import LightCurveBatch

__all__ = ["AugmentConfig", "alert_windows", "augment"]


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings.

    Parameters
    ----------
    p_truncate : float
        Probability that a copy is cut at a random time after the first detection.
    min_days, max_days : float
        Range of the cut, in days after the first detection (uniform in log).
    max_history : float or None
        Keep only this many days before the cut (ZTF: 30); None keeps everything.
    drop_fraction : tuple of float
        Range of the fraction of points removed.
    max_shift : float
        Time shift range in days (+/-).
    bands : tuple of int or None
        Band indices kept (None: all).
    """

    p_truncate: float = 0.5
    min_days: float = 1.0
    max_days: float = 200.0
    max_history: float | None = None
    drop_fraction: tuple[float, float] = (0.0, 0.5)
    max_shift: float = 50.0
    bands: tuple[int, ...] | None = None


def augment(batch: LightCurveBatch, config: AugmentConfig, seed: int) -> LightCurveBatch:
    """One augmented copy of every light curve of ``batch`` (same order, same ids).

    A copy always keeps at least its first detection, so it is never empty when the
    original had a detection.
    """
    rng = np.random.default_rng(seed)
    n = batch.n_objects
    owner = batch.owner
    det_time = np.where(batch.detected, batch.time, np.nan)
    first = batch.reduce(det_time, np.fmin)
    first = np.where(np.isfinite(first), first, batch.reduce(batch.time, np.fmin))

    cut = np.full(n, np.inf)
    trunc = rng.random(n) < config.p_truncate
    log_days = rng.uniform(np.log(config.min_days), np.log(config.max_days), n)
    cut[trunc] = first[trunc] + np.exp(log_days[trunc])
    keep = batch.time <= cut[owner]
    if config.max_history is not None:
        last = batch.reduce(np.where(keep, batch.time, np.nan), np.fmax)
        keep &= batch.time >= last[owner] - config.max_history
    drop = rng.uniform(*config.drop_fraction, n)
    keep &= rng.random(len(batch.time)) >= drop[owner]
    if config.bands is not None:
        keep &= np.isin(batch.band, config.bands)
    # never lose the first detection (in a kept band)
    is_first = batch.detected & (batch.time == first[owner])
    if config.bands is not None:
        is_first &= np.isin(batch.band, config.bands)
    keep |= is_first

    shift = rng.uniform(-config.max_shift, config.max_shift, n)
    return LightCurveBatch.from_observations(
        batch.survey,
        alert_id=batch.alert_id,
        object_id=batch.object_id,
        owner=owner[keep],
        time=batch.time[keep] + shift[owner[keep]],
        flux=batch.flux[keep],
        flux_err=batch.flux_err[keep],
        band=batch.band[keep],
        detected=batch.detected[keep],
        metadata=batch.metadata,
        reject=batch.reject,
        extra=batch.extra,
    )


def alert_windows(batch: LightCurveBatch, config: AugmentConfig, seed: int) -> LightCurveBatch:
    """Alert-like views of ``batch`` for evaluation: always truncated, few dropped points.

    The cut and the history limit come from ``config`` (the model's training
    augmentation), the time shift is off; used identically by ``astrot2 train`` and
    ``astrot2 evaluate`` so that their alert-window figures agree.
    """
    cfg = replace(config, p_truncate=1.0, drop_fraction=(0.0, 0.1), max_shift=0.0)
    return augment(batch, cfg, seed)
