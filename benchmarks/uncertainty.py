"""Per-alert uncertainty: quality (risk-coverage) and cost of each choice, on held-out data.

Scores compared on the model's test split (whole light curves and the alert windows of
``astrot2 evaluate``), all with the manifest's temperature:

- ``entropy``: predictive entropy of one prediction (``classify --uncertainty``);
- ``1 - top prob``: the plain confidence;
- ``tta K: entropy``: entropy of the mean of K test-time-augmented copies (each drops
  10-30 % of the points; ``classify --tta K``), whose mean is also a new prediction.

Cost per alert, one ONNX Runtime thread, median of ``--repeats`` runs over the test split's
alert windows: the network alone (ONNX Runtime on prepared inputs), the entropy
on top of it, a whole ``predict`` (GP + features + network), and TTA.

Writes ``benchmarks/results/uncertainty-NAME.json`` and
``docs/figures/risk-coverage-NAME.png``.

Usage: python -m benchmarks.uncertainty --model lsst [--copies 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from astrot2.calibration import raw_logits
from astrot2.features import prepare
from astrot2.metrics import expected_calibration_error, risk_coverage, weighted_log_loss
from astrot2.plotting import plot_risk_coverage
from astrot2.recipe import split_views
from astrot2.runtime import Classifier, resolve_model
from astrot2.uncertainty import predictive_entropy, tta_probabilities
from benchmarks.common import REPO, median_time, plasticc_objects, write_result


def quality(prob: np.ndarray, y: np.ndarray, uncertainty: np.ndarray) -> dict:
    """Risk-coverage and the usual metrics of one (probabilities, uncertainty) pair."""
    rc = risk_coverage(prob, y, uncertainty)
    return {**rc, "accuracy_all": float((prob.argmax(axis=1) == y).mean()),
            "flat_log_loss": weighted_log_loss(y, prob),
            "ece_15": expected_calibration_error(prob, y)}


def costs(clf: Classifier, view, copies: int, repeats: int) -> dict:
    """Seconds per alert of the network, the entropy, a prediction and TTA."""
    m = clf.manifest
    x, extra, _, _ = prepare(view, m.gp, m.features)
    feeds = {"x": x, "extra": extra} if m.n_extra else {"x": x}
    n = len(view)
    model_s, _ = median_time(lambda: raw_logits(clf, feeds), repeats)
    prob = clf.predict(view, check_survey=False).probabilities
    entropy_s, _ = median_time(lambda: predictive_entropy(prob), repeats)
    predict_s, _ = median_time(lambda: clf.predict(view, check_survey=False), repeats)
    start = time.perf_counter()
    tta_probabilities(clf, view, copies, check_survey=False)
    tta_s = time.perf_counter() - start
    per = {"model_only": model_s / n, "entropy": entropy_s / n, "predict": predict_s / n,
           f"tta_{copies}": tta_s / n}
    return {"n_alerts": n, "seconds_per_alert": per,
            "entropy_over_model_only": entropy_s / model_s,
            f"tta_{copies}_over_model_only": tta_s / model_s,
            f"tta_{copies}_over_predict": tta_s / predict_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="lsst", help="shipped model name or folder")
    parser.add_argument("--copies", type=int, default=5, help="TTA copies")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats")
    args = parser.parse_args(argv)

    folder = resolve_model(args.model)
    clf = Classifier.load(folder, threads=1)
    views = split_views(clf, plasticc_objects(), "test")
    result: dict = {"model": clf.name, "split": "test", "copies": args.copies,
                    "temperature": clf.manifest.raw.get("calibration", {}).get("temperature"),
                    "quality": {}}
    curves = {}
    for name, (view, y) in views.items():
        pred = clf.predict(view, check_survey=False)
        ok = pred.status == "ok"
        p = pred.probabilities.astype(np.float64)[ok]
        tta, _ = tta_probabilities(clf, view, args.copies, check_survey=False)
        tta = tta[ok]
        yk = y[ok]
        rows = {"entropy": quality(p, yk, predictive_entropy(p)),
                "1 - top prob": quality(p, yk, 1.0 - p.max(axis=1)),
                f"tta {args.copies}: entropy": quality(tta, yk, predictive_entropy(tta))}
        result["quality"][name] = {"n": int(ok.sum()), **rows}
        curves.update({f"{name}: {k}": v for k, v in rows.items()})
        print(name, {k: round(v["aurc"], 4) for k, v in rows.items()})
    window = next(v for k, (v, _) in views.items() if k != "whole")
    result["cost"] = costs(clf, window, args.copies, args.repeats)
    result["command"] = (f"python -m benchmarks.uncertainty --model {args.model} "
                         f"--copies {args.copies} --repeats {args.repeats}")
    out = write_result(f"uncertainty-{folder.name}", result)
    fig = plot_risk_coverage(curves, REPO / "docs" / "figures" /
                             f"risk-coverage-{folder.name}.png",
                             f"{clf.name}: held-out test split (calibrated)")
    print(result["cost"])
    print(f"wrote {out} and {fig}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
