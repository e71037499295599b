"""The ``lsst`` model on its plain and its representative split (fainter, farther objects).

For each model: its own split's objects (``split.json``, ``validation`` by default) as
they are (``plain``) and moved to a test-like redshift and depth
(:func:`astrot2.representative.representative_views`, ``representative``), whole light
curves and alert windows, with and without host photo-z: flat log-loss, accuracy and
SN Ia vs rest ROC AUC (``p(SN Ia)``).  Copies the survey's trigger would not have
detected are left out; GP rejects count as uniform probabilities (as ``astrot2
evaluate``).  With ``--baseline``, the feature + gradient-boosted-trees baseline
(:func:`benchmarks.baseline.band_features`) trained on the representative network's
kinds of views (the train objects, the first 2 of their 4 alert-like copies and all
their representative copies) is scored beside.
Writes ``benchmarks/results/representative[-NAME].json``.

Usage: python -m benchmarks.representative [--models lsst DIR ...] [--split validation]
       [--baseline] [--no-bandwidth] [--name LABEL]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from astrot2.augment import AugmentConfig, RedshiftConfig, training_copies, without_redshift
from astrot2.classes import CLASSES, class_index
from astrot2.lightcurves import LightCurveBatch
from astrot2.metrics import classification_report
from astrot2.recipe import split_indices, split_views, training_settings
from astrot2.representative import (
    RepresentativeConfig,
    representative_training,
    representative_views,
)
from astrot2.runtime import Classifier, resolve_model
from benchmarks.baseline import band_features
from benchmarks.common import plasticc_objects, write_result

NAMES = [c.name for c in CLASSES]


def scores(y: np.ndarray, prob: np.ndarray) -> dict:
    """Flat log-loss, accuracy, macro-F1 and SN Ia vs rest ROC AUC of ``prob``."""
    from sklearn.metrics import roc_auc_score

    report = classification_report(y, prob, NAMES)
    ia = NAMES.index("SNIa")
    return {"n": len(y), "flat_log_loss": report["flat_log_loss"],
            "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "snia_auc": float(roc_auc_score(y == ia, prob[:, ia]))}


def all_views(clf: Classifier, batch: LightCurveBatch, split: str,
              config: RepresentativeConfig) -> dict[str, tuple[LightCurveBatch, np.ndarray]]:
    """Plain and representative views of one split of ``clf``'s data."""
    views = {}
    for key, (view, y) in split_views(clf, batch, split).items():
        if key in ("whole", "alert_windows"):
            views[f"plain/{key}"] = (view, y)
            views[f"plain/{key}_no_photoz"] = (without_redshift(view), y)
    folder = clf.manifest.model_file.parent
    part = batch.take(split_indices(batch, folder, split))
    aug = training_settings(folder).augment
    for key, value in representative_views(part, clf.manifest.gp, aug, config,
                                           split).items():
        views[f"representative/{key}"] = value
    return views


def model_scores(clf: Classifier, views: dict) -> dict:
    """:func:`scores` of ``clf`` on every view (copies the trigger rejected left out)."""
    out = {}
    for key, (view, y) in views.items():
        pred = clf.predict(view, check_survey=False)
        prob = pred.probabilities.astype(np.float64)
        usable = view.ok
        prob[(pred.status != "ok") & usable] = 1.0 / len(NAMES)
        out[key] = scores(y[usable], prob[usable])
    return out


def baseline_scores(folder, batch: LightCurveBatch, config: RepresentativeConfig,
                    views: dict, gp) -> dict:
    """The feature + GBM baseline trained on the representative network's views."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    train = batch.take(split_indices(batch, folder, "train"))
    y_tr = class_index(train.extra["target"])
    settings = training_settings(folder)
    aug: AugmentConfig = settings.augment
    parts = training_copies(train, aug, settings.seed, 2)  # the run's first 2 copies
    parts += representative_training(train, gp, aug, config)
    bands = batch.survey.bands
    x = np.concatenate([band_features(p, bands, True) for p in parts])
    y = np.concatenate([y_tr] * len(parts))
    ok = np.concatenate([p.ok for p in parts])
    gbm = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1,
                                         class_weight="balanced", random_state=0)
    gbm.fit(x[ok], y[ok])
    out = {}
    for key, (view, yv) in views.items():
        prob = np.zeros((len(view), len(NAMES)))
        prob[:, gbm.classes_] = gbm.predict_proba(band_features(view, bands, True))
        usable = view.ok
        out[key] = scores(yv[usable], prob[usable])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lsst"])
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--no-bandwidth", action="store_true",
                        help="the copies as before 2026-12-05: dimmed by the distance modulus "
                        "alone, without (1+z')/(1+z) (the figures of lsst 0.2-0.4's docs)")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    batch = plasticc_objects()
    config = RepresentativeConfig(redshift=RedshiftConfig(bandwidth=not args.no_bandwidth))
    out: dict = {"split": args.split, "config": repr(config), "models": {}}
    views = None
    for model in args.models:
        clf = Classifier.load(model)
        if views is None:
            views = all_views(clf, batch, args.split, config)
            out["views"] = {k: int(v[0].ok.sum()) for k, v in views.items()}
        out["models"][model] = model_scores(clf, views)
        print(model, {k: (round(v["flat_log_loss"], 3), round(v["snia_auc"], 3))
                      for k, v in out["models"][model].items()}, file=sys.stderr)
    if args.baseline and views is not None:
        first = Classifier.load(args.models[0])
        out["models"]["baseline"] = baseline_scores(
            resolve_model(args.models[0]), batch, config, views, first.manifest.gp)
        print("baseline", {k: (round(v["flat_log_loss"], 3), round(v["snia_auc"], 3))
                           for k, v in out["models"]["baseline"].items()}, file=sys.stderr)
    write_result(f"representative{'-' + args.name if args.name else ''}", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
