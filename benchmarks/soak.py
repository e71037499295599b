"""Soak test: >= 1,000,000 replayed real alerts through ``astrot2 classify``, exactly once.

Real ELAsTiCC alert Parquet files (``$ASTROT2_DATA/elasticc/ftransfer_*``, else the
committed fixture) are replayed many times: a temporary folder holds one sub-folder per
replica, each with a symbolic link to every source file, so the inputs are many files
whose alert ids are known in advance (read here with pyarrow alone, not with astrot2).
``astrot2 classify`` runs as a subprocess under ``/usr/bin/time -v`` for its peak RSS; the
output's ``alert_id`` column is then compared with the expected sequence: alerts lost,
duplicated, and whether the order is the input order.  Two sizes (default 100k and 1M)
show whether peak memory grows with the number of alerts.  Writes
``benchmarks/results/soak.json``.

Usage: python -m benchmarks.soak [--alerts 100000 1000000] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.common import REPO, data_dir, write_result

ELASTICC = "elasticc/ftransfer_elasticc_2023-02-08_902820"


def source_files() -> list[Path]:
    """Real ELAsTiCC alert Parquet files: the data folder's, else the committed fixture."""
    root = data_dir()
    if root is not None and (root / ELASTICC).is_dir():
        return sorted((root / ELASTICC).rglob("*.parquet"))
    return [REPO / "tests" / "data" / "elasticc" / "elasticc_snia_20.parquet"]


def alert_ids(path: Path) -> list[str]:
    """The alert ids of an ELAsTiCC Parquet file, in file order (pyarrow only)."""
    return [str(v) for v in pq.read_table(path, columns=["alertId"]).column(0).to_pylist()]


def replicate(sources: list[Path], n_alerts: int, folder: Path) -> tuple[list[Path], list[str]]:
    """Replica folders of symbolic links holding at least ``n_alerts`` alerts.

    Returns the replica folders (the inputs, in order) and the expected alert ids in the
    order ``astrot2 classify`` reads them (folders in order, files sorted by name).
    """
    ids = [alert_ids(p) for p in sources]
    per_replica = sum(len(i) for i in ids)
    n_replicas = math.ceil(n_alerts / per_replica)
    replicas, expected = [], []
    for r in range(n_replicas):
        sub = folder / f"replica{r:05d}"
        sub.mkdir(parents=True)
        for k, (src, src_ids) in enumerate(zip(sources, ids, strict=True)):
            (sub / f"{k:03d}_{src.name}").symlink_to(src.resolve())
            expected.extend(src_ids)
        replicas.append(sub)
    return replicas, expected


def peak_rss_mb(time_v_stderr: str) -> float:
    """Peak RSS (MiB) from the report of ``/usr/bin/time -v``."""
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_v_stderr)
    if match is None:
        raise RuntimeError("no peak RSS in the /usr/bin/time -v report:\n" + time_v_stderr[-2000:])
    return int(match.group(1)) / 1024


def check_output(output: Path, expected: list[str]) -> dict[str, object]:
    """Compare the output's alert ids with the expected multiset and sequence."""
    got = [str(v) for v in pq.read_table(output, columns=["alert_id"]).column(0).to_pylist()]
    want, have = Counter(expected), Counter(got)
    return {
        "alerts_out": len(got),
        "lost": sum((want - have).values()),
        "duplicated": sum((have - want).values()),
        "same_order_as_input": got == expected,
    }


def soak(n_alerts: int, *, threads: int | None, batch_size: int, model: str) -> dict[str, object]:
    """One run: replicate, classify in a subprocess, check; the figures of the run."""
    with tempfile.TemporaryDirectory(prefix="astrot2-soak-") as tmp:
        folder = Path(tmp)
        replicas, expected = replicate(source_files(), n_alerts, folder / "in")
        output = folder / "out" / "classified.parquet"
        cmd = [sys.executable, "-m", "astrot2.cli", "classify", str(folder / "in"), "-o",
               str(output), "--model", model, "--batch-size", str(batch_size), "--quiet"]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()[0]
        if proc.returncode != 0:
            raise RuntimeError(f"astrot2 classify failed ({proc.returncode}):\n"
                               + proc.stderr[-3000:])
        summary = json.loads(proc.stdout)
        checks = check_output(output, expected)
        leftovers = sorted(p.name for p in output.parent.iterdir() if p != output)
    return {
        "alerts_in": len(expected),
        **checks,
        "files": len(replicas) * len(source_files()),
        "summary_alerts_in": summary["alerts_in"],
        "classified": summary["classified"],
        "rejected": summary["rejected"],
        "peak_rss_mb": round(peak_rss_mb(proc.stderr), 1),
        "wall_s": round(wall, 1),
        "alerts_per_s": round(len(expected) / wall, 1),
        "files_left_beside_output": leftovers,
        "load_average_1min_before_after": [round(load_before, 2), round(load_after, 2)],
    }


def git_state() -> str:
    """The commit measured, with ``+dirty`` when the source tree had local changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "src")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="alerts per run (one run each, smallest first)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--model", default="lsst")
    args = parser.parse_args()
    commit = git_state()  # before the runs: the code that is measured
    runs = []
    for n in sorted(args.alerts):
        run = soak(n, threads=args.threads, batch_size=args.batch_size, model=args.model)
        print(json.dumps(run), flush=True)
        runs.append(run)
    sources = source_files()
    payload = {
        "command": "python -m benchmarks.soak " + " ".join(sys.argv[1:]),
        "commit": commit,
        "sources": [str(p.relative_to(p.parents[2])) for p in sources],
        "alerts_per_replica": sum(len(alert_ids(p)) for p in sources),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "model": args.model,
        "runs": runs,
        "exactly_once": all(r["lost"] == 0 and r["duplicated"] == 0
                            and r["alerts_out"] == r["alerts_in"] for r in runs),
        "peak_rss_ratio_largest_vs_smallest": round(runs[-1]["peak_rss_mb"]
                                                    / runs[0]["peak_rss_mb"], 3),
    }
    print(write_result("soak", payload))


if __name__ == "__main__":
    main()
