"""An ensemble of trained models, measured against its members: would it teach better?

The members (model folders trained on the same split, e.g. ``astrot2 train --init-seed``)
classify the same held-out test views: whole light curves, the alert windows of ``astrot2
evaluate`` and the early-classification age bins of :mod:`benchmarks.early` (same cuts and
seeds; rejects count as uniform probabilities there, and are left out of the views of
``astrot2 evaluate``, as there) and, for a model trained on re-observed survey alerts
(``ztf``), the survey windows of ``astrot2 evaluate``. Per view, each member's figures and
those of the mean of their class probabilities (each member calibrated when its manifest
has a temperature). This is the teacher that ``astrot2 compress --teachers`` distils into
one student.

Writes ``benchmarks/results/ensemble-NAME.json``.

Usage: python -m benchmarks.ensemble --models DIR DIR [DIR ...] --name lsst-forecast
[--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from astrot2.recipe import split_views, training_settings
from astrot2.runtime import Classifier, resolve_model
from benchmarks.common import plasticc_objects, write_result
from benchmarks.early import age_views, probabilities, snia_auc, view_metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="model folders or names")
    parser.add_argument("--name", required=True, help="label of the result file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the age-bin cuts")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("an ensemble needs at least two models")

    start = time.perf_counter()
    folders = [resolve_model(m) for m in args.models]
    splits = {(f / "split.json").read_text() for f in folders}
    if len(splits) != 1:
        parser.error("the models were trained on different splits")
    clfs = [Classifier.load(f, threads=1) for f in folders]
    batch = plasticc_objects()
    evaluate_views = split_views(clfs[0], batch, "test")  # whole, alert (survey) windows
    part, y = evaluate_views["whole"]
    max_history = training_settings(folders[0]).augment.max_history
    views = {label: view for label, (_, _, view) in age_views(part, max_history,
                                                              args.seed).items()}
    views.update({label: view for label, (view, _) in evaluate_views.items()})

    names = [str(Path(m)) for m in args.models] + ["ensemble"]
    result: dict = {"members": names[:-1], "n_objects": int(part.n_objects), "views": {}}
    early: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for label, view in views.items():
        y_view = y
        if label in evaluate_views:  # as astrot2 evaluate:
            usable = np.flatnonzero(view.ok)  # an unusable view (no g or r...) is left out
            view, y_view = view.take(usable), y[usable]
        probs, rejects = zip(*(probabilities(c, view) for c in clfs), strict=True)
        probs = [*probs, np.mean(probs, axis=0)]
        rejects = [*rejects, np.logical_and.reduce(rejects)]
        result["views"][label] = {n: view_metrics(p, r, view, y_view)
                                  for n, p, r in zip(names, probs, rejects, strict=True)}
        if label in ("0-3", "3-7"):
            for n, p in zip(names, probs, strict=True):
                early[n].append(p)
        row = {n: round(result["views"][label][n]["flat_log_loss"], 3) for n in names}
        print(label, row, file=sys.stderr)
    result["snia_auc_le_7d"] = {n: snia_auc(np.concatenate(early[n]), np.concatenate([y, y]))
                                for n in names}
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["command"] = ("python -m benchmarks.ensemble --models " + " ".join(args.models)
                         + f" --name {args.name} --seed {args.seed}")
    out = write_result(f"ensemble-{args.name}", result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
