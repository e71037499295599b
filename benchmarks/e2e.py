"""End-to-end benchmark of ``astrot2 classify`` on replayed real ZTF alerts.

1. Replay: the real ZTF alert Parquet files of the data folder (Fink / ZTF layout:
   ``objectId, candid, candidate`` with every ZTF field, ``prv_candidates``; image cutouts
   and broker columns left out) are unified and repeated, with new ``candid``s, into
   files of ``--file-size`` alerts until ``--alerts`` (default 200,000, one ZTF night).
2. End to end: the CLI's own function (:func:`astrot2.classify.classify_files`: read ->
   photometry -> GP -> model -> write Parquet) over the replay folder, 2 threads, median
   of ``--repeats`` runs; then the same work stage by stage, timed in-process (read,
   band selection + GP + features, ONNX model, the feature companion for
   ``--model NAME+companion``, output table + write).
3. Latency: one alert at a time (decoded light curve -> GP -> model -> output row) in a
   warm process: p50 / p99; cold start: ``astrot2 classify`` on a one-alert file, process
   start to result file, median of 5.
4. Reference: a per-object pipeline built from public libraries the way the original
   ran, on ``--reference`` alerts of the same replay, with the same 2 cores (2 worker
   processes): per alert, george + scipy L-BFGS-B GP fit and grid prediction
   (:func:`benchmarks.gp.reference_fit`), the same feature normalisation, and one ONNX
   Runtime call with a batch of 1.  Reading and writing are not charged to it.

Writes ``benchmarks/results/e2e.json`` (``e2e-NAME.json`` with ``--name``).  Needs george
(``pip install george``) for the reference only.

Usage: python -m benchmarks.e2e [--alerts 200000] [--model ztf] [--repeats 3]
[--reference 1000] [--keep DIR] [--name NAME]
"""

from __future__ import annotations

import os

# One BLAS thread per process, for both pipelines: the reference's scipy/george calls are
# tiny and oversubscribed BLAS threads would only spin against each other on 2 cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.common import data_dir, median_time, write_result

#: ZTF fields kept in the replay (every field of the packet but the image cutouts).
KEEP = ("objectId", "candid", "candidate", "prv_candidates")


def real_ztf_tables() -> pa.Table:
    """Every real ZTF Parquet alert with the ``candidate`` layout, one unified table."""
    root = data_dir()
    if root is None:
        raise SystemExit("the e2e benchmark needs ASTROT2_DATA (real ZTF alerts)")
    tables = []
    for path in sorted((root / "ztf").rglob("*.parquet")):
        names = pq.read_schema(path).names
        if all(k in names for k in KEEP):
            tables.append(pq.read_table(path, columns=list(KEEP)))
    # Schemas differ between ZTF 3.3 / 4.02 and writers: keep the fields all files share,
    # with the types of the first file.
    common = {}
    for key in ("candidate", "prv_candidates"):
        types = [t.schema.field(key).type for t in tables]
        structs = [ty if pa.types.is_struct(ty) else ty.value_type for ty in types]
        shared = set.intersection(*({f.name for f in s} for s in structs))
        fields = [f for f in structs[0] if f.name in shared]
        common[key] = pa.struct(fields)
    schema = pa.schema([("objectId", pa.string()), ("candid", pa.int64()),
                        ("candidate", common["candidate"]),
                        ("prv_candidates", pa.list_(common["prv_candidates"]))])
    unified = [pa.table({n: _cast(t.column(n).combine_chunks(), schema.field(n).type)
                         for n in schema.names}) for t in tables]
    table = pa.concat_tables(unified)
    _, first = np.unique(table.column("candid").to_numpy(), return_index=True)
    return table.take(pa.array(np.sort(first)))


