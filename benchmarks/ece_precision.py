"""How precisely the held-out ECE is known: bootstrap intervals and more alert windows.

The test split has ~1,178 objects; a 15-bin top-label ECE measured on that many light
curves carries ~0.03 of pure sampling noise (``ece_noise_floor``), the size of the #8
target itself.  For one shipped model (``NAME`` or ``NAME+companion``, calibrated as
shipped: :meth:`astrot2.runtime.Classifier.predict`) this measures, per test view:

- the ECE of the standard views (``draw`` 0: what ``astrot2 calibrate`` stores), with a
  bias-corrected value and 95 % bootstrap interval over objects
  (:func:`astrot2.metrics.ece_bootstrap`);
- for the alert and survey windows, the same objects cut at ``--draws`` different alert
  times (:func:`astrot2.recipe.split_views` ``draw`` 0..K-1), pooled: the ECE of
  K x n windows, its noise floor (rows taken as independent) and its bootstrap interval
  resampling whole objects (an object's windows share its label, so they are not
  independent).

Writes ``benchmarks/results/ece-precision-NAME.json``.

Usage: python -m benchmarks.ece_precision --model lsst+companion [--draws 5]
"""

from __future__ import annotations

import argparse

import numpy as np

from astrot2.metrics import ece_bootstrap, ece_noise_floor, expected_calibration_error
from astrot2.recipe import split_views
from astrot2.runtime import Classifier
from benchmarks.common import plasticc_objects, write_result


def view_probabilities(clf: Classifier, batch, draws: int) -> dict[str, list[tuple]]:
    """Per view, per draw: calibrated probabilities, labels and object positions of the
    test light curves the model accepts (rejected windows are left out, as ``astrot2
    calibrate`` leaves them out)."""
    out: dict[str, list[tuple]] = {}
    for draw in range(draws):
        for view, (lcs, y) in split_views(clf, batch, "test", draw).items():
            if view == "whole" and draw > 0:
                continue  # a whole light curve has one cut
            pred = clf.predict(lcs, check_survey=False)
            keep = pred.status == "ok"
            out.setdefault(view, []).append((pred.probabilities[keep].astype(np.float64),
                                             y[keep], np.flatnonzero(keep)))
    return out


def summarise(parts: list[tuple]) -> dict[str, float]:
    """ECE, noise floor and bootstrap interval of draw 0 and of all draws pooled."""
    prob0, y0, _ = parts[0]
    boot = ece_bootstrap(prob0, y0)
    result = {"n": len(y0), "ece": boot["ece"], "ece_debiased": boot["ece_debiased"],
              "ece_ci95": boot["ci"], "ece_noise_floor": ece_noise_floor(prob0, n_draws=100)}
    if len(parts) > 1:
        prob = np.concatenate([p for p, _, _ in parts])
        y = np.concatenate([t for _, t, _ in parts])
        objects = np.concatenate([o for _, _, o in parts])
        boot = ece_bootstrap(prob, y, objects)
        result.update({"draws": len(parts), "n_pooled": len(y),
                       "ece_pooled": boot["ece"], "ece_pooled_debiased": boot["ece_debiased"],
                       "ece_pooled_ci95": boot["ci"],
                       "ece_pooled_noise_floor": ece_noise_floor(prob, n_draws=100),
                       "ece_per_draw": [expected_calibration_error(p, t) for p, t, _ in parts]})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="lsst", help="shipped model name or folder "
                        "(NAME+companion: with the feature companion)")
    parser.add_argument("--draws", type=int, default=5, help="alert cuts per test object")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    clf = Classifier.load(args.model, threads=args.threads)
    parts = view_probabilities(clf, plasticc_objects(), args.draws)
    views = {view: summarise(p) for view, p in parts.items()}
    for view, figures in views.items():
        print(view, {k: np.round(v, 4).tolist() for k, v in figures.items()})
    result = {"model": clf.name, "temperature": clf.temperature, "views": views,
              "command": f"python -m benchmarks.ece_precision --model {args.model} "
                         f"--draws {args.draws}"}
    print("wrote", write_result(f"ece-precision-{args.model}", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
