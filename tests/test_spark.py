"""Spark UDFs and jobs against ``classify_batch`` / ``astrot2 classify`` on real alerts.

A real local Spark session (``local[2]``), real ONNX Runtime models (the shipped ``lsst``
model, a tiny trained ``ztf`` model), real alert files; the streaming job is killed with
SIGKILL mid-stream and restarted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")

from pyspark.sql import functions as F

from astrot2.classes import CLASSES
from astrot2.classify import classify_batch
from astrot2.io import expand_inputs, read_file
from astrot2.runtime import Classifier, shipped_models
from astrot2.spark import (
    classify_files_spark,
    classify_rubin,
    classify_ztf,
    spark_session,
    worker_model_loads,
)

PROBS = [f"p_{c.slug}" for c in CLASSES]
TOL = 1e-6


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole file: 2 cores, small Arrow batches, no UI."""
    if "lsst" not in shipped_models():
        pytest.skip("no shipped lsst model")
    session = spark_session("local[2]", app_name="astrot2-tests", arrow_batch_size=4,
                            conf={"spark.sql.shuffle.partitions": "2",
                                  "spark.ui.enabled": "false",
                                  "spark.driver.memory": "1g"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_module_does_not_import_torch():
    code = "import sys, astrot2.spark; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def _reference(model, paths, include_forced: bool = True) -> pa.Table:
    """``classify_batch`` of each file, concatenated: what ``astrot2 classify`` writes
    (Rubin forced photometry read as non-detections, its default)."""
    clf = Classifier.load(model, threads=1)
    return pa.concat_tables([classify_batch(clf, read_file(p, include_forced=include_forced))
                             for p in paths])


def _assert_same_rows(got: pa.Table, expected: pa.Table) -> None:
    """Same alerts in the same order, same statuses, probabilities within TOL."""
    for col in ("alert_id", "object_id", "status", "top_class", "model"):
        if col in got.column_names:
            assert got.column(col).to_pylist() == expected.column(col).to_pylist(), col
    p_got = np.column_stack([got.column(c).to_numpy() for c in PROBS])
    p_exp = np.column_stack([expected.column(c).to_numpy() for c in PROBS])
    assert np.isfinite(p_got).all()
    np.testing.assert_allclose(p_got, p_exp, rtol=0, atol=TOL)
    top_got = got.column("top_prob").to_numpy(zero_copy_only=False)
    top_exp = expected.column("top_prob").to_numpy(zero_copy_only=False)
    np.testing.assert_allclose(top_got, top_exp, rtol=0, atol=TOL)  # NaN (rejects) == NaN


def _rubin_flat(df, time, band, flux, err):
    """Fink's way to give a UDF every source of an alert: history + current point."""
    def concat(field, kind):
        history = F.coalesce(F.col(f"prvDiaSources.{field}").cast(f"array<{kind}>"),
                             F.array().cast(f"array<{kind}>"))
        return F.concat(history, F.array(F.col(f"diaSource.{field}").cast(kind)))
    return [concat(time, "double"), concat(band, "string"), concat(flux, "double"),
            concat(err, "double")]


def _udf_rows(df) -> pa.Table:
    """The UDF struct column ``r`` of ``df`` as an Arrow table, in row order."""
    rows = [r.asDict() for r in df.select("r.*").collect()]
    return pa.Table.from_pylist(rows)


def test_rubin_udf_equals_classify_batch(spark, fixtures):
    """classify_rubin on real Rubin (lsst.v10_0) and ELAsTiCC alerts == classify_batch."""
    cases = [(fixtures / "rubin" / "rubin_raw_5.parquet",
              ("midpointMjdTai", "band", "psfFlux", "psfFluxErr"), []),
             (fixtures / "rubin" / "rubin_fink_3.parquet",
              ("midpointMjdTai", "band", "psfFlux", "psfFluxErr"), []),
             (fixtures / "elasticc" / "elasticc_snia_20.parquet",
              ("midPointTai", "filterName", "psFlux", "psFluxErr"),
              [F.col("diaObject.hostgal_zphot"), F.col("diaObject.hostgal_zphot_err"),
               F.col("diaObject.mwebv")])]
    for path, fields, meta in cases:
        df = spark.read.parquet(str(path)).coalesce(1)
        out = df.select(F.col("diaSource.diaObjectId").cast("string").alias("object_id"),
                        classify_rubin(*_rubin_flat(df, *fields), *meta,
                                       F.lit("lsst")).alias("r"))
        got = _udf_rows(out)
        expected = _reference("lsst", [path], include_forced=False)  # the UDF's columns
        assert got.num_rows == expected.num_rows
        assert [r.object_id for r in out.select("object_id").collect()] == \
            expected.column("object_id").to_pylist()
        _assert_same_rows(got, expected)
        assert set(got.column("status").to_pylist()) == {"ok"}


def test_ztf_udf_equals_classify_batch(spark, fixtures, ztf_model):
    """classify_ztf on Fink's c* arrays (history + current) == classify_batch of the file."""
    path = fixtures / "ztf" / "fink_4.02_10.parquet"
    df = spark.read.parquet(str(path)).coalesce(1)

    def c(field, kind):
        history = F.coalesce(F.col(f"prv_candidates.{field}").cast(f"array<{kind}>"),
                             F.array().cast(f"array<{kind}>"))
        return F.concat(history, F.array(F.col(f"candidate.{field}").cast(kind)))

    cols = [c("jd", "double"), c("fid", "int"), c("magpsf", "double"),
            c("sigmapsf", "double"), c("isdiffpos", "string"), c("diffmaglim", "double")]
    expected = _reference(ztf_model, [path])
    got = _udf_rows(df.select(classify_ztf(*cols, F.lit(str(ztf_model))).alias("r")))
    _assert_same_rows(got, expected)
    # Without cisdiffpos/cdiffmaglim: still one row per alert, never a NaN probability.
    short = _udf_rows(df.select(classify_ztf(*cols[:4], F.lit(str(ztf_model))).alias("r")))
    assert short.num_rows == expected.num_rows
    assert np.isfinite(np.column_stack([short.column(p).to_numpy() for p in PROBS])).all()


def test_bad_rows_get_a_reject_status(spark):
    """Empty, null and ragged rows in one Arrow batch: a status each, no crash, no NaN."""
    df = spark.createDataFrame(
        [([60000.0, 60001.0], ["g", "r"], [100.0, 120.0], [5.0, 6.0]),
         ([], [], [], []),
         (None, None, None, None),
         ([60000.0, 60001.0], ["g"], [100.0, 120.0], [5.0, 6.0]),
         ([60000.0], ["q"], [float("nan")], [5.0])],
        "t array<double>, b array<string>, f array<double>, e array<double>")
    got = _udf_rows(df.select(classify_rubin("t", "b", "f", "e", F.lit("lsst")).alias("r")))
    status = got.column("status").to_pylist()
    assert status[0] == "ok"
    assert status[1] == status[2] == "empty"
    assert status[3].startswith("bad_record: band length differs")
    assert status[4] == "no_valid_points"
    probs = np.column_stack([got.column(p).to_numpy() for p in PROBS])
    assert np.isfinite(probs).all() and (probs[1:] == 0).all()


def test_one_model_load_per_worker(spark, fixtures):
    """Many Arrow batches (4 rows each) over 4 partitions: every worker loaded lsst once."""
    path = fixtures / "elasticc" / "elasticc_snia_20.parquet"
    df = spark.read.parquet(str(path)).repartition(4)
    fields = ("midPointTai", "filterName", "psFlux", "psFluxErr")
    out = df.select(classify_rubin(*_rubin_flat(df, *fields), F.lit("lsst")).alias("r"),
                    worker_model_loads(F.lit("lsst")).alias("w")).select("r.status", "w.*")
    rows = out.collect()
    assert len(rows) == 20 and {r.status for r in rows} == {"ok"}
    assert {r.model_loads for r in rows} == {1}
    assert 1 <= len({r.pid for r in rows}) <= 2  # local[2]: at most two Python workers


def test_batch_job_equals_cli(spark, fixtures, tmp_path, shared_data_or_none):
    """``spark classify`` rows == ``astrot2 classify`` rows, same order, each alert once."""
    inputs = [fixtures / "rubin", fixtures / "elasticc"]
    if shared_data_or_none is not None:
        inputs.append(shared_data_or_none / "elasticc" / "ftransfer_elasticc_2023-02-08_902820"
                      / "classId=111" / "part-0-0.parquet")
    out = tmp_path / "out"
    summary = classify_files_spark(spark, inputs * 2, out, model="lsst", batch_size=7,
                                   partitions=3)
    got = pq.ParquetDataset(out).read()  # part files in partition order
    files = expand_inputs(inputs * 2)
    expected = _reference("lsst", files)
    assert summary["alerts_out"] == got.num_rows == expected.num_rows
    _assert_same_rows(got, expected)
    assert got.schema.names == expected.schema.names
    assert summary["model_loads"] == summary["workers"] >= 1


def test_batch_job_with_the_companion_equals_cli(spark, fixtures, tmp_path):
    """``--model lsst-plasticc+companion`` reaches the workers: the rows of ``classify_batch`` with
    the companion, a model column that says so, one load per worker."""
    inputs = [fixtures / "rubin"]
    out = tmp_path / "out"
    summary = classify_files_spark(spark, inputs, out, model="lsst-plasticc+companion",
                                   batch_size=7, partitions=2)
    got = pq.ParquetDataset(out).read()
    expected = _reference("lsst-plasticc+companion", expand_inputs(inputs))
    _assert_same_rows(got, expected)
    assert set(got.column("model").to_pylist()) == {Classifier.load("lsst-plasticc+companion").name}
    assert Classifier.load("lsst-plasticc+companion").name.endswith("+companion")
    assert summary["model_loads"] == summary["workers"] >= 1


@pytest.mark.slow
def test_spark_classify_command_equals_classify_command(fixtures, tmp_path):
    """``astrot2 spark classify`` (a separate process) writes the rows of ``astrot2 classify``."""
    from astrot2.cli import main

    inputs = [str(fixtures / "rubin"), str(fixtures / "elasticc")]
    cli_out = tmp_path / "cli.parquet"
    assert main(["classify", *inputs, "-o", str(cli_out), "--quiet"]) == 0
    spark_out = tmp_path / "spark"
    run = subprocess.run([sys.executable, "-m", "astrot2.cli", "spark", "classify", *inputs,
                          str(spark_out), "--master", "local[1]"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    got, expected = pq.ParquetDataset(spark_out).read(), pq.read_table(cli_out)
    assert got.schema.names == expected.schema.names
    _assert_same_rows(got, expected)


def test_batch_job_ztf_and_bad_file(spark, fixtures, tmp_path, ztf_model):
    """ZTF Avro and Parquet alerts through the job == classify_batch; an unreadable file
    gives one ``bad_file`` row instead of failing the job."""
    files = expand_inputs(fixtures / "ztf")
    bad = tmp_path / "broken.avro"
    bad.write_bytes(b"Obj\x01 truncated")
    out = tmp_path / "out"
    classify_files_spark(spark, [*files, bad], out, model=str(ztf_model), partitions=2)
    got = pq.ParquetDataset(out).read()
    expected = _reference(ztf_model, files)
    assert got.num_rows == expected.num_rows + 1
    _assert_same_rows(got.slice(0, expected.num_rows), expected)
    last = got.slice(expected.num_rows).to_pylist()[0]
    assert last["status"].startswith("bad_file:") and "broken.avro" in last["status"]
    assert all(last[p] == 0 for p in PROBS)


@pytest.fixture
def shared_data_or_none(request):
    """The shared real-data folder, or None (the test then uses the fixtures only)."""
    try:
        return request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        return None


def _waves(fixtures: Path, tmp_path: Path) -> list[list[Path]]:
    """Real alerts re-packed into 6 small Parquet files (unique alert ids), in 3 waves."""
    table = pq.read_table(fixtures / "elasticc" / "elasticc_snia_20.parquet")
    staging = tmp_path / "staging"
    staging.mkdir()
    files = []
    for i, start in enumerate(range(0, 18, 3)):
        path = staging / f"alerts-{i:02d}.parquet"
        pq.write_table(table.slice(start, 3), path)
        files.append(path)
    return [files[0:2], files[2:4], files[4:6]]


def _deliver(files: list[Path], folder: Path) -> None:
    """Move files into the watched folder atomically (write aside, then rename)."""
    for f in files:
        os.replace(f, folder / f.name)


def _wait_for(path: Path, timeout: float, proc: subprocess.Popen,
              poll: float = 0.2) -> None:
    """Wait until ``path`` exists (the stream made progress) or fail with its log."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"stream made no progress ({path}): "
                                 f"{proc.communicate()[1][-3000:]}")
        time.sleep(poll)


def _batches(log: Path) -> set[int]:
    """Batch ids recorded in a Spark log folder (``offsets``, ``commits``, ``_spark_metadata``)."""
    return {int(p.name) for p in log.iterdir() if p.name.isdigit()} if log.is_dir() else set()


@pytest.mark.slow
def test_stream_survives_sigkill_exactly_once(spark, fixtures, tmp_path):
    """Waves of files, SIGKILL of the stream mid-batch, restart: every alert exactly once.

    The kill lands mid-batch: the checkpoint's offset log plans batch 2 and its commit log
    holds batches 0 and 1 only (a warm batch takes most of a second here; the kill follows
    the plan within a poll of 10 ms).  The restart replays batch 2 and commits everything.
    """
    waves = _waves(fixtures, tmp_path)
    src, out, ckpt = tmp_path / "in", tmp_path / "out", tmp_path / "checkpoint"
    src.mkdir()
    cmd = [sys.executable, "-m", "astrot2.cli", "spark", "stream", str(src), str(out),
           "--checkpoint", str(ckpt), "--master", "local[1]", "--model", "lsst"]
    _deliver(waves[0], src)
    proc = subprocess.Popen([*cmd, "--trigger-seconds", "0.5", "--max-files-per-trigger", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_for(out / "_spark_metadata" / "0", 120, proc)  # batch 0 committed
        _deliver(waves[1], src)
        _wait_for(ckpt / "offsets" / "2", 120, proc, poll=0.01)  # batch 2 planned
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its JVM, no clean shutdown
        proc.wait()
    planned, committed = _batches(ckpt / "offsets"), _batches(ckpt / "commits")
    # Mid-batch: the last planned batch was not committed (Spark plans batch n + 1 only
    # after committing batch n, so exactly one batch is in flight).
    assert planned == {0, 1, 2} and committed == {0, 1}, (planned, committed)
    assert _batches(out / "_spark_metadata") <= planned
    _deliver(waves[2], src)
    rerun = subprocess.run([*cmd, "--available-now"], capture_output=True, text=True,
                           timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    replanned, recommitted = _batches(ckpt / "offsets"), _batches(ckpt / "commits")
    assert recommitted == replanned > planned  # batch 2 replayed, the rest done, all committed

    got = spark.read.parquet(str(out)).toPandas()  # honours the sink's commit log
    files = [src / f.name for wave in waves for f in wave]
    expected = _reference("lsst", files).to_pandas()
    assert sorted(got["alert_id"]) == sorted(expected["alert_id"])  # each exactly once
    assert got["alert_id"].is_unique and len(got) == 18
    got = got.set_index("alert_id").loc[expected["alert_id"]]
    assert (got["status"].to_numpy() == expected["status"].to_numpy()).all()
    np.testing.assert_allclose(got[PROBS].to_numpy(), expected[PROBS].to_numpy(), rtol=0,
                               atol=TOL)


def test_wrong_survey_file_gives_reject_rows_in_batch_and_stream(spark, fixtures, tmp_path):
    """A ZTF file among Rubin alerts for the lsst model: a ``wrong_survey`` row per ZTF
    alert, the rows ``astrot2 classify --on-error skip`` writes (one rule), in the batch
    job and in a stream, which goes on to the next files (before, it failed every time)."""
    from astrot2.classify import classify_files
    from astrot2.spark import start_stream

    src = tmp_path / "in"
    src.mkdir()
    (src / "a_rubin.parquet").write_bytes((fixtures / "rubin" / "rubin_raw_5.parquet")
                                          .read_bytes())
    (src / "b_ztf.parquet").write_bytes((fixtures / "ztf" / "fink_4.02_10.parquet")
                                        .read_bytes())
    pq.write_table(pq.read_table(fixtures / "elasticc" / "elasticc_snia_20.parquet"),
                   src / "c_elasticc.parquet")
    cli_out = tmp_path / "cli.parquet"
    classify_files([src], cli_out, Classifier.load("lsst", threads=1), on_error="skip",
                   progress=False)
    expected = pq.read_table(cli_out)
    ztf = read_file(src / "b_ztf.parquet")
    wrong = [r for r in expected.to_pylist() if r["status"] == "wrong_survey"]
    assert [r["alert_id"] for r in wrong] == list(ztf.alert_id.astype(str)) and len(wrong) == 10
    assert all(r[p] == 0 for r in wrong for p in PROBS)

    out = tmp_path / "batch"
    classify_files_spark(spark, [src], out, model="lsst", partitions=2)
    _assert_same_rows(pq.ParquetDataset(out).read(), expected)

    query = start_stream(spark, src, tmp_path / "stream", tmp_path / "ckpt", model="lsst",
                         available_now=True, max_files_per_trigger=1)
    query.awaitTermination(300)
    assert query.exception() is None
    got = pq.ParquetDataset(tmp_path / "stream").read()
    order = {a: i for i, a in enumerate(expected.column("alert_id").to_pylist())}
    got = got.take(np.argsort([order[a] for a in got.column("alert_id").to_pylist()]))
    _assert_same_rows(got, expected)  # every file, the one after the ZTF file included
