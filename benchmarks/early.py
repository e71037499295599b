"""Early classification: metrics as a function of days since the first detection.

Each object of the model's held-out test split (``split.json``) is cut as an alert issued
``age`` days after its first detection, ``age`` drawn uniformly (seeded) inside each bin
(0-3, 3-7, 7-14, 14-30, 30-100 days; "30+"), keeping the points up to the cut (and, for a
model trained on alerts with a history limit, e.g. ZTF's 30 days, only that much history).
The cut light curves go through ``Classifier.predict`` (GP, features, ONNX; calibrated when
the manifest has a temperature).  Per bin: accuracy, macro-F1, flat log-loss, top-label
ECE, SN Ia vs rest ROC AUC; and the SN Ia AUC of all alerts at most 7 days old (bins 0-3
and 3-7 together).  A model of another survey than PLAsTiCC's (``ztf``) sees the test
objects' PLAsTiCC light curves in its own bands.

With ``--age-temperature``, also measures whether one temperature per age bin (fitted on
the validation split cut in each bin) would calibrate alerts better than the manifest's
single temperature (:func:`age_binned_temperature`; measured, not shipped).

Writes ``benchmarks/results/early-NAME.json`` and ``docs/figures/early-NAME.png``.

Usage: python -m benchmarks.early --model lsst [--seed 0] [--threads 1] [--name LABEL]
[--age-temperature]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from astrot2.classes import CLASSES, class_index
from astrot2.lightcurves import LightCurveBatch
from astrot2.metrics import classification_report, expected_calibration_error
from astrot2.recipe import split_indices, training_settings
from astrot2.runtime import Classifier, resolve_model
from benchmarks.common import REPO, plasticc_objects, write_result

#: Age bins, days since the first detection: (label, low, high).
BINS = (("0-3", 0.0, 3.0), ("3-7", 3.0, 7.0), ("7-14", 7.0, 14.0), ("14-30", 14.0, 30.0),
        ("30+", 30.0, 100.0))
SNIA = [c.name for c in CLASSES].index("SNIa")


def cut_at_age(batch: LightCurveBatch, age: np.ndarray,
               max_history: float | None = None) -> LightCurveBatch:
    """Each light curve as an alert ``age[i]`` days after its first detection.

    Keeps the points at or before the cut (and after ``cut - max_history`` when given);
    the first detection is always kept.
    """
    det_time = np.where(batch.detected, batch.time, np.nan)
    first = batch.reduce(det_time, np.fmin)
    first = np.where(np.isfinite(first), first, batch.reduce(batch.time, np.fmin))
    cut = (first + age)[batch.owner]
    keep = batch.time <= cut
    if max_history is not None:
        keep &= batch.time >= cut - max_history
    keep |= batch.detected & (batch.time == first[batch.owner])
    return batch.keep_points(keep)


def age_views(part: LightCurveBatch, max_history: float | None,
              seed: int) -> dict[str, tuple[float, float, LightCurveBatch]]:
    """Per age bin: ``(low, high, the objects cut as alerts at an age drawn in the bin)``
    (one seeded generator, bins in order, as every age-bin figure of this module)."""
    rng = np.random.default_rng(seed)
    return {label: (lo, hi, cut_at_age(part, rng.uniform(lo, hi, part.n_objects),
                                       max_history)) for label, lo, hi in BINS}


def probabilities(clf: Classifier, view: LightCurveBatch) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of one view and its reject mask (rejects: uniform)."""
    pred = clf.predict(view, check_survey=False)
    prob = pred.probabilities.astype(np.float64)
    rejected = pred.status != "ok"
    prob[rejected] = 1.0 / len(CLASSES)
    return prob, rejected


def view_metrics(prob: np.ndarray, rejected: np.ndarray, view: LightCurveBatch,
                 y: np.ndarray) -> dict:
    """Accuracy, macro-F1, flat log-loss, ECE and SN Ia AUC of one view's probabilities."""
    report = classification_report(y, prob, [c.name for c in CLASSES])
    return {"n": len(y), "n_rejected": int(rejected.sum()),
            "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "flat_log_loss": report["flat_log_loss"],
            "ece_15": expected_calibration_error(prob, y),
            "snia_auc": report["roc_auc"].get("SNIa"),
            "median_points": float(np.median(view.n_points))}


def score(clf: Classifier, view: LightCurveBatch, y: np.ndarray) -> tuple[dict, np.ndarray]:
    """Metrics of one view (rejected alerts count as uniform probabilities)."""
    prob, rejected = probabilities(clf, view)
    return view_metrics(prob, rejected, view, y), prob


