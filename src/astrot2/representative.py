"""The ``lsst`` model's data beyond its training set: representative views (avocado).

The PLAsTiCC training set is the spectroscopically confirmed part of the simulation:
bright, nearby, well sampled.  What Rubin sends is fainter, farther and sparser.  This
module owns the recipe that moves the model's own split toward that population, with
nothing of the test set:

- **Representative copies**: every object of a split moved to a higher redshift by
  :func:`astrot2.augment.redshifted` (time dilation, band shift through the 2D GP,
  distance-modulus dimming, each visit's own depth, the survey's detection trigger), so
  the copies follow a magnitude-limited, test-like redshift distribution.
- **Training views**: the train objects, their augmented alert-like copies (the run's
  own :class:`astrot2.augment.AugmentConfig`) and their representative copies cut the
  same way; a share of the copies shown without host photo-z (real Rubin alerts carry
  none today).
- **Representative validation**: the validation objects' representative copies, whole
  and at alert windows, with and without host photo-z: what model choice, early stopping
  and calibration look at (:func:`representative_views`), beside the plain split.

Torch-free: the benchmarks and ``astrot2 evaluate`` use the same views.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from astrot2.augment import (
    AugmentConfig,
    RedshiftConfig,
    alert_windows,
    augment,
    recorded_move,
    redshifted,
    without_redshift,
)
from astrot2.classes import class_index
from astrot2.errors import ConfigError
from astrot2.gp import GPConfig, fit_gp
from astrot2.lightcurves import LightCurveBatch

__all__ = ["REPRESENTATIVE_FILE", "RepresentativeConfig", "alert_copies", "folder_config",
           "representative_copies", "representative_training", "representative_views",
           "simulated_cuts"]

#: A representative run's settings inside its model folder (``astrot2 train --model lsst
#: --representative``): its ``representative`` section is the :class:`RepresentativeConfig`.
REPRESENTATIVE_FILE = "representative_config.json"


@dataclass(frozen=True)
class RepresentativeConfig:
    """Settings of the representative views.

    Parameters
    ----------
    redshift : RedshiftConfig
        How an object is moved farther (:func:`astrot2.augment.redshifted`).
    n_train : int
        Representative copies of every train object (each also cut at an alert time).
    n_validation : int
        Representative copies of every validation (or test) object.
    no_photoz : float
        Share of the training copies shown without host photo-z.
    seed : int
        Copy ``k`` of a split uses ``seed * 1000 + 700 + k`` (validation ``+ 800``, test
        ``+ 900``): the views are the same whenever they are rebuilt.
    """

    redshift: RedshiftConfig = field(default_factory=RedshiftConfig)
    n_train: int = 4
    n_validation: int = 2
    no_photoz: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_validation < 1:
            raise ConfigError("n_train and n_validation must be >= 1, got "
                              f"{self.n_train} and {self.n_validation}")
        if not 0.0 <= self.no_photoz <= 1.0:
            raise ConfigError(f"no_photoz must be in [0, 1], got {self.no_photoz}")


def folder_config(folder: str | Path) -> RepresentativeConfig | None:
    """The :class:`RepresentativeConfig` a model folder was fine-tuned with (its
    :data:`REPRESENTATIVE_FILE`), None for a folder without representative views."""
    path = Path(folder) / REPRESENTATIVE_FILE
    if not path.is_file():
        return None
    section = dict(json.loads(path.read_text())["representative"])
    redshift = recorded_move(RedshiftConfig, section.pop("redshift"))
    return RepresentativeConfig(redshift=redshift, **section)


#: Seed offset of each split's representative copies.
_SPLIT_OFFSET = {"train": 700, "validation": 800, "test": 900}


def representative_copies(batch: LightCurveBatch, gp: GPConfig, config: RepresentativeConfig,
                          split: str, n: int) -> list[LightCurveBatch]:
    """``n`` representative copies of ``batch`` (one GP fit, then one copy per seed).

    Parameters
    ----------
    batch : LightCurveBatch
        Objects of one split (``extra["hostgal_specz"]``, photo-z metadata).
    gp : GPConfig
        The model's GP settings (the source fit).
    config : RepresentativeConfig
    split : str
        ``train``, ``validation`` or ``test``: which seeds.
    n : int
    """
    fit = fit_gp(batch, gp)
    base = config.seed * 1000 + _SPLIT_OFFSET[split]
    return [redshifted(batch, fit.amplitude, fit.length_scale, config.redshift, base + k,
                       gp.wavelength_scale) for k in range(n)]


def alert_copies(copies: list[LightCurveBatch], augment_config: AugmentConfig,
                 no_photoz: float, seed: int) -> list[LightCurveBatch]:
    """Each batch of ``copies`` cut as the run's augmentation cuts (``augment_config``,
    seed ``seed + k`` for copy ``k``), a share ``no_photoz`` of its objects without host
    photo-z (draws seeded by ``seed + 49``)."""
    rng = np.random.default_rng(seed + 49)
    views = []
    for k, copy in enumerate(copies):
        cut = augment(copy, augment_config, seed + k)
        views.append(without_redshift(cut, rng.random(len(cut)) < no_photoz))
    return views


def simulated_cuts(simulated: LightCurveBatch, augment_config: AugmentConfig,
                   config: RepresentativeConfig, n_cuts: int) -> list[LightCurveBatch]:
    """``n_cuts`` alert cuts of simulated light curves for a representative run's training
    views (the network's and its companion's: the same cuts), the representative copies'
    share without host photo-z (:func:`alert_copies`, seeds ``config.seed * 1000 + 850``)."""
    return alert_copies([simulated] * n_cuts, augment_config, config.no_photoz,
                        config.seed * 1000 + 850)


def representative_training(train: LightCurveBatch, gp: GPConfig, augment_config:
                            AugmentConfig, config: RepresentativeConfig
                            ) -> list[LightCurveBatch]:
    """The representative training views of the train objects, one batch per copy: each
    representative copy cut at an alert time, some without host photo-z
    (:func:`alert_copies`)."""
    copies = representative_copies(train, gp, config, "train", config.n_train)
    return alert_copies(copies, augment_config, config.no_photoz, config.seed * 1000 + 750)


def representative_views(batch: LightCurveBatch, gp: GPConfig, augment_config: AugmentConfig,
                         config: RepresentativeConfig, split: str = "validation"
                         ) -> dict[str, tuple[LightCurveBatch, np.ndarray]]:
    """The representative views of one split's objects, each with its class indices.

    ``whole`` and ``alert_windows`` (:func:`astrot2.augment.alert_windows` with the run's
    augmentation settings), each also ``..._no_photoz``; the ``n_validation`` copies of
    each object concatenated.  Copies the trigger rejected stay in the batches, rejected
    (``not_detected``): they are not alerts, scorers leave them out.

    Parameters
    ----------
    batch : LightCurveBatch
        The split's objects (labelled: ``extra["target"]``).
    gp : GPConfig
    augment_config : AugmentConfig
        The model's training augmentation (its alert cuts).
    config : RepresentativeConfig
    split : str
        ``validation`` or ``test`` (the seeds).
    """
    copies = representative_copies(batch, gp, config, split, config.n_validation)
    whole = LightCurveBatch.concat(copies)
    y = np.tile(class_index(batch.extra["target"]), len(copies))
    seed = config.seed * 1000 + _SPLIT_OFFSET[split] + 99
    windows = alert_windows(whole, augment_config, seed)
    return {"whole": (whole, y), "alert_windows": (windows, y),
            "whole_no_photoz": (without_redshift(whole), y),
            "alert_windows_no_photoz": (without_redshift(windows), y)}