def _cast(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast a (list of) struct column to ``target``, dropping fields it does not have."""
    if pa.types.is_struct(target):
        children = [_cast(arr.field(f.name), f.type) for f in target]
        return pa.StructArray.from_arrays(children, fields=list(target), mask=arr.is_null())
    if pa.types.is_list(target):
        values = _cast(arr.flatten(), target.value_type)
        return pa.ListArray.from_arrays(arr.offsets, values, mask=arr.is_null())
    return pc.cast(arr, target, safe=False)


def write_replay(table: pa.Table, n_alerts: int, file_size: int, dest: Path) -> list[Path]:
    """Repeat ``table`` into Parquet files of ``file_size`` alerts with unique candids."""
    dest.mkdir(parents=True, exist_ok=True)
    reps = -(-file_size // table.num_rows)
    block = pa.concat_tables([table] * reps).slice(0, file_size)
    files = []
    for k in range(-(-n_alerts // file_size)):
        size = min(file_size, n_alerts - k * file_size)
        part = block.slice(0, size)
        candid = pa.array(np.arange(k * file_size, k * file_size + size, dtype=np.int64)
                          + 10**15)
        part = part.set_column(part.schema.get_field_index("candid"), "candid", candid)
        path = dest / f"replay-{k:04d}.parquet"
        pq.write_table(part, path)
        files.append(path)
    return files


def stage_breakdown(files: list[Path], clf, out: Path) -> dict[str, float]:
    """Seconds per stage of the same work as ``classify_files``, timed in-process.

    One pass: reading, then ``classify_batch`` with the classifier's stage clock on (GP
    and features, network, companion); the rest of ``classify_batch`` and the writing
    count as ``output_and_write``.
    """
    from astrot2.classify import classify_batch
    from astrot2.io import read_file

    stages = dict.fromkeys(("read", "output_and_write"), 0.0)
    clf.stage_seconds = {}
    writer = None
    try:
        for path in files:
            t0 = time.perf_counter()
            batch = read_file(path)
            t1 = time.perf_counter()
            table = classify_batch(clf, batch)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
            stages["read"] += t1 - t0
            stages["output_and_write"] += time.perf_counter() - t1
        inside = dict(clf.stage_seconds)
    finally:
        clf.stage_seconds = None
        if writer is not None:
            writer.close()
    stages["output_and_write"] -= sum(inside.values())
    if clf.companion is None:
        inside.pop("companion", None)
    return {"read": stages["read"], "gp_and_features": inside["gp_and_features"],
            "model": inside["network"],
            **({"companion": inside["companion"]} if "companion" in inside else {}),
            "output_and_write": stages["output_and_write"]}


def latency(clf, batch, n: int) -> dict[str, float]:
    """Single-alert latency (light curve -> output row), warm process, in ms."""
    from astrot2.classify import classify_batch

    for i in range(20):  # warm-up
        classify_batch(clf, batch.take(np.array([i % len(batch)])))
    times = []
    for i in range(n):
        one = batch.take(np.array([i % len(batch)]))
        t0 = time.perf_counter()
        classify_batch(clf, one)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "n": n}


def cold_start(one_file: Path, model: str, tmp: Path, repeats: int = 5) -> dict[str, object]:
    """``astrot2 classify`` on one alert: process start to written result, in s."""
    times = []
    for k in range(repeats):
        out = tmp / f"cold-{k}.parquet"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "astrot2.cli", "classify", str(one_file), "-o",
                        str(out), "--model", model, "--quiet"], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - t0)
        assert pq.read_table(out).num_rows == 1
    return {"median_s": float(np.median(times)), "times_s": times}


def _reference_worker(args) -> tuple[int, float]:
    """Per-object reference on a slice of light curves (runs in a worker process).

    Returns the number of alerts and the seconds of the per-alert loop (start-up, imports
    and reading are excluded)."""
    model_dir, path, indices = args
    from astrot2.features import build_inputs
    from astrot2.gp import GPResult
    from astrot2.io import read_file
    from astrot2.runtime import Classifier
    from benchmarks.gp import reference_fit

    clf = Classifier.load(Path(model_dir), threads=1)  # any model kind (.onnx, .ort, .t2c)
    m, session = clf.manifest, clf.session
    batch = read_file(Path(path)).take(np.asarray(indices))
    lam_all = batch.survey.wavelength_array
    wanted = [batch.survey.bands.index(b) for b in m.features.bands]
    warm = np.linspace(0.0, 30.0, 8)  # first call imports george and scipy.optimize
    reference_fit(warm, np.full(8, lam_all[0]), np.sin(warm), np.ones(8), warm, lam_all, m.gp)
    t0 = time.perf_counter()
    for i in range(len(batch)):
        lc = batch[i]
        sel = np.isin(lc.band, wanted)
        t, y, err = lc.time[sel], lc.flux[sel], lc.flux_err[sel]
        det = lc.detected[sel]
        if len(t) == 0:
            continue
        first, last = (t[det].min(), t[det].max()) if det.any() else (t.min(), t.max())
        grid_t = np.linspace(first - m.gp.window_before, last + m.gp.window_after,
                             m.gp.n_steps)
        grid_lam = lam_all
        mean, std = reference_fit(t, lam_all[lc.band[sel]], y, err, grid_t, grid_lam, m.gp,
                                  return_grid=True)
        one = batch.take(np.array([i]))
        res = GPResult(times=grid_t[None], mean=mean[None], std=std[None],
                       amplitude=np.ones(1), length_scale=np.ones(1),
                       log_likelihood=np.zeros(1), n_points=np.array([len(t)]),
                       n_iter=np.zeros(1), status=np.zeros(1, np.int8))
        x, extra = build_inputs(one, res, m.features)
        feeds = {"x": x}
        if m.n_extra:
            feeds["extra"] = extra
        session.run(None, feeds)
    return len(batch), time.perf_counter() - t0


def reference(model_dir: Path, path: Path, n: int, n_workers: int = 2) -> dict[str, float]:
    """Per-object reference throughput on the first ``n`` alerts of ``path``, with
    ``n_workers`` processes (each reads its share first, untimed by the pipeline)."""
    from concurrent.futures import ProcessPoolExecutor

    parts = [(str(model_dir), str(path), idx.tolist())
             for idx in np.array_split(np.arange(n), n_workers)]
    with ProcessPoolExecutor(n_workers) as pool:
        results = list(pool.map(_reference_worker, parts))
    done = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)  # the workers run side by side
    return {"alerts": done, "seconds": elapsed, "alerts_per_s": done / elapsed,
            "workers": n_workers, "per_alert_ms": 1e3 * elapsed * n_workers / done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200_000)
    parser.add_argument("--file-size", type=int, default=10_000)
    parser.add_argument("--model", default="ztf")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference", type=int, default=1000)
    parser.add_argument("--latency-alerts", type=int, default=2000)
    parser.add_argument("--keep", type=Path, default=None, help="keep the replay here")
    parser.add_argument("--name", default=None,
                        help="result file benchmarks/results/e2e-NAME.json (default: e2e)")
    args = parser.parse_args()

    from astrot2.classify import classify_files
    from astrot2.io import read_file
    from astrot2.runtime import Classifier, resolve_model

    real = real_ztf_tables()
    tmp = Path(tempfile.mkdtemp(prefix="astrot2-e2e-"))
    replay = args.keep or tmp / "replay"
    files = write_replay(real, args.alerts, args.file_size, replay)
    clf = Classifier.load(args.model, threads=2)
    out: dict[str, object] = {"model": clf.name, "real_alerts": real.num_rows,
                              "alerts": args.alerts, "files": len(files),
                              "cpu_count": os.cpu_count()}

    result = tmp / "out.parquet"
    summaries = []

    def run_cli() -> None:
        summaries.append(classify_files([replay], result, clf, progress=False))

    t_med, times = median_time(run_cli, args.repeats)
    assert pq.read_table(result, columns=["alert_id"]).num_rows == args.alerts
    out["end_to_end"] = {"alerts_per_s": args.alerts / t_med, "median_s": t_med,
                         "times_s": times, "summary": summaries[-1]}
    stages = stage_breakdown(files, clf, tmp / "stages.parquet")
    total = sum(stages.values())
    out["stages"] = {k: {"seconds": v, "share": v / total,
                         "alerts_per_s": args.alerts / v if v else None}
                     for k, v in stages.items()}

    sample = read_file(files[0])
    out["latency_single_alert"] = latency(clf, sample, args.latency_alerts)
    one = tmp / "one.parquet"
    pq.write_table(pq.read_table(files[0]).slice(0, 1), one)
    out["cold_start"] = cold_start(one, args.model, tmp)

    if args.reference:
        ref = reference(resolve_model(args.model), files[0], min(args.reference, len(sample)))
        out["reference_per_object"] = ref
        out["speedup_vs_reference"] = out["end_to_end"]["alerts_per_s"] / ref["alerts_per_s"]
    print({k: out[k] for k in ("end_to_end", "latency_single_alert", "cold_start")})
    print({k: round(v["share"], 3) for k, v in out["stages"].items()})
    if "speedup_vs_reference" in out:
        print("reference", round(out["reference_per_object"]["alerts_per_s"], 1), "alerts/s;",
              "speed-up", round(out["speedup_vs_reference"], 1))
    print("wrote", write_result(f"e2e-{args.name}" if args.name else "e2e", out))


if __name__ == "__main__":
    main()
