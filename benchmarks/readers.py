"""Reader throughput: alerts/s (and observations/s) for every input format.

Reads each format's real files ``--repeats`` times (at least 5, after one warm-up read) and
reports the median wall time of reading all of them.  Uses the full data folder
(``ASTROT2_DATA`` or ``../shared/data``) when present, else the committed fixtures of
``tests/data``.  Writes ``benchmarks/results/readers.json`` with the machine description.

Usage: python -m benchmarks.readers [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from astrot2.io import expand_inputs, read_file
from benchmarks.common import REPO, data_dir, median_time, write_result


def _pick(files: list[Path], suffix: str) -> list[Path]:
    return [p for p in files if p.name.endswith(suffix)]


def datasets(root: Path | None) -> dict[str, list[Path]]:
    """Files per format under ``root`` (the data folder), or the fixtures when None."""
    base = root if root is not None else REPO / "tests" / "data"
    files = {sub: expand_inputs(base / sub) for sub in ("ztf", "rubin", "elasticc")}
    plasticc = (base / "plasticc" / "training_set.csv.gz" if root is not None
                else base / "plasticc" / "plasticc_lc_sample.csv.gz")
    return {
        "ztf-avro": _pick(files["ztf"], ".avro"),
        "ztf-parquet": _pick(files["ztf"], ".parquet"),
        "rubin-parquet": _pick(files["rubin"], ".parquet"),
        "rubin-avro": _pick(files["rubin"], ".avro"),
        "elasticc-parquet": _pick(files["elasticc"], ".parquet"),
        "elasticc-avro-gz": _pick(files["elasticc"], ".avro.gz"),
        "plasticc-csv": [plasticc] if plasticc.is_file() else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (>= 5)")
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error(f"--repeats must be >= 5 for a meaningful median, got {args.repeats}")
    root = data_dir()
    import fastavro

    out: dict[str, object] = {
        "source": "data folder (ASTROT2_DATA)" if root else "tests/data (fixtures)",
        "fastavro": fastavro.__version__,
        "repeats": args.repeats,
        "note": "median wall time of reading every file of the format once, one process, "
                "after a warm-up read; alerts = light curves out (= alerts in)",
    }
    results: dict[str, object] = {}
    for name, paths in datasets(root).items():
        if name == "plasticc-csv" and importlib.util.find_spec("astrot2.io.plasticc") is None:
            results[name] = {"skipped": "astrot2.io.plasticc is not available"}
            continue
        if not paths:
            results[name] = {"skipped": "no such files in the data folder"}
            continue
        batches = [read_file(p) for p in paths]  # warm-up, and the counts
        alerts = sum(len(b) for b in batches)
        obs = sum(len(b.time) for b in batches)
        t, times = median_time(lambda paths=paths: [read_file(p) for p in paths], args.repeats)
        mib = sum(p.stat().st_size for p in paths) / 2**20
        results[name] = {"files": len(paths), "mib": round(mib, 2), "alerts": alerts,
                         "observations": obs, "median_s": round(t, 5),
                         "alerts_per_s": round(alerts / t, 1),
                         "observations_per_s": round(obs / t, 1),
                         "times_s": [round(x, 5) for x in times]}
        print(f"{name:17s} {len(paths):3d} files {alerts:7d} alerts {obs:9d} obs "
              f"{t * 1e3:9.1f} ms  {alerts / t:9.0f} alerts/s  {obs / t:11.0f} obs/s")
    out["results"] = results
    print("wrote", write_result("readers", out))


if __name__ == "__main__":
    main()
