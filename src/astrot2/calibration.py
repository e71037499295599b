"""Calibrated probabilities and per-alert uncertainty (NumPy + SciPy; torch-free).

- **Temperature scaling** (Guo et al. 2017): one scalar ``T`` divides the logits,
  ``p = softmax(z / T)``; ``T`` minimises the negative log-likelihood of the validation
  split.  It changes no ranking (top class, ROC AUC) and only the confidence.  ``astrot2
  calibrate`` stores it, with the ECE before/after on the validation and test splits, in
  the ``calibration`` section of the model's manifest; :meth:`astrot2.Classifier.predict`
  divides the logits by it.  The model file (and its sha256) is untouched.
- **Expected calibration error** (top-label, equal-width bins of the top probability):
  ``ECE = sum_b (n_b / n) |accuracy_b - confidence_b|``.
- **Uncertainty per alert**: the predictive entropy of the calibrated probabilities
  (``classify_batch``'s ``entropy`` column); :func:`risk_coverage` measures how well it
  ranks alerts (accuracy of the most confident fraction).

Which light curves: a broker sees alerts, i.e. light curves cut at the time of the alert,
not whole ones; the two are different distributions (a partial light curve is less
informative, the model is less sure and more often wrong).  The temperature is fitted on
the union of the views of the validation split that ``astrot2 evaluate`` builds (the
whole light curves, the alert windows of :func:`astrot2.augment.alert_windows`, and for a
model trained on re-observed survey alerts such as ``ztf``, those survey windows), and the
ECE is reported on each view of the test split separately.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from astrot2.errors import ConfigError, ModelError
from astrot2.evaluate import split_views
from astrot2.gp import classified
from astrot2.lightcurves import LightCurveBatch
from astrot2.modelref import COMPANION_SUFFIX, ModelRef

__all__ = [
    "N_BINS",
    "calibrate_model",
    "ece_bootstrap",
    "ece_noise_floor",
    "expected_calibration_error",
    "fit_temperature",
    "negative_log_likelihood",
    "plot_reliability",
    "plot_risk_coverage",
    "predictive_entropy",
    "raw_logits",
    "refresh_metrics",
    "reliability",
    "risk_coverage",
    "run_calibration",
    "softmax",
    "split_logits",
    "split_views",
    "tta_probabilities",
    "uncertainty_report",
    "write_calibration",
]

#: Bins of the top-label ECE and of the reliability diagrams.
N_BINS = 15



def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, shape (n, n_classes), float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0
                            ) -> float:
    """Mean negative log-likelihood of labels ``y`` under ``softmax(logits / T)``."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


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


