"""How far simulated supernovae are from the PLAsTiCC views a model learned from.

Adversarial validation: for each supernova class (SN Ia, II, Ibc), a classifier is trained to
tell the simulation's light curves from the companion's PLAsTiCC training views of that class
(the train objects, their augmented and representative copies, with and without host
photo-z: ``companion_fit.companion_data``), on the companion's features (``points+gp``).
The simulation passes through the representative run's own alert cuts
(``representative.simulated_cuts``, 4 per object), as ``astrot2 companion --simulated``
would use it.  Reported per class: the 3-fold cross-validated ROC AUC of that classifier
(0.5: indistinguishable; the folds are random sets of objects with the two sources in the
same proportion, so an object's copies and cuts sit on one side only), and the features
that differ most on their own (univariate AUC, medians and the share of rows where the
feature exists).
A simulation a model should learn from is one whose gap is small and physical, not an
artefact of how it observes.
Writes ``benchmarks/results/domain_gap[-NAME].json``.

Usage: python -m benchmarks.domain_gap SIM.parquet [SIM2.parquet ...] [--model lsst]
       [--name LABEL]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from astrot2.classes import CLASSES, class_index
from astrot2.companion_fit import CompanionConfig, companion_data, views_features
from astrot2.io.labelled import read_labelled
from astrot2.modelref import resolve_model
from astrot2.recipe import training_settings
from astrot2.representative import folder_config, simulated_cuts
from astrot2.runtime import Classifier
from astrot2.utils import sha256_file
from benchmarks.common import plasticc_objects, write_result

NAMES = [c.name for c in CLASSES]
SUPERNOVAE = ("SNIa", "SNII", "SNIbc")


def class_gap(plasticc: np.ndarray, simulated: np.ndarray, names: list[str],
              groups: tuple[np.ndarray, np.ndarray], top: int = 8) -> dict:
    """Cross-validated domain AUC of ``simulated`` rows against ``plasticc`` rows (folds by
    object: ``groups``, the object of each row of either), and the ``top`` features whose
    univariate AUC is farthest from 0.5."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    x = np.concatenate([plasticc, simulated])
    y = np.r_[np.zeros(len(plasticc)), np.ones(len(simulated))]
    objects = np.r_[[f"plasticc:{g}" for g in groups[0]], [f"sim:{g}" for g in groups[1]]]
    gbm = HistGradientBoostingClassifier(max_iter=200, max_leaf_nodes=8, random_state=0)
    folds = StratifiedGroupKFold(3, shuffle=True, random_state=0)  # random objects per fold
    p = cross_val_predict(gbm, x, y, cv=folds, groups=objects, method="predict_proba")[:, 1]
    features = []
    for j, name in enumerate(names):
        a, b = plasticc[:, j], simulated[:, j]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if min(len(a), len(b)) < 50:
            continue
        auc = roc_auc_score(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a, b])
        features.append({"feature": name, "auc": round(float(auc), 3),
                         "median_plasticc": round(float(np.median(a)), 4),
                         "median_simulated": round(float(np.median(b)), 4),
                         "present_plasticc": round(len(a) / len(plasticc), 3),
                         "present_simulated": round(len(b) / len(simulated), 3)})
    features.sort(key=lambda f: -abs(f["auc"] - 0.5))
    return {"plasticc_rows": len(plasticc), "simulated_rows": len(simulated),
            "domain_auc": round(float(roc_auc_score(y, p)), 3), "features": features[:top]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("simulated", type=Path, nargs="+", help="astrot2 simulate outputs")
    parser.add_argument("--model", default="lsst", help="a representative run (default lsst)")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    folder = resolve_model(args.model)
    rep = folder_config(folder)
    if rep is None:
        raise SystemExit(f"{args.model}: not a representative run (astrot2 train --model lsst "
                         "--representative)")
    clf = Classifier.load(folder, threads=2)
    config = CompanionConfig(feature_set="points+gp")
    data = companion_data(clf, folder, plasticc_objects(), config)
    augment_config = training_settings(folder).augment
    out: dict = {"model": clf.name, "feature_set": config.feature_set, "simulations": {}}
    for path in args.simulated:
        sim = read_labelled(path).batch
        views = simulated_cuts(sim, augment_config, rep, config.n_sim_cuts)
        x, _, ok = views_features(clf, views, config.feature_set, with_logits=False)
        y = np.concatenate([class_index(sim.extra["target"])[o] for o in ok])
        ids = np.concatenate([np.asarray(v.object_id, dtype=str)[o]
                              for v, o in zip(views, ok, strict=True)])
        x = np.concatenate(x)
        res: dict = {"sha256": sha256_file(path)}
        for name in SUPERNOVAE:
            k = NAMES.index(name)
            mine = data.y_train == k
            res[name] = class_gap(data.x_train[mine], x[y == k], data.names,
                                  (data.groups_train[mine], ids[y == k]))
        out["simulations"][path.name] = res
        print(path.name, {c: res[c]["domain_auc"] for c in SUPERNOVAE},
              [f["feature"] for f in res["SNIa"]["features"][:4]], flush=True)
    print("wrote", write_result(f"domain_gap{'-' + args.name if args.name else ''}", out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
