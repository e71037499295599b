"""Spark throughput: alerts/s of ``astrot2 spark classify`` with local[1] and local[2].

Replays the real ELAsTiCC alerts of the data folder (``ASTROT2_DATA`` or
``../shared/data``) until at least ``--alerts`` alerts (default 100,000), classifies them
with the shipped ``lsst`` model through :func:`astrot2.spark.classify_files_spark` (one
Spark session per master, started before the timed runs) and through the local CLI path
(:func:`astrot2.classify.classify_files`, one process, one ONNX Runtime thread) for the
Spark overhead ratio, and records the model loads per Python worker.  Medians of
``--repeats`` runs.  Writes ``benchmarks/results/spark.json``.

Usage: python -m benchmarks.spark [--alerts 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

from astrot2.io import expand_inputs, read_file
from benchmarks.common import data_dir, median_time, write_result


def replay_files(min_alerts: int) -> tuple[list[Path], int, int]:
    """The real ELAsTiCC alert files repeated until they hold ``min_alerts`` alerts.

    Returns the file list, the alerts of one pass and the number of passes.
    """
    root = data_dir()
    if root is None:
        raise SystemExit("the Spark benchmark needs ASTROT2_DATA (see README)")
    files = [p for p in expand_inputs(root / "elasticc") if p.name.endswith(".parquet")]
    per_pass = sum(len(read_file(p)) for p in files)
    passes = math.ceil(min_alerts / per_pass)
    return files * passes, per_pass, passes


def run_spark(master: str, files: list[Path], repeats: int, out: Path) -> dict[str, object]:
    """Median time of the Spark batch job on ``files`` with ``master``."""
    from astrot2.spark import classify_files_spark, spark_session

    start = time.perf_counter()
    spark = spark_session(master, app_name=f"astrot2-bench-{master}",
                          conf={"spark.ui.enabled": "false", "spark.driver.memory": "2g"})
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - start
    summaries = []

    def job() -> None:
        summaries.append(classify_files_spark(spark, files, out, model="lsst"))

    try:
        median, times = median_time(job, repeats)
    finally:
        spark.stop()
    n = summaries[-1]["alerts_out"]
    return {"master": master, "alerts": n, "session_startup_s": round(startup, 2),
            "median_s": round(median, 2), "times_s": [round(t, 2) for t in times],
            "alerts_per_s": round(n / median, 1),
            "partitions": summaries[-1]["partitions"],
            "workers": [s["workers"] for s in summaries],
            "model_loads": [s["model_loads"] for s in summaries]}


def run_cli(files: list[Path], repeats: int, out: Path) -> dict[str, object]:
    """Median time of the local CLI path (``classify_files``) on ``files``."""
    from astrot2.classify import classify_files
    from astrot2.runtime import Classifier

    clf = Classifier.load("lsst", threads=1)
    summaries = []
    median, times = median_time(
        lambda: summaries.append(classify_files(files, out, clf, progress=False)), repeats)
    n = summaries[-1]["alerts_in"]
    return {"alerts": n, "median_s": round(median, 2), "times_s": [round(t, 2) for t in times],
            "alerts_per_s": round(n / median, 1), "onnx_threads": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000, help="alerts per run (at least)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per configuration")
    parser.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    args = parser.parse_args()
    files, per_pass, passes = replay_files(args.alerts)
    load_before = os.getloadavg()[0]
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="astrot2-bench-spark-") as tmp:
        results["cli"] = run_cli(files, args.repeats, Path(tmp) / "cli.parquet")
        print("cli", results["cli"], flush=True)
        for master in args.masters:
            results[master] = run_spark(master, files, args.repeats, Path(tmp) / "spark")
            print(master, results[master], flush=True)
    cli_rate = results["cli"]["alerts_per_s"]
    ratios = {m: round(results[m]["alerts_per_s"] / cli_rate, 3) for m in args.masters}
    path = write_result("spark", {
        "command": f"python -m benchmarks.spark --alerts {args.alerts} --repeats {args.repeats}",
        "data": f"real ELAsTiCC alerts of the data folder ({per_pass} alerts, "
                f"{len(files) // passes} Parquet files) replayed {passes} times",
        "model": "lsst (shipped)",
        "repeats": args.repeats,
        "load_average_1min_before_after": [round(load_before, 2),
                                           round(os.getloadavg()[0], 2)],
        "note": "Spark times are the job alone (session already started; files listed, "
                "classified, Parquet written and counted); CLI = classify_files in one "
                "process; ratio = Spark alerts/s / CLI alerts/s; model_loads should equal "
                "workers (one load per Python worker); the CLI classifier and each Spark "
                "worker run GP and network on 1 thread (Classifier threads=1), so local[1] "
                "vs CLI is Spark's overhead and local[2] vs local[1] its scaling; the "
                "machine is shared, see the load average",
        "results": results,
        "spark_over_cli_throughput": ratios,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
