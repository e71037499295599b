"""A model with host photo-z inputs, on alerts that carry none.

The ``lsst`` model was trained on PLAsTiCC, where every object has a host photo-z (0 for
galactic objects); the Rubin alerts of the data folder carry none (``hostgal_zphot``
empty in all of them).  This scores the held-out views of ``astrot2 evaluate`` twice:
as they are and with the host photo-z and its error removed
(:func:`astrot2.augment.without_redshift`), for each model given.  Rejected alerts are
left out.  Writes ``benchmarks/results/no_photoz.json``.

Usage: python -m benchmarks.no_photoz [--models lsst lsst+companion]
"""

from __future__ import annotations

import argparse

import numpy as np

from astrot2.augment import without_redshift
from astrot2.classes import CLASSES
from astrot2.metrics import classification_report, expected_calibration_error
from astrot2.recipe import split_views
from astrot2.runtime import Classifier
from benchmarks.common import plasticc_objects, write_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lsst", "lsst+companion"])
    args = parser.parse_args(argv)
    batch = plasticc_objects()
    names = [c.name for c in CLASSES]
    out: dict = {"models": {}}
    for spec in args.models:
        clf = Classifier.load(spec, threads=1)
        rows: dict = {}
        for view_name, (view, y) in split_views(clf, batch, "test").items():
            for label, shown in (("with_photoz", view), ("without_photoz",
                                                         without_redshift(view))):
                pred = clf.predict(shown, check_survey=False)
                ok = (pred.status == "ok") & shown.ok
                prob = pred.probabilities[ok].astype(np.float64)
                report = classification_report(y[ok], prob, names)
                rows[f"{view_name}/{label}"] = {
                    "n": int(ok.sum()), "flat_log_loss": report["flat_log_loss"],
                    "accuracy": report["accuracy"],
                    "ece": expected_calibration_error(prob, y[ok])}
                print(spec, view_name, label, {k: round(v, 3) for k, v in
                                               rows[f"{view_name}/{label}"].items()})
        out["models"][clf.name] = rows
    out["command"] = "python -m benchmarks.no_photoz --models " + " ".join(args.models)
    print("wrote", write_result("no_photoz", out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
