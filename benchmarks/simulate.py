"""Survey simulator throughput: kept light curves per second of ``astrot2 simulate``.

Times :func:`astrot2.simulate.simulate` for ZTF (the real observing log) and, when the
PLAsTiCC training set is in the data folder, LSST (its cadences), at each ``--workers``
count: the median wall time of ``--repeats`` runs (seeds 1, 2, ...), after a first call
that loads the templates (timed apart as ``startup_s``: once per command, shared by its
workers).  Checks that every worker count gives the same table, and projects the wall time
of 100,000 objects (``startup_s`` + 100,000 x the per-object time).  The timings are wall
clock on whatever else the machine runs: medians, noisy on a shared machine.  Needs
``ASTROT2_DATA`` (the ZTF observing log, PLAsTiCC, sncosmo's templates).  Writes
``benchmarks/results/simulate.json`` with the machine description.

Usage: python -m benchmarks.simulate [--n 2000] [--n-lsst 500] [--workers 1 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import data_dir, median_time, write_result

#: The issue's target size.
PROJECTED = 100_000


def _pointings(survey: str) -> dict[str, np.ndarray] | None:
    """The survey's pointings from the data folder (None when missing)."""
    from astrot2.io import read_file
    from astrot2.simulate import pointings_from_light_curves, read_pointings

    root = data_dir()
    if survey == "ztf":
        path = root / "surveys" / "ztf_pointings.csv.gz"
        return read_pointings(path) if path.is_file() else None
    folder = root / "plasticc"
    if not (folder / "training_set.csv.gz").is_file():
        return None
    return pointings_from_light_curves(read_file(
        folder / "training_set.csv.gz", format="plasticc",
        metadata=folder / "training_set_metadata.csv"))


def _same(a, b) -> bool:
    """Two simulated batches hold the same points and labels (NaN = NaN)."""
    cols = ("time", "flux", "flux_err", "band", "detected", "offsets")
    return (all(np.array_equal(getattr(a, c), getattr(b, c)) for c in cols)
            and all(np.array_equal(a.extra[k], b.extra[k], equal_nan=a.extra[k].dtype.kind
                                   == "f") for k in a.extra))


def bench_survey(survey: str, n: int, workers: list[int], repeats: int,
                 sncosmo_dir: str | None) -> dict[str, object]:
    """Startup and per-object times of one survey at each worker count."""
    from astrot2.simulate import SimulateConfig, simulate

    start = time.perf_counter()
    pointings = _pointings(survey)
    read_s = time.perf_counter() - start
    if pointings is None:
        return {"skipped": f"no {survey} pointings in the data folder"}
    config = SimulateConfig(survey=survey)
    start = time.perf_counter()
    simulate(1, pointings, config, seed=0, data_dir=sncosmo_dir)  # loads the templates
    startup_s = time.perf_counter() - start
    out: dict[str, object] = {"n": n, "pointings_read_s": round(read_s, 2),
                              "startup_s": round(startup_s, 2), "workers": {}}
    tables = {}
    for w in workers:
        seeds = iter(range(1, repeats + 1))
        t, times = median_time(lambda w=w, seeds=seeds: tables.__setitem__(w, simulate(
            n, pointings, config, seed=next(seeds), data_dir=sncosmo_dir, workers=w)),
            repeats)
        per_object = t / n
        out["workers"][str(w)] = {
            "median_s": round(t, 3), "times_s": [round(x, 3) for x in times],
            "ms_per_object": round(1e3 * per_object, 3),
            "objects_per_s": round(n / t, 1),
            "projected_100k_s": round(startup_s + PROJECTED * per_object, 1)}
        print(f"{survey} workers={w}: {t:7.2f} s for {n} ({1e3 * per_object:.2f} ms/object; "
              f"100,000 in ~{(startup_s + PROJECTED * per_object) / 60:.1f} min)")
    first = tables[workers[0]]
    out["identical_across_workers"] = all(_same(first, tables[w]) for w in workers)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="ZTF objects kept per run")
    parser.add_argument("--n-lsst", type=int, default=500,
                        help="LSST objects kept per run (0: skip)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (>= 3)")
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error(f"--repeats must be >= 3 for a median, got {args.repeats}")
    if data_dir() is None:
        raise SystemExit("the simulator benchmark needs ASTROT2_DATA (see README)")
    from astrot2.data import fetch_dataset

    sncosmo_dir = str(fetch_dataset("sncosmo", progress=False))
    results = {"ztf": bench_survey("ztf", args.n, args.workers, args.repeats, sncosmo_dir)}
    if args.n_lsst > 0:
        results["lsst"] = bench_survey("lsst", args.n_lsst, args.workers, args.repeats,
                                       sncosmo_dir)
    print("wrote", write_result("simulate", {
        "repeats": args.repeats,
        "note": "wall time of astrot2.simulate.simulate (in process, pointings read and "
                "templates loaded once before: startup_s), median of the runs (seeds 1..); "
                "projected_100k_s = startup_s + 100,000 x median / n; the machine was shared "
                "with another job (timings noisy); lsst ran after ztf in the same process, so "
                "its startup_s leaves out the template loading (~9 s, ztf's startup_s)",
        "results": results}))


if __name__ == "__main__":
    main()
