"""The main job: alert files in, one row of class probabilities per alert out.

:func:`classify_batch` is the single batch function that the CLI (``astrot2 classify``)
and, later, the Spark UDFs call.  :func:`classify_files` streams files in chunks (memory
bounded by ``batch_size``) and writes Parquet, CSV or JSON atomically.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa

from astrot2.classes import CLASSES
from astrot2.lightcurves import LightCurveBatch
from astrot2.runtime import Classifier

__all__ = ["classify_batch", "classify_files"]


def classify_batch(clf: Classifier, batch: LightCurveBatch,
                   min_points: int = 1) -> pa.Table:
    """Classify a batch: a table with exactly one row per light curve, in order.

    Columns: ``alert_id, object_id, status`` (``ok`` or the reject reason),
    ``top_class, top_prob``, ``p_<slug>`` for the 14 classes, and ``model``.
    """
    few = (batch.n_points < min_points) & batch.ok
    if few.any():
        batch = batch.with_reject(few, f"fewer_than_{min_points}_points")
    pred = clf.predict(batch)
    prob = pred.probabilities
    ok = pred.status == "ok"
    top = prob.argmax(axis=1)
    names = np.array([c.name for c in CLASSES], dtype=object)
    columns = {
        "alert_id": pa.array(batch.alert_id.astype(str)),
        "object_id": pa.array(batch.object_id.astype(str)),
        "status": pa.array(pred.status.astype(str)),
        "top_class": pa.array(np.where(ok, names[top], None).tolist(), pa.string()),
        "top_prob": pa.array(np.where(ok, prob[np.arange(len(prob)), top], np.nan),
                             pa.float32(), from_pandas=True),
    }
    for j, c in enumerate(CLASSES):
        columns[f"p_{c.slug}"] = pa.array(prob[:, j], pa.float32())
    columns["model"] = pa.array([clf.name] * len(batch), pa.string())
    return pa.table(columns)


def _writer(path: Path):
    """A function writing a list of tables to ``path`` by its extension."""
    suffix = path.name.lower()
    if suffix.endswith(".parquet"):
        import pyarrow.parquet as pq

        return lambda table, tmp: pq.write_table(table, tmp)
    if suffix.endswith(".csv"):
        from pyarrow import csv

        return lambda table, tmp: csv.write_csv(table, tmp)
    if suffix.endswith(".json"):
        import json

        return lambda table, tmp: Path(tmp).write_text(json.dumps(table.to_pylist()))
    raise ValueError(f"output {path}: use a .parquet, .csv or .json file name")


def classify_files(inputs: Iterable[str | Path], output: str | Path, clf: Classifier, *,
                   format: str | None = None, batch_size: int = 8192, min_points: int = 1,
                   metadata: str | Path | None = None, progress: bool = True) -> dict:
    """Classify every alert of ``inputs`` into ``output``; returns a summary dict."""
    from tqdm import tqdm

    from astrot2.io import expand_inputs, read_file
    from astrot2.utils import atomic_path

    output = Path(output)
    write = _writer(output)
    files = expand_inputs(inputs)
    start = time.perf_counter()
    tables, statuses = [], Counter()
    n_in = 0
    bar = tqdm(total=len(files), unit="file", disable=not progress, file=sys.stderr)
    for path in files:
        batch = read_file(path, format, metadata=metadata)
        n_in += len(batch)
        for chunk in batch.chunks(batch_size):
            table = classify_batch(clf, chunk, min_points)
            statuses.update(table.column("status").to_pylist())
            tables.append(table)
        bar.update(1)
    bar.close()
    result = pa.concat_tables(tables) if tables else classify_batch(
        clf, LightCurveBatch.from_observations(clf.manifest.survey, [], [], [], [], [], [], [],
                                               []))
    assert result.num_rows == n_in, "every input alert must yield exactly one output row"
    with atomic_path(output) as tmp:
        write(result, tmp)
    elapsed = time.perf_counter() - start
    return {
        "alerts_in": n_in,
        "classified": statuses.pop("ok", 0),
        "rejected": dict(statuses),
        "seconds": round(elapsed, 3),
        "alerts_per_s": round(n_in / elapsed, 1) if elapsed > 0 else None,
        "output": str(output),
        "model": clf.name,
    }
