"""Temperature scaling of a model folder (``astrot2 calibrate``; NumPy + SciPy, torch-free).

- **Temperature scaling** (Guo et al. 2017): one scalar ``T`` divides the logits,
  ``p = softmax(z / T)``; ``T`` minimises the negative log-likelihood of the validation
  split.  It changes no ranking (top class, ROC AUC) and only the confidence.  ``astrot2
  calibrate`` stores it, with the ECE before/after on the validation and test splits, in
  the ``calibration`` section of the model's manifest; :meth:`astrot2.Classifier.predict`
  divides the logits by it.  The model file (and its sha256) is untouched.
- **The manifest**: :func:`write_calibration` stores the section, :func:`refresh_metrics`
  re-measures the held-out metrics of the calibrated model.

The measures (ECE, reliability, risk-coverage) are :mod:`astrot2.metrics`, their figures
:mod:`astrot2.plotting`, the per-alert uncertainty of ``astrot2 classify``
:mod:`astrot2.uncertainty`.

Which light curves: a broker sees alerts, i.e. light curves cut at the time of the alert,
not whole ones; the two are different distributions (a partial light curve is less
informative, the model is less sure and more often wrong).  The temperature is fitted on
the union of the views of the validation split that ``astrot2 evaluate`` builds
(:func:`astrot2.recipe.split_views`: the whole light curves, the alert windows of
:func:`astrot2.augment.alert_windows`, and for a model trained on re-observed survey
alerts such as ``ztf``, those survey windows), and the ECE is reported on each view of the
test split separately.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from astrot2.errors import ConfigError, ModelError
from astrot2.lightcurves import LightCurveBatch
from astrot2.metrics import (
    N_BINS,
    ece_noise_floor,
    expected_calibration_error,
    negative_log_likelihood,
    softmax,
    uncertainty_report,
)
from astrot2.modelref import COMPANION_SUFFIX, ModelRef
from astrot2.plotting import plot_reliability, plot_risk_coverage
from astrot2.recipe import split_views

__all__ = [
    "calibrate_model",
    "fit_temperature",
    "raw_logits",
    "refresh_metrics",
    "run_calibration",
    "split_logits",
    "write_calibration",
]


def fit_temperature(logits: np.ndarray, y: np.ndarray,
                    bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature that minimises the NLL of ``y`` (bounded scalar search in log T).

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_classes)
    y : array-like of int, shape (n_samples,)
        Class indices.
    bounds : tuple of float
        Search range of ``T``.

    Returns
    -------
    float
    """
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        raise ConfigError("fit_temperature needs at least one labelled sample, got 0")
    res = minimize_scalar(lambda log_t: negative_log_likelihood(logits, y, float(np.exp(log_t))),
                          bounds=tuple(np.log(bounds)), method="bounded",
                          options={"xatol": 1e-6})
    return float(np.exp(res.x))


