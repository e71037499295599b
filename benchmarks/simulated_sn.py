"""Models on simulated supernovae of another light-curve model: SN Ia vs SN II.

``astrot2 simulate`` draws SNe from sncosmo's SALT2 and the V19 / SNANA core-collapse
templates, not from PLAsTiCC's own SN models: a second simulation of the same survey,
made here (never a held-out set), so it may inform choices.  Each model classifies the
whole simulated light curves (as ``astrot2 classify`` would, survey check off: the
simulated file carries its survey's bands); per model: SN Ia vs SN II ROC AUC of
``p(SN Ia)``, top-class accuracy and the top classes of the SNe Ia and SNe II.
Writes ``benchmarks/results/simulated_sn[-NAME].json``.

Usage: python -m benchmarks.simulated_sn SIM.parquet [--models lsst lsst-plasticc]
       [--name LABEL]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from astrot2.classes import CLASSES
from astrot2.io.labelled import read_labelled
from astrot2.realsky import labels_of
from astrot2.runtime import Classifier
from astrot2.utils import sha256_file
from benchmarks.common import write_result

NAMES = [c.name for c in CLASSES]


def model_scores(clf: Classifier, batch, y: np.ndarray) -> dict:
    """SN Ia vs SN II AUC, accuracy and top classes of ``clf`` on ``batch``."""
    from sklearn.metrics import roc_auc_score

    pred = clf.predict(batch, check_survey=False)
    ok = pred.status == "ok"
    top = pred.probabilities.argmax(axis=1)
    ia, ii = NAMES.index("SNIa"), NAMES.index("SNII")
    pair = ok & np.isin(y, [ia, ii])
    called = {NAMES[c]: dict(Counter(NAMES[t] for t in top[ok & (y == c)]).most_common(4))
              for c in (ia, ii)}
    return {"classified": int(ok.sum()), "n": len(y),
            "snia_vs_snii_auc": float(roc_auc_score(y[pair] == ia,
                                                    pred.probabilities[pair, ia])),
            "accuracy": float(np.mean(top[ok] == y[ok])), "top_classes": called}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("simulated", type=Path, help="astrot2 simulate output (Parquet)")
    parser.add_argument("--models", nargs="+", default=["lsst", "lsst-plasticc"])
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    batch = read_labelled(args.simulated).batch
    y = labels_of(batch)
    out: dict = {"simulated_sha256": sha256_file(args.simulated), "objects": len(y),
                 "classes": dict(Counter(NAMES[c] for c in y)), "models": {}}
    for model in args.models:
        clf = Classifier.load(model, threads=2)
        out["models"][model] = {"name": clf.name, **model_scores(clf, batch, y)}
        print(model, {k: out["models"][model][k] for k in ("snia_vs_snii_auc", "accuracy")})
    print("wrote", write_result(f"simulated_sn{'-' + args.name if args.name else ''}", out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
