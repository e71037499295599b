"""Throughput of LSST models on the same Rubin-format alerts, measured in the same run.

The ELAsTiCC alerts of the data folder (3,096 alerts with their forced photometry, as
``astrot2 classify`` reads them) are decoded once and classified by each model in turn
(``Classifier.predict``: band selection, GP, features, network, calibration; 2 threads),
the models alternating, ``--repeats`` times each; medians and the ratio to the first model.
Decoding and writing are not timed (they do not depend on the model; ``benchmarks.e2e``
measures the whole ZTF path).  Writes ``benchmarks/results/lsst_throughput.json``.

Usage: python -m benchmarks.lsst_throughput [--models lsst-plasticc lsst] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from astrot2.io import read_alerts
from astrot2.lightcurves import LightCurveBatch
from astrot2.runtime import Classifier
from benchmarks.common import data_dir, write_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lsst-plasticc", "lsst"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--copies", type=int, default=4, help="the alerts repeated")
    parser.add_argument("--name", default=None, help="results file suffix")
    args = parser.parse_args(argv)
    root = data_dir()
    if root is None:
        raise SystemExit("needs ASTROT2_DATA")
    export = root / "elasticc" / "ftransfer_elasticc_2023-02-08_902820"
    batch = read_alerts([export / "classId=111", export / "classId=113"])
    batch = LightCurveBatch.concat([batch] * args.copies)
    models = {name: Classifier.load(name, threads=2) for name in args.models}
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, clf in models.items():
            start = time.perf_counter()
            clf.predict(batch)
            times[name].append(time.perf_counter() - start)
    first = args.models[0]
    rates = {name: len(batch) / statistics.median(t) for name, t in times.items()}
    out = {"alerts": len(batch), "threads": 2, "repeats": args.repeats,
           "alerts_per_second": rates,
           "ratio_to_first": {name: rates[name] / rates[first] for name in rates},
           "seconds": times}
    print({k: round(v) for k, v in rates.items()})
    write_result(f"lsst_throughput{'-' + args.name if args.name else ''}", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