def raw_logits(clf, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The network's raw logits (float64, before any temperature) for model inputs:
    :meth:`astrot2.runtime.Classifier.logits` (slices of ``MODEL_BATCH`` light curves)."""
    return clf.logits(feeds)


def split_logits(model: str | Path | ModelRef, batch: LightCurveBatch, split: str,
                 threads: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Uncalibrated logits and class indices of each view of one split of a model's data.

    The logits of :meth:`astrot2.runtime.Classifier.scores` (network, combined with the
    feature companion when the model has one).  Views as in :func:`astrot2.recipe.split_views`.
    Rejected light curves (no GP, no detection) are left out.

    Returns
    -------
    dict
        view -> ``(logits (n, n_classes) float64, y (n,) int)``.
    """
    from astrot2.runtime import Classifier

    clf = Classifier.load(model, threads=threads)  # NAME+companion: the combination
    out = {}
    for key, (view, y) in split_views(clf, batch, split).items():
        logits, status = clf.scores(view, check_survey=False)
        keep = (status == "ok") & np.isfinite(logits).all(axis=1)
        out[key] = (logits[keep], y[keep])
    return out


def calibrate_model(model: str | Path | ModelRef, batch: LightCurveBatch, *, n_bins: int = N_BINS,
                    threads: int | None = None) -> tuple[dict, dict]:
    """Fit the temperature of a model on its validation split; measure ECE before/after.

    Parameters
    ----------
    model : str or Path
        Shipped model name or model folder (with ``split.json``, ``train_config.json``).
    batch : LightCurveBatch
        The labelled PLAsTiCC training set.
    n_bins : int
        ECE bins.

    Returns
    -------
    section : dict
        The manifest's ``calibration`` section: ``method, temperature, n_bins, fitted_on,
        ece`` (``{split: {view: {"before", "after", "n"}}}``).
    curves : dict
        ``{split: {view: {"logits", "y"}}}`` arrays, for figures.
    """
    logits = {s: split_logits(model, batch, s, threads) for s in ("validation", "test")}
    fit_views = list(logits["validation"])  # every view: whole, windows (, survey)
    fit_z = np.concatenate([logits["validation"][v][0] for v in fit_views])
    fit_y = np.concatenate([logits["validation"][v][1] for v in fit_views])
    temperature = fit_temperature(fit_z, fit_y)
    ece: dict[str, dict] = {}
    for split, views in logits.items():
        ece[split] = {}
        for view, (z, y) in views.items():
            ece[split][view] = {
                "n": len(y),
                "before": expected_calibration_error(softmax(z), y, n_bins),
                "after": expected_calibration_error(softmax(z, temperature), y, n_bins),
                "noise_floor_after": ece_noise_floor(softmax(z, temperature), n_bins),
                "nll_before": negative_log_likelihood(z, y, 1.0),
                "nll_after": negative_log_likelihood(z, y, temperature),
            }
    section = {"method": "temperature_scaling", "temperature": temperature,
               "n_bins": n_bins, "ece_kind": "top-label, equal-width bins",
               "fitted_on": {"split": "validation", "views": fit_views,
                             "objective": "negative log-likelihood"},
               "ece": ece}
    return section, logits


def write_calibration(model: str | Path | ModelRef, section: dict) -> Path:
    """Store ``section`` as the ``calibration`` of a model folder's manifest.json (of its
    ``companion`` section for ``NAME+companion``).

    Only manifest.json is rewritten (atomically, same layout otherwise); the model file and
    its sha256 are unchanged, and the result is checked with
    :func:`astrot2.manifest.read_manifest` before it replaces the old manifest.
    """
    from astrot2.manifest import rewrite_manifest
    ref = ModelRef.parse(model)
    folder = ref.folder
    if not np.isfinite(section.get("temperature", np.nan)) or section["temperature"] <= 0:
        raise ModelError(f"{folder}: refusing a calibration without a positive temperature "
                         f"({section.get('temperature')!r})")
    return rewrite_manifest(folder, lambda doc: _owner(doc, ref.companion)
                            .__setitem__("calibration", section))


def _owner(doc: dict, companion: bool) -> dict:
    """The manifest section that holds calibration and metrics: the document itself, or
    its ``companion`` section for ``NAME+companion``."""
    if not companion:
        return doc
    if "companion" not in doc:
        raise ModelError("the model has no feature companion")
    return doc["companion"]


def run_calibration(model: str | Path | ModelRef, output: str | Path, *,
                    data: str | Path | None = None, write: bool = True,
                    threads: int | None = None) -> dict:
    """``astrot2 calibrate``: fit, store and report a model's temperature.

    Writes ``output/calibration.json`` (the section and the risk-coverage curves),
    ``output/reliability.png`` (test split, before/after) and ``output/risk_coverage.png``;
    with ``write``, the ``calibration`` section of the model's manifest.json.

    Parameters
    ----------
    model : str or Path
        Shipped model name or model folder.
    output : str or Path
        Report folder.
    data : str or Path, optional
        Folder of the PLAsTiCC files (see :func:`astrot2.data.fetch_plasticc`).
    write : bool
        Store the section in the manifest (``--dry-run`` turns it off).
    """
    from astrot2.data import fetch_plasticc
    from astrot2.io.plasticc import read_plasticc

    model = ModelRef.parse(model)
    files = fetch_plasticc(data, progress=False)
    batch = read_plasticc(files.lightcurves, files.metadata)
    section, logits = calibrate_model(model, batch, threads=threads)
    name = model.folder.name + (COMPANION_SUFFIX if model.companion else "")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    temperature = section["temperature"]
    plot_reliability(logits["test"], temperature, out / "reliability.png",
                     f"{name}: held-out test split, top-label ECE ({N_BINS} bins)")
    curves = uncertainty_report(logits["test"], temperature)
    plot_risk_coverage(curves, out / "risk_coverage.png",
                       f"{name}: held-out test split, calibrated (T = {temperature:.2f})")
    report = {"model": name, "calibration": section, "risk_coverage_test": curves}
    (out / "calibration.json").write_text(json.dumps(report, indent=2) + "\n")
    if write:
        write_calibration(model, section)
        report["manifest"] = str(refresh_metrics(model, batch, threads=threads))
    return report


def refresh_metrics(model: str | Path | ModelRef, batch: LightCurveBatch, *,
                    threads: int | None = None) -> Path:
    """Re-measure a calibrated model's held-out metrics into its manifest.

    The manifest's ``metrics.test_split`` describe what the runtime returns, so after a
    temperature is stored they are measured again with :func:`astrot2.evaluate.
    evaluate_model` (calibrated probabilities); the figures the model was shipped with are
    kept once as ``metrics.test_split_uncalibrated``.  Only manifest.json changes.
    """
    from astrot2.evaluate import evaluate_model
    from astrot2.manifest import rewrite_manifest

    model = ModelRef.parse(model)
    report = evaluate_model(model, batch, split="test", threads=threads)
    keys = ("flat_log_loss", "kaggle_log_loss", "accuracy", "macro_f1")

    def update(doc: dict) -> None:
        metrics = _owner(doc, model.companion).setdefault("metrics", {})
        old = metrics.get("test_split", {})
        if old and "test_split_uncalibrated" not in metrics:
            metrics["test_split_uncalibrated"] = old
        metrics["test_split"] = {view: {k: report[view][k] for k in keys}
                                 for view in ("whole", "alert_windows", "survey_windows")
                                 if view in report}

    return rewrite_manifest(model.folder, update)
