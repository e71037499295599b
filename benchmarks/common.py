"""Shared helpers of the benchmark scripts: real data sets, timing, result files."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent


def data_dir() -> Path | None:
    """The real-data folder, ``$ASTROT2_DATA`` (None when unset or missing)."""
    env = os.environ.get("ASTROT2_DATA")
    return Path(env) if env and Path(env).is_dir() else None


def ztf_alert_files() -> list[Path]:
    """Every real ZTF alert file (Avro and Parquet) of the data folder, else the fixtures."""
    root = data_dir()
    base = root / "ztf" if root else REPO / "tests" / "data" / "ztf"
    return sorted(p for p in base.rglob("*") if p.name.endswith((".avro", ".parquet")))


def real_ztf_alerts():
    """All real ZTF alerts, one light curve each, duplicates (same alert id) removed."""
    from astrot2.io import read_alerts

    batch = read_alerts(ztf_alert_files())
    _, first = np.unique(batch.alert_id.astype(str), return_index=True)
    return batch.take(np.sort(first))


def plasticc_objects(n: int | None = None, seed: int = 0):
    """PLAsTiCC training objects (all, or a seeded random sample of ``n``)."""
    from astrot2.io import read_file

    root = data_dir()
    if root is None:
        raise SystemExit("PLAsTiCC benchmarks need ASTROT2_DATA (see README)")
    batch = read_file(root / "plasticc" / "training_set.csv.gz", format="plasticc",
                      metadata=root / "plasticc" / "training_set_metadata.csv")
    if n is not None and n < len(batch):
        rng = np.random.default_rng(seed)
        batch = batch.take(np.sort(rng.choice(len(batch), n, replace=False)))
    return batch


def median_time(fn: Callable[[], object], repeats: int = 5) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` runs (seconds), and all the times."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    import pyarrow

    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyarrow": pyarrow.__version__,
    }


def write_result(name: str, payload: dict[str, object]) -> Path:
    """Write ``benchmarks/results/NAME.json`` with the machine description added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    return path
