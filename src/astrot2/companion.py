"""The feature companion: gradient-boosted trees on light-curve statistics, beside t2.

t2 sees a light curve through its GP interpolation, normalised by its peak.  A
gradient-boosting model on a few per-band statistics of the *raw* points (the project's
baseline, :mod:`benchmarks.baseline`) makes different mistakes: on the held-out PLAsTiCC
split it is more accurate than t2 but worse in log-loss.  Their product of experts,

    logits = a(n) * t2_logits + b(n) * log p_companion

is better than either (``docs/model.md``).  The weights are linear in ``log(1 + n)``, ``n``
the light curve's points (:class:`Combination`), fitted on the validation split by the
negative log-likelihood: the combination is also its own calibration (``astrot2
calibrate --model NAME+companion`` may still store a temperature).

Opt-in: ``Classifier.load("lsst-plasticc+companion")`` (any command's ``--model NAME+companion``).
The shipped default stays the compressed network alone (<= 12 KB, the runtime's size and
latency budget); the companion adds a few hundred KB and a tree-ensemble pass.

The companion sees only what its network sees: the model's bands, statistics relative to
the light curve's own peak (scale-free), and the network's extra inputs (brightness and
host photo-z only where the network uses them), so a ``ztf`` companion, like ``ztf``, ignores
PLAsTiCC's absolute brightness.  Two feature sets (:data:`FEATURE_SETS`, recorded in the
section): the raw points' statistics alone ("points", the first companions), or those and
the GP's shape around its peak ("points+gp": colours at four epochs, rise and fall times,
per-band peak delays, and, for a network reading brightness and photo-z, the peak absolute
magnitude and rest-frame timescales, avocado's strongest features), or those and how well
a SN Ia template explains the raw points ("points+gp+salt2": a batched SALT2 grid fit,
:mod:`astrot2.templates`; its band-flux table ships beside the trees, sha256 in the
section's ``templates``), or those and how well core-collapse templates explain them
against SALT2 ("points+gp+salt2+cc": :func:`astrot2.templates.cc_features`, Vincenzi et
al. 2019's templates and analytic plateau SNe II; a second table, ``cc_grid.npz``, sha256
in ``cc_templates``). It is trained on the
network's own training views (the ``train`` objects of ``split.json``, augmented and
re-observed copies as in training; for a network with host photo-z inputs, every view also
without it, as real alerts come), stored as ONNX (``companion.onnx``, sha256 in the
manifest's ``companion`` section) and run by ONNX Runtime: inference needs no scikit-learn.
Fitting (:mod:`astrot2.companion_fit`, ``astrot2 companion``) needs scikit-learn and onnx
(the ``train`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrot2.classes import CLASSES
from astrot2.errors import ModelError
from astrot2.features import (
    BAND_STATS,
    FeatureConfig,
    feature_names,
    gp_summary_features,
    gp_summary_names,
    summary_features,
)
from astrot2.gp import GPResult
from astrot2.lightcurves import LightCurveBatch
from astrot2.sessions import onnx_session
from astrot2.templates import (
    CC_FEATURES,
    TEMPLATE_FEATURES,
    TemplateGrid,
    cc_features,
    cc_groups,
    template_features,
)
from astrot2.utils import sha256_file

__all__ = [
    "CC_TEMPLATES_FILE",
    "COMPANION_FILE",
    "FEATURE_SETS",
    "TEMPLATES_FILE",
    "Combination",
    "Companion",
    "companion_feature_names",
    "companion_features",
    "feature_names",
    "onnx_probabilities",
    "summary_features",
    "uses_cc_templates",
    "uses_templates",
]

#: File name of the companion inside a model folder.
COMPANION_FILE = "companion.onnx"
#: The companion's feature sets: the raw points' statistics (:func:`summary_features`,
#: the first companions, and a section without ``feature_set``), and those followed by the
#: GP's shape around its peak (:func:`astrot2.features.gp_summary_features`), and those
#: followed by the SALT2 grid fit's (:func:`astrot2.templates.template_features`), and
#: those followed by the core-collapse templates' (:func:`astrot2.templates.cc_features`).
FEATURE_SETS = ("points", "points+gp", "points+gp+salt2", "points+gp+salt2+cc")
#: File name of the SALT2 band-flux table of a "points+gp+salt2" companion.
TEMPLATES_FILE = "salt2_grid.npz"
#: File name of the core-collapse templates' table of a "points+gp+salt2+cc" companion.
CC_TEMPLATES_FILE = "cc_grid.npz"


def uses_templates(feature_set: str) -> bool:
    """Whether a companion of ``feature_set`` reads the SALT2 grid fit."""
    return "+salt2" in feature_set


def uses_cc_templates(feature_set: str) -> bool:
    """Whether a companion of ``feature_set`` reads the core-collapse template fits."""
    return feature_set.endswith("+cc")


def companion_feature_names(features: FeatureConfig, n_extra: int, feature_set: str
                            ) -> list[str]:
    """Names of the columns of :func:`companion_features`."""
    names = feature_names(features.bands, n_extra)
    if feature_set != "points":
        names += gp_summary_names(features.bands, features.use_luminosity)
    if uses_templates(feature_set):
        names += [f"salt2_{name}" for name in TEMPLATE_FEATURES]
    if uses_cc_templates(feature_set):
        names += [f"cc_{name}" for name in CC_FEATURES]
    return names


def companion_features(selected: LightCurveBatch, extra: np.ndarray, gp: GPResult,
                       features: FeatureConfig, feature_set: str,
                       statistics: np.ndarray | None = None,
                       templates: TemplateGrid | None = None, n_threads: int | None = None,
                       cc_templates: TemplateGrid | None = None) -> np.ndarray:
    """The companion's inputs (float32, NaN for missing values): :func:`summary_features`
    and, for ``feature_set`` "points+gp", :func:`astrot2.features.gp_summary_features`;
    "points+gp+salt2" adds :func:`astrot2.templates.template_features`, and
    "points+gp+salt2+cc" :func:`astrot2.templates.cc_features` after them.

    Parameters
    ----------
    selected, extra, gp
        The network's band-selected light curves, extra inputs and GP fits
        (:func:`astrot2.features.prepare`).
    features : FeatureConfig
        The network's.
    feature_set : str
        One of :data:`FEATURE_SETS`.
    statistics : ndarray, optional
        The network's own :func:`astrot2.features.light_curve_statistics` of the same
        light curves (:func:`astrot2.features.prepare_with_statistics`): the columns they
        share (the raw points' statistics, and the GP-shape ones of a network reading
        them) are taken from there, not computed again; the values are the same.
    templates : TemplateGrid, optional
        The SALT2 table (needed by "points+gp+salt2").
    n_threads : int, optional
        Threads of the template fit (default: all cores).
    cc_templates : TemplateGrid, optional
        The core-collapse table (needed by "points+gp+salt2+cc").

    Raises
    ------
    ModelError
        A "+salt2" set without ``templates``, "+cc" without ``cc_templates``.
    """
    n_points = len(features.bands) * len(BAND_STATS) + 1  # per band, then n_points
    if statistics is None:
        points = summary_features(selected, extra, features.bands)
    else:
        points = np.column_stack([statistics[:, :n_points], extra]).astype(np.float32)
        points[~np.isfinite(points)] = np.nan  # as summary_features marks them
    if feature_set == "points":
        return points
    n_gp = len(gp_summary_names(features.bands, features.use_luminosity))
    shape = (statistics[:, -n_gp:] if statistics is not None and features.gp_statistics
             else gp_summary_features(selected, gp, features.bands, features.use_luminosity))
    if not uses_templates(feature_set):
        return np.column_stack([points, shape])
    if templates is None:
        raise ModelError(f"the {feature_set!r} companion features need the SALT2 table")
    salt2 = template_features(selected, templates, n_threads)
    if not uses_cc_templates(feature_set):
        return np.column_stack([points, shape, salt2])
    if cc_templates is None:
        raise ModelError(f"the {feature_set!r} companion features need the core-collapse "
                         "table")
    return np.column_stack([points, shape, salt2,
                            cc_features(selected, cc_templates, salt2, n_threads)])


class Companion:
    """A loaded, verified companion: ONNX Runtime session and combination weights."""

    def __init__(self, session, section: dict, features: FeatureConfig,
                 templates: TemplateGrid | None = None, threads: int | None = None,
                 cc_templates: TemplateGrid | None = None) -> None:
        self.session = session
        self.templates = templates
        self.cc_templates = cc_templates
        self.threads = threads
        self.section = section
        self.combination = Combination(**section["combination"])
        self.features = features
        self.feature_set = section.get("feature_set", "points")
        self.classes = section.get("classes")  # class indices of the trees; None: all

    @classmethod
    def load(cls, folder: Path, section: dict, features: FeatureConfig, n_extra: int,
             threads: int | None = None) -> Companion:
        """Load ``folder / section['file']``, checking its sha256 against ``section``.

        Parameters
        ----------
        folder : Path
            The model folder.
        section : dict
            The manifest's ``companion`` section.
        features : FeatureConfig
            The network's (the companion reads its bands and extra inputs).
        n_extra : int
            The network's extra inputs (part of the companion's features).
        threads : int, optional
            ONNX Runtime intra-op threads.

        Raises
        ------
        ModelError
            Missing or modified file, malformed section, features other than this
            version's :func:`companion_features`, or ONNX Runtime refusing it.
        """
        try:
            file = folder / section["file"]
            sha = section["sha256"]
            Combination(**section["combination"])
            feature_set = section.get("feature_set", "points")
            if feature_set not in FEATURE_SETS or tuple(section["bands"]) != features.bands:
                raise ValueError(f"feature set {feature_set!r}, bands {section['bands']}")
            classes = section.get("classes")
            if classes is not None and (sorted(set(classes)) != list(classes) or not all(
                    isinstance(c, int) and 0 <= c < len(CLASSES) for c in classes)):
                raise ValueError(f"classes {classes}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{folder}: malformed companion section ({exc})") from exc
        if section.get("features") != companion_feature_names(features, n_extra, feature_set):
            raise ModelError(f"{folder}: the companion was fitted on other features than "
                             "this astrot2 computes; fit it again (astrot2 companion)")
        _check_file(folder, file, sha)
        templates = (_load_table(folder, section, "templates", features)
                     if uses_templates(feature_set) else None)
        cc_templates = (_load_table(folder, section, "cc_templates", features)
                        if uses_cc_templates(feature_set) else None)
        # no spin-waiting: a second spinning thread pool beside the network's tripled the
        # single-alert p99 (5.6 vs 2.0 ms, measured); batches still use the threads
        return cls(onnx_session(str(file), file, threads, spinning=False), section, features,
                   templates, threads, cc_templates)

    def probabilities(self, selected: LightCurveBatch, extra: np.ndarray, gp: GPResult,
                      statistics: np.ndarray | None = None) -> np.ndarray:
        """The companion's class probabilities (float64, rows sum to 1).

        ``selected``, ``extra``, ``gp`` and ``statistics`` as :func:`companion_features`
        takes them.
        """
        return onnx_probabilities(self.session, companion_features(
            selected, extra, gp, self.features, self.feature_set, statistics,
            self.templates, self.threads, self.cc_templates), self.classes)

    def combine(self, logits: np.ndarray, prob: np.ndarray,
                selected: LightCurveBatch) -> np.ndarray:
        """The network's logits combined with the companion's probabilities ``prob`` for
        the light curves of ``selected`` (:class:`Combination`)."""
        return self.combination.logits(logits, prob, np.diff(selected.offsets))


def _load_table(folder: Path, section: dict, key: str, features: FeatureConfig
                ) -> TemplateGrid:
    """The template table of the section's record ``key`` (``templates``, ``cc_templates``),
    its sha256 checked.

    Raises
    ------
    ModelError
        Malformed record, missing or modified file, a table of other bands, a
        ``cc_templates`` table without both groups of core-collapse templates.
    """
    try:
        record = section[key]
        grid_file, grid_sha = folder / record["file"], record["sha256"]
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{folder}: malformed companion section ({exc})") from exc
    _check_file(folder, grid_file, grid_sha)
    grid = TemplateGrid.load(grid_file)
    if not set(features.bands) <= set(grid.bands):
        raise ModelError(f"{grid_file}: template table of bands {grid.bands}, not of the "
                         f"model's {features.bands}")
    if key == "cc_templates":
        try:
            cc_groups(grid)
        except ModelError as exc:
            raise ModelError(f"{grid_file}: {exc}") from exc
    return grid


def _check_file(folder: Path, file: Path, sha: str) -> None:
    """Raise :class:`ModelError` unless ``file`` exists with sha256 ``sha``."""
    if not file.is_file():
        raise ModelError(f"{folder}: companion file {file.name} is missing")
    if sha256_file(file) != sha:
        raise ModelError(f"{file}: sha256 does not match the manifest's companion "
                         "section; the file was modified or corrupted")


def onnx_probabilities(session, features: np.ndarray, classes: list[int] | None = None
                       ) -> np.ndarray:
    """Run a tree-ensemble classifier of :func:`trees_to_onnx`: its class probabilities,
    shape (n, n_classes).  ``classes``: the class indices of its outputs when the trees
    learned only some classes (a network fine-tuned without them); the others get 0."""
    name = session.get_inputs()[0].name
    width = session.get_outputs()[1].shape[1] or 0
    if len(features) == 0:
        prob = np.zeros((0, width))
    else:
        prob = np.asarray(session.run(None, {name: features.astype(np.float32)})[1],
                          dtype=np.float64)
    if classes is None:
        return prob
    out = np.zeros((len(prob), len(CLASSES)))
    out[:, classes] = prob
    return out


@dataclass(frozen=True)
class Combination:
    """The product of experts ``a(n) * logits + b(n) * log p_companion``.

    The weights are linear in ``x = log(1 + n) - center``, ``n`` the light curve's points
    in the model's bands: how far to trust each expert may depend on how much data there
    is (a 3-point alert and a 300-point light curve).  ``p`` is floored at 1e-7.
    """

    t2: float
    t2_slope: float
    companion: float
    companion_slope: float
    center: float  # mean log(1 + n_points) of the fitting sample

    def logits(self, logits: np.ndarray, prob: np.ndarray, n_points: np.ndarray
               ) -> np.ndarray:
        """Combined logits, shape of ``logits``."""
        x = np.log1p(np.asarray(n_points, dtype=np.float64)) - self.center
        a = (self.t2 + self.t2_slope * x)[:, None]
        b = (self.companion + self.companion_slope * x)[:, None]
        return a * logits + b * np.log(np.clip(prob, 1e-7, 1.0))
