"""Reader throughput: alerts/s (and observations/s) for every input format.

Reads each format's real files several times and reports the median.  Uses the full
data folder (``ASTROT2_DATA``) when present, else the committed fixtures.  Writes
``benchmarks/results/readers.json``.

Usage: python benchmarks/readers.py [--repeats 5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from astrot2.io import expand_inputs, read_file
from benchmarks.common import REPO, data_dir, median_time, write_result


def datasets() -> dict[str, list[Path]]:
    """Files per format: the full real data when available, else the fixtures."""
    root = data_dir()
    if root is None:
        fx = REPO / "tests" / "data"
        return {
            "ztf-avro": sorted((fx / "ztf").glob("*.avro")),
            "ztf-parquet": sorted((fx / "ztf").glob("*.parquet")),
            "rubin-parquet": sorted((fx / "rubin").glob("*.parquet")),
            "rubin-avro": sorted((fx / "rubin").glob("*.avro")),
            "elasticc-parquet": sorted((fx / "elasticc").glob("*.parquet")),
            "plasticc-csv": [fx / "plasticc" / "plasticc_lc_sample.csv.gz"],
        }
    files = {sub: expand_inputs(root / sub) for sub in ("ztf", "rubin", "elasticc")}
    return {
        "ztf-avro": [p for p in files["ztf"] if p.suffix == ".avro"],
        "ztf-parquet": [p for p in files["ztf"] if p.suffix == ".parquet"],
        "rubin-parquet": [p for p in files["rubin"] if p.suffix == ".parquet"],
        "rubin-avro": [p for p in files["rubin"] if p.suffix == ".avro"],
        "elasticc-parquet": [p for p in files["elasticc"] if p.suffix == ".parquet"],
        "plasticc-csv": [root / "plasticc" / "training_set.csv.gz"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out: dict[str, object] = {"source": "ASTROT2_DATA" if data_dir() else "tests/data"}
    for name, paths in datasets().items():
        batches = [read_file(p) for p in paths]  # warm-up, and the counts
        alerts = sum(len(b) for b in batches)
        obs = sum(len(b.time) for b in batches)
        t, times = median_time(lambda paths=paths: [read_file(p) for p in paths], args.repeats)
        out[name] = {"files": len(paths), "alerts": alerts, "observations": obs,
                     "median_s": t, "alerts_per_s": alerts / t, "observations_per_s": obs / t,
                     "times_s": times}
        print(f"{name:18s} {alerts:7d} alerts {obs:9d} obs  {alerts / t:10.0f} alerts/s  "
              f"{obs / t:12.0f} obs/s")
    print("wrote", write_result("readers", out))


if __name__ == "__main__":
    main()
