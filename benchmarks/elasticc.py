"""Out-of-simulation check of the ``lsst`` model: ELAsTiCC alerts with truth labels.

ELAsTiCC is the Rubin alert challenge that followed PLAsTiCC: another simulation (other
SN models, cadence and host catalogue) delivered as Rubin alerts (Fink's
``ftransfer_elasticc_2023-02-08`` export: ``classId=111`` 1,505 SN Ia alerts,
``classId=113`` 1,591 SN II alerts, each with its previous detections and forced
photometry, read as ``astrot2 classify`` reads them; ``--detections-only``).  The model
never saw either: it was trained on PLAsTiCC.  Per true type, the share of each predicted
top class; SN Ia vs SN II ROC AUC of ``p(SN Ia) / (p(SN Ia) + p(SN II))``, over all alerts
and over the alerts with at most 7 days between the first and the last point.  Writes
``benchmarks/results/elasticc[-NAME].json``.

Usage: python -m benchmarks.elasticc [--model lsst] [--name LABEL]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from astrot2.classes import CLASSES
from astrot2.io import read_alerts
from astrot2.runtime import Classifier
from benchmarks.common import data_dir, write_result

#: ELAsTiCC class ids of the export and the PLAsTiCC class they correspond to.
TYPES = {"111": "SNIa", "113": "SNII"}


def shares(top: np.ndarray) -> dict[str, float]:
    """Share of each predicted class, largest first."""
    names, counts = np.unique(top, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {str(names[i]): float(counts[i] / len(top)) for i in order}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lsst",
                        help="model name or folder (NAME+companion: with its companion)")
    parser.add_argument("--name", default=None, help="write elasticc-NAME.json")
    parser.add_argument("--detections-only", action="store_true",
                        help="ignore the alerts' forced photometry (astrot2 classify reads it)")
    args = parser.parse_args(argv)
    root = data_dir()
    if root is None:
        raise SystemExit("needs ASTROT2_DATA")
    export = root / "elasticc" / "ftransfer_elasticc_2023-02-08_902820"
    clf = Classifier.load(args.model)
    names = np.array([c.name for c in CLASSES])
    ia, ii = list(names).index("SNIa"), list(names).index("SNII")
    out: dict = {"model": clf.name, "forced_photometry": not args.detections_only,
                 "types": {}}
    scores, truth, short = [], [], []
    for class_id, label in TYPES.items():
        batch = read_alerts([export / f"classId={class_id}"],
                            include_forced=not args.detections_only)
        pred = clf.predict(batch)
        ok = pred.status == "ok"
        prob = pred.probabilities[ok].astype(np.float64)
        top = names[prob.argmax(axis=1)]
        span = batch.reduce(batch.time, np.fmax) - batch.reduce(batch.time, np.fmin)
        out["types"][label] = {"alerts": len(batch), "classified": int(ok.sum()),
                               "median_points": float(np.median(batch.n_points)),
                               "top_class_share": shares(top),
                               "mean_probability_true_class": float(
                                   prob[:, list(names).index(label)].mean())}
        scores.append(prob[:, ia] / np.maximum(prob[:, ia] + prob[:, ii], 1e-12))
        truth.append(np.full(len(prob), label == "SNIa"))
        short.append(span[ok] <= 7.0)
        print(label, {k: round(v, 3) for k, v in list(shares(top).items())[:5]},
              file=sys.stderr)
    from sklearn.metrics import roc_auc_score

    s, t, early = np.concatenate(scores), np.concatenate(truth), np.concatenate(short)
    out["snia_vs_snii_auc"] = float(roc_auc_score(t, s))
    out["snia_vs_snii_auc_le_7d"] = float(roc_auc_score(t[early], s[early]))
    out["n_le_7d"] = int(early.sum())
    out["command"] = f"python -m benchmarks.elasticc --model {args.model}" + (
        f" --name {args.name}" if args.name else "") + (
        " --detections-only" if args.detections_only else "")
    print({k: out[k] for k in ("snia_vs_snii_auc", "snia_vs_snii_auc_le_7d", "n_le_7d")})
    print("wrote", write_result(f"elasticc-{args.name}" if args.name else "elasticc", out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
