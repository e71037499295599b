"""Real-sky benchmark of the ZTF models: real BTS transients at alert time.

The real labelled ZTF Bright Transient Survey objects (``ztf-labelled/bts-antares``, read by
:mod:`astrot2.io.labelled`) are split by object as :mod:`astrot2.realsky` does for training
(the same seed: the ``ztf`` model's ``real_*`` ids in ``split.json``); only the **test**
objects (or, ``--split validation``, the validation objects for choices) are
scored here, each cut at every alert time of :data:`astrot2.realsky.CUTS` (<= 30 days of
history).  Per model and cut: per-class recall and precision, balanced recall over {SN Ia,
SN II, SN Ibc}, SN Ia recall and purity under the BTS class mix (``--prior bts``, purity
weighted so the true classes have the BTS shares), top-label ECE, and the confusion at
peak + 5 d as a PNG.  Models: the shipped networks, and a feature + gradient-boosted-trees
baseline trained on exactly the same training views (real, and with ``--simulated`` the
simulated ones; the same classes left out): the light-curve statistics of
:func:`astrot2.features.light_curve_statistics` (per band: relative max, min, mean, std,
largest S/N, detections, detected days; the number of points; from the GP: g - r at the
last point and at the peak, the slope of each band over the last 5 days, days since the
first detection and since the peak), scikit-learn ``HistGradientBoostingClassifier``, the
same capped class weights, fixed settings: nothing chosen on the test objects.

Usage: python -m benchmarks.real_sky [--models ztf ztf-plasticc ztf-plasticc+companion]
[--simulated SIM.parquet] [--split test|validation] [--no-baseline] [--ensemble]
[--name NAME]
Writes benchmarks/results/real_sky[-NAME].json and docs/figures/real_sky-MODEL.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from astrot2.classes import CLASSES
from astrot2.features import FeatureConfig, light_curve_statistics, prepare
from astrot2.gp import GPConfig, fit_gp
from astrot2.io.labelled import read_labelled
from astrot2.lightcurves import LightCurveBatch
from astrot2.metrics import expected_calibration_error
from astrot2.priors import PRIORS, as_prior, reweight
from astrot2.realsky import (
    CUTS,
    MAIN_CLASSES,
    RealSkyConfig,
    balanced_recall,
    class_weights,
    evaluation_cut,
    labels_of,
    random_cuts,
    split_objects,
    trainable,
    training_views,
)
from astrot2.runtime import Classifier, resolve_model
from astrot2.train_real import FinetuneConfig
from benchmarks.common import data_dir, write_result

NAMES = [c.name for c in CLASSES]
FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures"


def scores(y: np.ndarray, prob: np.ndarray, ok: np.ndarray) -> dict:
    """Recall, precision, balanced recall, SN Ia purity under the BTS mix and ECE."""
    top = np.where(ok, prob.argmax(axis=1), -1)
    bal, recall = balanced_recall(y, top)
    precision = {}
    for c in (*MAIN_CLASSES, "SLSN-I"):
        j = NAMES.index(c)
        precision[c] = float(np.mean(y[top == j] == j)) if (top == j).any() else float("nan")
    # SN Ia purity with the true classes weighted to the BTS shares
    bts = as_prior(PRIORS["bts"])
    counts = np.bincount(y, minlength=len(NAMES)).astype(float)
    w = np.where(counts > 0, bts / np.maximum(counts, 1), 0.0)[y]
    ia = NAMES.index("SNIa")
    called = top == ia
    purity = float((w * (called & (y == ia))).sum() / (w * called).sum()) if called.any() \
        else float("nan")
    return {"balanced_recall": bal, "recall": recall, "precision": precision,
            "snia_recall": float(np.mean(top[y == ia] == ia)),
            "snia_purity_bts_mix": purity,
            "ece": expected_calibration_error(prob[ok], y[ok]) if ok.any() else float("nan"),
            "n": len(y), "classified": int(ok.sum())}


def confusion_png(y: np.ndarray, top: np.ndarray, path: Path, title: str) -> Path:
    """Row-normalised confusion of the true types present, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [j for j in range(len(NAMES)) if (y == j).any()]
    cols = sorted(set(rows) | {int(t) for t in top if t >= 0})
    cm = np.array([[np.mean(top[y == r] == c) for c in cols] for r in rows])
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(cols), 1.0 + 0.6 * len(rows)))
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(cols)), [NAMES[c] for c in cols], rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), [f"{NAMES[r]} ({int((y == r).sum())})" for r in rows])
    ax.set_xlabel("predicted (top class)")
    ax.set_ylabel("true type (test objects)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def baseline_features(batch: LightCurveBatch) -> np.ndarray:
    """The baseline's features: :func:`astrot2.features.light_curve_statistics` of the
    g, r points and GP (the statistics the ``ztf`` network also reads)."""
    fc = FeatureConfig(bands=("g", "r"), use_std=False, use_brightness=False,
                       use_redshift=False)
    _, _, selected, gp = prepare(batch, GPConfig(), fc)
    return light_curve_statistics(selected, gp, fc.bands).astype(np.float32)


def fit_baseline(views: list[LightCurveBatch], labels: list[np.ndarray], floor: float):
    """The feature + trees baseline on the training views (fixed settings)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.concatenate([baseline_features(v)[v.ok] for v in views])
    y = np.concatenate([lab[v.ok] for v, lab in zip(views, labels, strict=True)])
    w = class_weights(y, floor)
    gbm = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=31,
                                         l2_regularization=1.0, random_state=0)
    gbm.fit(x, y, sample_weight=w[y] * len(y))
    prior = np.bincount(y, minlength=len(NAMES)) * w
    return gbm, prior / prior.sum()


def baseline_prob(gbm, train_prior: np.ndarray, batch: LightCurveBatch, prior) -> np.ndarray:
    """The baseline's probabilities for the 14 classes, re-weighted to ``prior``."""
    p = np.zeros((len(batch), len(NAMES)))
    p[:, gbm.classes_] = gbm.predict_proba(baseline_features(batch))
    return reweight(p, prior, train_prior)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["ztf", "ztf-plasticc", "ztf-plasticc+companion"])
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--ensemble", action="store_true",
                        help="also score the mean probabilities of the --models (each with "
                        "the prior applied)")
    parser.add_argument("--simulated", type=Path, default=None,
                        help="simulated light curves (astrot2 simulate) the baseline also "
                        "learns from, as the network did")
    parser.add_argument("--name", default=None)
    parser.add_argument("--split", choices=["test", "validation"], default="test",
                        help="score the validation objects (for choices) or the test "
                        "objects (once per shipped model)")
    args = parser.parse_args()
    root = data_dir()
    if root is None:
        raise SystemExit("needs ASTROT2_DATA (the real labelled ZTF light curves)")
    real = read_labelled(root / "ztf-labelled" / "bts-antares")
    batch, config = real.batch, RealSkyConfig()
    y = labels_of(batch)
    parts = split_objects(y, config)
    stored = json.loads((resolve_model("ztf") / "split.json").read_text())
    if f"real_{args.split}" in stored and sorted(stored[f"real_{args.split}"]) != sorted(
            batch.object_id[parts[args.split]].tolist()):
        raise SystemExit(f"the {args.split} objects differ from the shipped ztf's split.json")
    test = batch.take(parts[args.split])
    y_te = y[parts[args.split]]
    views = {cut: evaluation_cut(test, cut) for cut in CUTS}
    out: dict = {"data": "ztf-labelled/bts-antares", "split": args.split,
                 "objects": len(test),
                 "classes": type(real)(test, {}).class_counts(),
                 "split_seed": config.seed, "cuts": {}, "models": {}}
    priors = {"flat": as_prior(PRIORS["flat"]), "bts": as_prior(PRIORS["bts"])}
    mean: dict = {}  # (prior, cut) -> the models' mean probabilities
    all_ok: dict = {}  # cut -> classified by every model
    for name in args.models:
        out["models"][name] = {}
        for pname, prior in priors.items():
            clf = Classifier.load(name)
            clf.prior = prior
            res = {}
            for cut, view in views.items():
                pred = clf.predict(view)
                prob = pred.probabilities.astype(np.float64)
                res[cut] = scores(y_te, prob, pred.status == "ok")
                mean[pname, cut] = mean.get((pname, cut), 0.0) + prob / len(args.models)
                all_ok[cut] = all_ok.get(cut, True) & (pred.status == "ok")
                if cut == "peak+5" and pname == "flat" and args.split == "test":
                    top = np.where(pred.status == "ok", pred.probabilities.argmax(1), -1)
                    confusion_png(y_te, top, FIGURES / f"real_sky-{name.replace('+', '-')}.png",
                                  f"{clf.name}, real BTS test objects, alert at peak + 5 d")
            out["models"][name][pname] = res
        r = out["models"][name]
        print(name, "flat bal", {c: round(r["flat"][c]["balanced_recall"], 3) for c in CUTS},
              "bts Ia recall/purity peak+5",
              round(r["bts"]["peak+5"]["snia_recall"], 3),
              round(r["bts"]["peak+5"]["snia_purity_bts_mix"], 3))
    if args.ensemble:  # classified where every member classified
        out["models"]["ensemble"] = {
            pname: {cut: scores(y_te, mean[pname, cut], all_ok[cut]) for cut in CUTS}
            for pname in priors}
        r = out["models"]["ensemble"]
        print("ensemble flat bal", {c: round(r["flat"][c]["balanced_recall"], 3) for c in CUTS})
    if not args.no_baseline:
        idx = parts["train"][trainable(y[parts["train"]], config.min_objects)]
        train_b = batch.take(idx)
        gp = fit_gp(train_b, GPConfig())
        tv = training_views(train_b, config, gp.amplitude, gp.length_scale)
        labels = [y[idx]] * len(tv)
        if args.simulated is not None:  # the simulated supernovae, cut as in training
            sim = read_labelled(args.simulated).batch
            cuts = random_cuts(sim, config, FinetuneConfig().n_sim_cuts,
                               np.random.default_rng(config.seed + 2))
            tv += cuts
            labels += [labels_of(sim)] * len(cuts)
        gbm, train_prior = fit_baseline(tv, labels, config.weight_floor)
        res = {}
        for pname, prior in priors.items():
            res[pname] = {cut: scores(y_te, baseline_prob(gbm, train_prior, view, prior),
                                      view.ok) for cut, view in views.items()}
        out["models"]["baseline_gbm"] = res
        print("baseline flat bal", {c: round(res["flat"][c]["balanced_recall"], 3)
                                    for c in CUTS})
    print("wrote", write_result(f"real_sky-{args.name}" if args.name else "real_sky", out))


if __name__ == "__main__":
    main()