def snia_auc(prob: np.ndarray, y: np.ndarray) -> float:
    """SN Ia vs rest ROC AUC of ``p(SNIa)``."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y == SNIA, prob[:, SNIA]))


def plot(result: dict, path: Path) -> Path:
    """Accuracy, macro-F1, SN Ia AUC and flat log-loss against the age bins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [b[0] for b in BINS] + ["whole"]
    rows = [result["bins"][b] for b in labels[:-1]] + [result["whole"]]
    x = np.arange(len(labels))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, colour in (("accuracy", "tab:blue"), ("macro_f1", "tab:orange"),
                        ("snia_auc", "tab:green")):
        ax.plot(x, [r[key] for r in rows], "o-", color=colour, label=key.replace("_", " "))
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1.15)
    ax.set_xlabel("days since first detection (test split, cut alerts)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    ax2.plot(x, [r["flat_log_loss"] for r in rows], "o-", color="tab:red",
             label="flat log-loss")
    ax2.plot(x, [r["ece_15"] for r in rows], "s--", color="tab:purple", label="ECE (15 bins)")
    ax2.set_xticks(x, labels)
    ax2.set_xlabel("days since first detection")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.suptitle(f"{result['model']}: early classification (SN Ia AUC at <= 7 d: "
                 f"{result['snia_auc_le_7d']:.3f})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def age_binned_temperature(clf: Classifier, batch: LightCurveBatch, folder: Path,
                           seed: int) -> dict:
    """Would a temperature per age bin calibrate alerts?  (Measured, not shipped.)

    One temperature per bin is fitted (NLL) on the validation split cut in that bin, then
    applied to the test split cut in that bin and to the test alert windows of
    ``astrot2 evaluate`` by their age (last point - first detection).
    """
    from astrot2.augment import alert_windows
    from astrot2.calibration import fit_temperature, raw_logits
    from astrot2.features import prepare
    from astrot2.metrics import ece_noise_floor, softmax

    m = clf.manifest

    def logits(view: LightCurveBatch) -> np.ndarray:
        x, extra, _, _ = prepare(view, m.gp, m.features)
        return raw_logits(clf, {"x": x, "extra": extra} if m.n_extra else {"x": x})

    settings = training_settings(folder)
    aug, train_seed = settings.augment, settings.seed
    parts = {s: batch.take(split_indices(batch, folder, s)) for s in ("validation", "test")}
    ys = {s: class_index(p.extra["target"]) for s, p in parts.items()}
    t_global = float(m.raw.get("calibration", {}).get("temperature", 1.0))
    out: dict = {"global_temperature": t_global, "bins": {}}
    temps = []
    for k, (label, lo, hi) in enumerate(BINS):
        z = {}
        for s, part in parts.items():
            rng = np.random.default_rng(seed + 1000 * (k + 1) + (s == "test"))
            z[s] = logits(cut_at_age(part, rng.uniform(lo, hi, part.n_objects),
                                     aug.max_history))
        t = fit_temperature(z["validation"], ys["validation"])
        temps.append(t)
        out["bins"][label] = {
            "temperature": t,
            "test_ece_global_t": expected_calibration_error(softmax(z["test"], t_global),
                                                            ys["test"]),
            "test_ece_bin_t": expected_calibration_error(softmax(z["test"], t), ys["test"]),
            "noise_floor": ece_noise_floor(softmax(z["test"], t), n_draws=50)}
    windows = alert_windows(parts["test"], aug, train_seed + 99)
    first = windows.reduce(np.where(windows.detected, windows.time, np.nan), np.fmin)
    age = windows.reduce(windows.time, np.fmax) - first
    t_each = np.array(temps)[np.digitize(age, [b[1] for b in BINS[1:]])]
    z = logits(windows)
    out["test_alert_windows"] = {
        "ece_global_t": expected_calibration_error(softmax(z, t_global), ys["test"]),
        "ece_age_binned_t": expected_calibration_error(softmax(z / t_each[:, None]),
                                                       ys["test"]),
        "noise_floor": ece_noise_floor(softmax(z / t_each[:, None]), n_draws=50)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="lsst",
                        help="shipped model name or folder (NAME+companion: with its companion)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument("--name", default=None,
                        help="label of the result files (default: the model folder's name)")
    parser.add_argument("--age-temperature", action="store_true",
                        help="also measure a temperature per age bin (not shipped)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    folder = resolve_model(args.model)
    name = args.name or folder.name
    clf = Classifier.load(args.model, threads=args.threads)  # NAME+companion too
    batch = plasticc_objects()
    part = batch.take(split_indices(batch, folder, "test"))
    y = class_index(part.extra["target"])
    aug = training_settings(folder).augment
    result: dict = {"model": clf.name, "split": "test", "n_objects": int(part.n_objects),
                    "calibrated": clf.temperature != 1.0,
                    "max_history": aug.max_history, "bins": {}}
    early = []
    for label, (lo, hi, view) in age_views(part, aug.max_history, args.seed).items():
        metrics, prob = score(clf, view, y)
        result["bins"][label] = {"days": [lo, hi], **metrics}
        if hi <= 7.0:
            early.append(prob)
        print(label, {k: round(v, 3) if isinstance(v, float) else v
                      for k, v in metrics.items()}, file=sys.stderr)
    result["whole"], _ = score(clf, part, y)
    result["snia_auc_le_7d"] = snia_auc(np.concatenate(early), np.concatenate([y, y]))
    if args.age_temperature:
        result["age_binned_temperature"] = age_binned_temperature(clf, batch, folder,
                                                                  args.seed)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["command"] = (f"python -m benchmarks.early --model {args.model} --seed {args.seed}"
                         + (f" --name {args.name}" if args.name else "")
                         + (" --age-temperature" if args.age_temperature else ""))
    out = write_result(f"early-{name}", result)
    fig = plot(result, REPO / "docs" / "figures" / f"early-{name}.png")
    print(f"wrote {out} and {fig}; SN Ia AUC at <= 7 d: {result['snia_auc_le_7d']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