def reliability(prob: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> dict[str, list]:
    """Top-label reliability table over ``n_bins`` equal-width bins of the top probability.

    Returns
    -------
    dict
        ``edges`` (n_bins + 1), and per bin ``count``, ``confidence`` (mean top
        probability) and ``accuracy`` (NaN for empty bins).
    """
    prob = np.asarray(prob, dtype=np.float64)
    conf = prob.max(axis=1)
    correct = (prob.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(which, conf, n_bins) / count
        accuracy = np.bincount(which, correct, n_bins) / count
    return {"edges": edges.tolist(), "count": count.astype(int).tolist(),
            "confidence": mean_conf.tolist(), "accuracy": accuracy.tolist()}


def expected_calibration_error(prob: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """Top-label ECE: ``sum_b (n_b / n) |accuracy_b - confidence_b|``.

    Parameters
    ----------
    prob : array-like of shape (n_samples, n_classes)
    y : array-like of int, shape (n_samples,)
    n_bins : int
        Equal-width bins of the top probability on [0, 1].
    """
    table = reliability(prob, y, n_bins)
    count = np.asarray(table["count"], dtype=np.float64)
    gap = np.abs(np.asarray(table["accuracy"]) - np.asarray(table["confidence"]))
    return float(np.nansum(count * gap) / max(count.sum(), 1.0))


def ece_noise_floor(prob: np.ndarray, n_bins: int = N_BINS, n_draws: int = 200,
                    seed: int = 0) -> float:
    """Mean ECE of a *perfectly calibrated* model with these probabilities and this ``n``.

    Labels are drawn from ``prob`` itself ``n_draws`` times: the ECE that finite-sample
    noise alone gives (an ECE measured on ``n`` samples cannot be trusted below it).
    """
    rng = np.random.default_rng(seed)
    p = np.asarray(prob, dtype=np.float64)
    cdf = p.cumsum(axis=1)
    draws = [np.minimum((cdf < rng.random((len(p), 1))).sum(axis=1), p.shape[1] - 1)
             for _ in range(n_draws)]
    return float(np.mean([expected_calibration_error(p, y, n_bins) for y in draws]))


def ece_bootstrap(prob: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, *,
                  n_bins: int = N_BINS, n_boot: int = 1000, level: float = 0.95,
                  seed: int = 0) -> dict[str, float | list[float]]:
    """The top-label ECE with a bootstrap bias correction and confidence interval.

    Resamples whole ``groups`` (e.g. the object each alert window was cut from: windows
    of one object are not independent) with replacement, ``n_boot`` times, and returns
    the *basic* bootstrap interval ``(2 E - q_high, 2 E - q_low)`` around the measured
    ECE ``E``, clipped at 0 (``q``: the draws' quantiles).  The ECE is biased upwards by
    sampling noise, and more so on a resample (duplicated rows): the percentile
    interval would sit above ``E``; the basic one corrects for that bias.  Unlike
    :func:`ece_noise_floor`, which asks what a perfectly calibrated model would score,
    this says how precisely the calibration error is known.

    Parameters
    ----------
    prob : array-like of shape (n_samples, n_classes)
    y : array-like of int, shape (n_samples,)
    groups : array-like, shape (n_samples,), optional
        Group label of each sample (default: every sample its own group).
    n_bins, n_boot, level, seed
        ECE bins, bootstrap draws, interval coverage, random seed.

    Returns
    -------
    dict
        ``ece`` (measured), ``ece_debiased`` (``2 E - mean of the draws``, clipped at 0:
        the centre of the interval) and ``ci`` (``[low, high]``).
    """
    prob, y = np.asarray(prob, dtype=np.float64), np.asarray(y)
    if len(y) == 0:
        raise ConfigError("ece_bootstrap needs at least one labelled sample, got 0")
    _, group = np.unique(np.arange(len(y)) if groups is None else np.asarray(groups),
                         return_inverse=True)
    members = np.split(np.argsort(group, kind="stable"),
                       np.cumsum(np.bincount(group))[:-1])
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        draws.append(expected_calibration_error(prob[rows], y[rows], n_bins))
    tail = 100.0 * (1.0 - level) / 2.0
    q_low, q_high = np.percentile(draws, [tail, 100.0 - tail])
    ece = expected_calibration_error(prob, y, n_bins)
    return {"ece": ece, "ece_debiased": max(2.0 * ece - float(np.mean(draws)), 0.0),
            "ci": [max(2.0 * ece - float(q_high), 0.0), max(2.0 * ece - float(q_low), 0.0)]}


def predictive_entropy(prob: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row, shape (n,); 0 for one-hot, ln K for uniform."""
    p = np.asarray(prob, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def risk_coverage(prob: np.ndarray, y: np.ndarray, uncertainty: np.ndarray,
                  coverages: np.ndarray | None = None) -> dict[str, list[float]]:
    """Accuracy of the most certain fraction of samples, for several fractions.

    Samples are sorted by increasing ``uncertainty`` (ties keep their order); for each
    coverage ``c`` the accuracy is that of the first ``ceil(c n)`` samples.

    Returns
    -------
    dict
        ``coverage`` and ``accuracy`` lists, and ``aurc`` (area under the risk-coverage
        curve, risk = 1 - accuracy, mean over all n prefixes; lower is better).
    """
    prob = np.asarray(prob, dtype=np.float64)
    correct = (prob.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    order = np.argsort(np.asarray(uncertainty), kind="stable")
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    if coverages is None:
        coverages = np.linspace(0.05, 1.0, 20)
    k = np.maximum(np.ceil(np.asarray(coverages) * len(order)).astype(int), 1)
    return {"coverage": [float(c) for c in coverages],
            "accuracy": [float(running[i - 1]) for i in k],
            "aurc": float(np.mean(1.0 - running))}


def raw_logits(clf, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The network's raw logits (float64, before any temperature) for model inputs:
    :meth:`astrot2.runtime.Classifier.logits` (slices of ``MODEL_BATCH`` light curves)."""
    return clf.logits(feeds)


def split_logits(model: str | Path | ModelRef, batch: LightCurveBatch, split: str,
                 threads: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Uncalibrated logits and class indices of each view of one split of a model's data.

    The logits of :meth:`astrot2.runtime.Classifier.scores` (network, combined with the
    feature companion when the model has one).  Views as in :func:`split_views`.
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


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], temperature: float,
                     path: str | Path, title: str = "", n_bins: int = N_BINS) -> Path:
    """Reliability diagrams, one panel per view, before and after temperature scaling.

    Parameters
    ----------
    curves : dict
        view -> ``(logits, y)`` (e.g. the test split of :func:`split_logits`).
    temperature : float
    path : str or Path
        PNG file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 4.4), squeeze=False)
    for ax, (view, (z, y)) in zip(axes.flat, curves.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        for t, colour, label in ((1.0, "tab:red", "raw"), (temperature, "tab:blue",
                                                           f"T = {temperature:.2f}")):
            p = softmax(z, t)
            table = reliability(p, y, n_bins)
            ece = expected_calibration_error(p, y, n_bins)
            conf, acc = np.array(table["confidence"]), np.array(table["accuracy"])
            seen = np.isfinite(acc)
            ax.plot(conf[seen], acc[seen], "o-", ms=3, color=colour,
                    label=f"{label}: ECE {ece:.3f}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean top probability (confidence)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{view.replace('_', ' ')} (n={len(y)})", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_risk_coverage(curves: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """Accuracy vs coverage lines (one per label) from :func:`risk_coverage` results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    for label, rc in curves.items():
        ax.plot(rc["coverage"], rc["accuracy"], "o-", ms=3,
                label=f"{label} (AURC {rc['aurc']:.3f})")
    ax.set_xlabel("coverage (fraction of alerts kept, most certain first)")
    ax.set_ylabel("accuracy of the kept alerts")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)



def uncertainty_report(curves: dict[str, tuple[np.ndarray, np.ndarray]],
                       temperature: float) -> dict[str, dict]:
    """Risk-coverage of the calibrated entropy and of ``1 - top probability``, per view.

    Parameters
    ----------
    curves : dict
        view -> ``(logits, y)`` (e.g. the test split of :func:`split_logits`).
    temperature : float
    """
    out: dict[str, dict] = {}
    for view, (z, y) in curves.items():
        p = softmax(z, temperature)
        out[f"{view}: entropy"] = risk_coverage(p, y, predictive_entropy(p))
        out[f"{view}: 1 - top prob"] = risk_coverage(p, y, 1.0 - p.max(axis=1))
    return out


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


#: Test-time augmentation: fraction of points each copy drops (uniform range).
TTA_DROP = (0.1, 0.3)


def tta_probabilities(clf, batch: LightCurveBatch, n_copies: int = 5, *, seed: int = 0,
                      check_survey: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Test-time augmentation: mean and spread of the probabilities of perturbed copies.

    Each copy drops a random 10-30 % of the points of every light curve (never its first
    detection; :func:`astrot2.augment.augment` without cut or time shift), then runs the
    whole chain (GP, features, network, temperature) as :meth:`Classifier.predict`.  It
    costs ``n_copies`` predictions: the GP dominates, so this is an opt-in mode.

    Parameters
    ----------
    clf : Classifier
    batch : LightCurveBatch
    n_copies : int
        Perturbed copies (>= 1).
    seed : int
        Copy ``k`` drops points with the generator seeded ``seed + k``.
    check_survey : bool
        As :meth:`Classifier.predict`.

    Returns
    -------
    mean : ndarray of float64, shape (n_alerts, n_classes)
        Mean over the copies that were classified; zeros where none was.
    std : ndarray of float64, shape (n_alerts, n_classes)
        Per-class standard deviation over those copies.
    """
    from dataclasses import replace

    from astrot2.augment import AugmentConfig, augment

    if n_copies < 1:
        raise ConfigError(f"n_copies must be >= 1, got {n_copies}")
    config = replace(AugmentConfig(), p_truncate=0.0, drop_fraction=TTA_DROP, max_shift=0.0)
    preds = [clf.predict(augment(batch, config, seed + k), check_survey=check_survey)
             for k in range(n_copies)]
    probs = np.stack([p.probabilities.astype(np.float64) for p in preds])  # (k, n, K)
    used = np.stack([classified(p.status) for p in preds])[:, :, None]  # copies classified
    count = np.maximum(used.sum(axis=0), 1)
    mean = (probs * used).sum(axis=0) / count
    std = np.sqrt(((probs - mean) ** 2 * used).sum(axis=0) / count)
    return mean, std
