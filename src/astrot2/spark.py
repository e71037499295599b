"""Spark: pandas UDFs with Fink's calling conventions, and batch / streaming jobs.

Everything here is a thin wrapper around :func:`astrot2.classify.classify_batch`, the
function ``astrot2 classify`` uses, so a Spark result equals the CLI's for the same
alerts.  Light curves are built by the survey readers (:mod:`astrot2.io.ztf`,
:mod:`astrot2.io.rubin`), so the photometry conversions exist once.

UDFs (one struct column out: ``p_<slug>`` x 14, ``top_class``, ``top_prob``, ``status``,
``model``)::

    classify_ztf(cjd, cfid, cmagpsf, csigmapsf[, cisdiffpos[, cdiffmaglim]][, model])
    classify_rubin(midpointMjdTai, band, psfFlux, psfFluxErr
                   [, hostgal_zphot, hostgal_zphot_err, mwebv][, model])

The array columns come first, in that order; ``model`` (a shipped model's name or a model
folder, usually ``F.lit("lsst")``) is recognised as the trailing string column.  The model
is loaded once per Python worker (:func:`load_model`, counted by :func:`model_loads`) and
reused for every Arrow batch that worker sees.

Jobs: :func:`classify_files_spark` (alert files in, Parquet out; ``astrot2 spark
classify``) and :func:`start_stream` (a directory where alert files arrive, a Parquet sink
with a checkpoint, exactly once; ``astrot2 spark stream``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.accumulators import AccumulatorParam
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.sql.functions import pandas_udf

from astrot2.classes import CLASSES
from astrot2.classify import INCLUDE_FORCED, classify_batch, read_or_reject
from astrot2.lightcurves import LightCurveBatch
from astrot2.modelref import DEFAULT_MODELS, ModelRef, default_model
from astrot2.runtime import Classifier

__all__ = [
    "OUTPUT_SCHEMA",
    "RESULT_SCHEMA",
    "classify_files_spark",
    "classify_rubin",
    "classify_rubin_columns",
    "classify_ztf",
    "classify_ztf_columns",
    "load_model",
    "model_loads",
    "spark_session",
    "start_stream",
    "worker_model_loads",
]

#: Fields of the UDFs' struct column.
RESULT_SCHEMA = T.StructType(
    [T.StructField(f"p_{c.slug}", T.FloatType()) for c in CLASSES]
    + [T.StructField("top_class", T.StringType()), T.StructField("top_prob", T.FloatType()),
       T.StructField("status", T.StringType()), T.StructField("model", T.StringType())]
)
#: Rows written by the batch and stream jobs: the columns of ``astrot2 classify``.
OUTPUT_SCHEMA = T.StructType(
    [T.StructField(name, T.StringType()) for name in ("alert_id", "object_id", "status",
                                                      "top_class")]
    + [T.StructField("top_prob", T.FloatType())]
    + [T.StructField(f"p_{c.slug}", T.FloatType()) for c in CLASSES]
    + [T.StructField("model", T.StringType())]
)
_RESULT_FIELDS = [f.name for f in RESULT_SCHEMA.fields]
#: Spark's ``binaryFile`` source (a streaming source must be given its schema).
_BINARY_FILE_SCHEMA = "path string, modificationTime timestamp, length long, content binary"

# ---------------------------------------------------------------------------- model cache
_MODELS: dict[str, Classifier] = {}
_LOADS: Counter[str] = Counter()  # resolved model folder -> loads in this process


def load_model(model: str | Path | ModelRef) -> Classifier:
    """The classifier ``model`` (name or folder), loaded once per Python process.

    The cache is keyed by :attr:`ModelRef.key` (the resolved model folder), so ``"lsst"``
    and the path of the shipped lsst model share one entry.  The GP and ONNX Runtime get
    ``$ASTROT2_ORT_THREADS`` threads (default 1: Spark runs one task per core).
    """
    ref = ModelRef.parse(model)
    key = ref.key
    clf = _MODELS.get(key)
    if clf is None:
        threads = int(os.environ.get("ASTROT2_ORT_THREADS", "1"))
        clf = _MODELS[key] = Classifier.load(ref, threads=threads)
        _LOADS[key] += 1
    return clf


def model_loads(model: str | Path | ModelRef | None = None) -> int:
    """How many times this Python process loaded ``model`` (default: any model).

    One per worker is expected, however many Arrow batches or tasks it ran.
    """
    return _LOADS[ModelRef.parse(model).key] if model is not None else sum(_LOADS.values())


# ---------------------------------------------------------------------------- UDF cores
def _to_list_array(values: pd.Series, item: pa.DataType) -> pa.Array:
    """A pandas Series of per-alert arrays (or None) as an Arrow list array."""
    return pa.array(
        [None if v is None else np.asarray(v) for v in values], pa.list_(item),
        from_pandas=True,
    )


def _results(clf: Classifier, batch: LightCurveBatch) -> pd.DataFrame:
    """``classify_batch`` rows as the UDFs' struct columns."""
    table = classify_batch(clf, batch)
    return table.select(_RESULT_FIELDS).to_pandas()


def classify_ztf_columns(
    cjd: pd.Series,
    cfid: pd.Series,
    cmagpsf: pd.Series,
    csigmapsf: pd.Series,
    cisdiffpos: pd.Series | None = None,
    cdiffmaglim: pd.Series | None = None,
    *,
    model: str | Path = "ztf",
) -> pd.DataFrame:
    """Classify ZTF alerts given as Fink's flat ``c*`` array columns (no Spark needed).

    Parameters
    ----------
    cjd, cfid, cmagpsf, csigmapsf : pandas.Series of array-like, shape (n_alerts,)
        History followed by the current point, as in Fink; ``cmagpsf`` is null/NaN for
        upper limits.
    cisdiffpos : pandas.Series of array-like of str, optional
        ``'t'``/``'f'`` sign of the difference (positive when omitted).
    cdiffmaglim : pandas.Series of array-like, optional
        5-sigma limiting magnitudes (upper limits are dropped without it).
    model : str or Path
        Shipped model name or model folder.

    Returns
    -------
    pandas.DataFrame of shape (n_alerts, 18)
        The fields of :data:`RESULT_SCHEMA`, one row per alert, in order.
    """
    from astrot2.io.ztf import ztf_from_table

    columns = {"cjd": _to_list_array(cjd, pa.float64()),
               "cfid": _to_list_array(cfid, pa.float64()),
               "cmagpsf": _to_list_array(cmagpsf, pa.float64()),
               "csigmapsf": _to_list_array(csigmapsf, pa.float64())}
    if cisdiffpos is not None:
        columns["cisdiffpos"] = _to_list_array(cisdiffpos, pa.string())
    if cdiffmaglim is not None:
        columns["cdiffmaglim"] = _to_list_array(cdiffmaglim, pa.float64())
    batch = ztf_from_table(pa.table(columns), source="<spark batch>")
    return _results(load_model(model), batch)


def classify_rubin_columns(
    midpoint_mjd_tai: pd.Series,
    band: pd.Series,
    psf_flux: pd.Series,
    psf_flux_err: pd.Series,
    hostgal_zphot: pd.Series | None = None,
    hostgal_zphot_err: pd.Series | None = None,
    mwebv: pd.Series | None = None,
    *,
    model: str | Path = "lsst",
) -> pd.DataFrame:
    """Classify Rubin alerts given as flat source arrays (no Spark needed).

    Parameters
    ----------
    midpoint_mjd_tai, band, psf_flux, psf_flux_err : pandas.Series of array-like
        Every source of each alert (history and current point): MJD, band letter
        (``u``..``y``), difference-image PSF flux and error in nJy.
    hostgal_zphot, hostgal_zphot_err, mwebv : pandas.Series of float, optional
        Host photo-z, its error and Milky-Way E(B-V) (NaN or <= -9 when unknown).
    model : str or Path

    Returns
    -------
    pandas.DataFrame of shape (n_alerts, 18)
    """
    from astrot2.io.rubin import rubin_from_table

    columns = {"midpointMjdTai": _to_list_array(midpoint_mjd_tai, pa.float64()),
               "band": _to_list_array(band, pa.string()),
               "psfFlux": _to_list_array(psf_flux, pa.float64()),
               "psfFluxErr": _to_list_array(psf_flux_err, pa.float64())}
    for name, values in (("hostgal_zphot", hostgal_zphot),
                         ("hostgal_zphot_err", hostgal_zphot_err), ("mwebv", mwebv)):
        if values is not None:
            columns[name] = pa.array(pd.to_numeric(values), pa.float64(), from_pandas=True)
    batch = rubin_from_table(pa.table(columns), source="<spark batch>")
    return _results(load_model(model), batch)


def _split_model(cols: Sequence[pd.Series], default: str) -> tuple[list[pd.Series], str]:
    """Separate a trailing model-name column (scalar strings) from the data columns."""
    cols = list(cols)
    if cols and len(cols[-1]) and isinstance(cols[-1].iloc[0], str):
        names = cols.pop().unique()
        if len(names) != 1:
            raise ValueError(f"one model per batch, got {sorted(names)}; use F.lit(model)")
        return cols, str(names[0])
    return cols, default


def _check_arity(cols: Sequence[pd.Series], allowed: tuple[int, ...], usage: str) -> None:
    """Refuse a wrong number of data columns with the calling convention."""
    if len(cols) not in allowed:
        raise TypeError(f"got {len(cols)} data columns; call {usage}")


@pandas_udf(RESULT_SCHEMA)
def classify_ztf(*cols: pd.Series) -> pd.DataFrame:
    """Spark UDF: ``classify_ztf(cjd, cfid, cmagpsf, csigmapsf[, cisdiffpos[, cdiffmaglim]]
    [, model])``, see :func:`classify_ztf_columns`."""
    data, model = _split_model(cols, DEFAULT_MODELS["ztf"])
    _check_arity(data, (4, 5, 6), "classify_ztf(cjd, cfid, cmagpsf, csigmapsf"
                 "[, cisdiffpos[, cdiffmaglim]][, model])")
    return classify_ztf_columns(*data, model=model)


@pandas_udf(RESULT_SCHEMA)
def classify_rubin(*cols: pd.Series) -> pd.DataFrame:
    """Spark UDF: ``classify_rubin(midpointMjdTai, band, psfFlux, psfFluxErr[, hostgal_zphot,
    hostgal_zphot_err, mwebv][, model])``, see :func:`classify_rubin_columns`."""
    data, model = _split_model(cols, DEFAULT_MODELS["lsst"])
    _check_arity(data, (4, 5, 6, 7), "classify_rubin(midpointMjdTai, band, psfFlux, "
                 "psfFluxErr[, hostgal_zphot, hostgal_zphot_err, mwebv][, model])")
    return classify_rubin_columns(*data, model=model)


@pandas_udf(T.StructType([T.StructField("pid", T.LongType()),
                          T.StructField("model_loads", T.LongType())]))
def worker_model_loads(model: pd.Series) -> pd.DataFrame:
    """Spark UDF: ``(pid, model_loads)``: the Python worker evaluating each row, and how
    many times it loaded ``model`` (a column of model names, e.g. ``F.lit("lsst")``).

    Put it after a classification UDF in the same ``select`` to check that every worker
    loaded the model once, however many Arrow batches it classified.
    """
    n = len(model)
    loads = model_loads(model.iloc[0]) if n else 0
    return pd.DataFrame({"pid": np.full(n, os.getpid()), "model_loads": np.full(n, loads)})


# ---------------------------------------------------------------------------- file jobs
def spark_session(master: str | None = None, *, app_name: str = "astrot2",
                  arrow_batch_size: int | None = None,
                  conf: dict[str, str] | None = None) -> SparkSession:
    """Get or create a Spark session set up for astrot2.

    Parameters
    ----------
    master : str, optional
        ``local[2]``, ``spark://...``, ``yarn``...; default: what ``spark-submit`` gave,
        else ``local[*]``.
    arrow_batch_size : int, optional
        ``spark.sql.execution.arrow.maxRecordsPerBatch``: rows per Arrow batch sent to a
        Python worker.
    conf : dict, optional
        Other Spark settings.
    """
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    # spark-submit sets PYSPARK_GATEWAY_PORT; without it (and without --master) Spark
    # runs locally.  Local workers must run this interpreter (with astrot2), not whatever
    # python3 comes first on PATH.
    local = master.startswith("local") if master else "PYSPARK_GATEWAY_PORT" not in os.environ
    if local:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {"spark.ui.showConsoleProgress": "false",
                "spark.sql.execution.arrow.pyspark.enabled": "true", **(conf or {})}
    if arrow_batch_size is not None:
        settings["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(arrow_batch_size)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _classify_path(path: str, model: ModelRef, fmt: str | None, batch_size: int,
                   include_forced: bool = INCLUDE_FORCED) -> Iterator[pa.RecordBatch]:
    """Output rows of one alert file; a file that cannot be classified gets the reject rows
    of ``astrot2 classify --on-error skip`` (:func:`astrot2.classify.read_or_reject`: one
    ``bad_file`` row if unreadable, a ``wrong_survey`` row per alert if of another survey),
    so it neither fails a batch job nor blocks a stream."""
    clf = load_model(model)
    batch, rejects, _ = read_or_reject(path, clf, fmt, include_forced=include_forced)
    tables = [rejects] if rejects is not None else (
        classify_batch(clf, chunk) for chunk in batch.chunks(batch_size))
    for table in tables:
        yield from table.cast(_arrow_output_schema()).to_batches()


def _arrow_output_schema() -> pa.Schema:
    """:data:`OUTPUT_SCHEMA` as an Arrow schema (the column order of ``classify_batch``)."""
    return pa.schema([pa.field(f.name, pa.float32() if isinstance(f.dataType, T.FloatType)
                               else pa.string()) for f in OUTPUT_SCHEMA.fields])


class _LoadsPerWorker(AccumulatorParam):
    """Accumulates ``{worker pid: model loads}`` from the tasks of a job."""

    def zero(self, value: dict) -> dict:
        return {}

    def addInPlace(self, a: dict, b: dict) -> dict:  # Spark's method name
        return {k: max(a.get(k, 0), b.get(k, 0)) for k in a.keys() | b.keys()}


def classify_files_spark(spark: SparkSession, inputs: Sequence[str | Path],
                         output: str | Path, *, model: str | Path | ModelRef | None = None,
                         format: str | None = None, batch_size: int = 8192,
                         partitions: int | None = None,
                         include_forced: bool = INCLUDE_FORCED) -> dict:
    """Classify alert files with Spark into a Parquet folder (``astrot2 spark classify``).

    The driver lists the files (as ``astrot2 classify`` does), Spark distributes the list
    in contiguous slices, and each task reads its files with the astrot2 readers and
    classifies them with :func:`classify_batch`.  Every alert gives exactly one row and
    part files follow the input order.  Files must be readable by every executor (a
    local or shared file system); for HDFS/S3 use :func:`start_stream` with
    ``available_now=True``.  Rubin / ELAsTiCC forced photometry is read as
    non-detections unless ``include_forced`` is off, as ``astrot2 classify`` does.

    Returns
    -------
    dict
        ``alerts_out``, ``files``, ``partitions``, ``output``, ``model``, and
        ``model_loads`` / ``workers`` (one load per worker is expected).
    """
    from astrot2.io import expand_inputs, require_files

    files = require_files(expand_inputs(inputs), inputs)
    ref = default_model(files, format) if model is None else ModelRef.parse(model)
    n_parts = partitions or max(1, min(len(files), spark.sparkContext.defaultParallelism * 4))

    loads = spark.sparkContext.accumulator({}, _LoadsPerWorker())

    def classify_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for rb in batches:
            for path in rb.column("path").to_pylist():
                yield from _classify_path(path, ref, format, batch_size,
                                          include_forced)
        loads.add({os.getpid(): model_loads(ref)})

    rows = [(i, str(p)) for i, p in enumerate(files)]
    paths = spark.createDataFrame(
        spark.sparkContext.parallelize(rows, n_parts), "index long, path string")
    result = paths.mapInArrow(classify_partition, OUTPUT_SCHEMA)
    result.write.mode("overwrite").parquet(str(output))
    n_out = spark.read.parquet(str(output)).count()
    return {"files": len(files), "partitions": n_parts, "alerts_out": n_out,
            "output": str(output), "model": str(ref),
            "workers": len(loads.value), "model_loads": sum(loads.value.values())}


def _classify_contents(model: ModelRef, fmt: str | None, batch_size: int,
                       include_forced: bool = INCLUDE_FORCED):
    """A ``mapInArrow`` function classifying binaryFile rows (``path``, ``content``)."""
    def classify_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for rb in batches:
            for path, content in zip(rb.column("path").to_pylist(),
                                     rb.column("content").to_pylist(), strict=True):
                name = Path(path.split("?")[0]).name
                with tempfile.TemporaryDirectory(prefix="astrot2-") as tmp:
                    local = Path(tmp) / name
                    local.write_bytes(content)
                    yield from _classify_path(str(local), model, fmt, batch_size,
                                              include_forced)
    return classify_partition


def alert_file_stream(spark: SparkSession, input_dir: str | Path, *,
                      max_files_per_trigger: int | None = None) -> DataFrame:
    """A streaming DataFrame of the alert files arriving in ``input_dir`` (binaryFile)."""
    reader = (spark.readStream.format("binaryFile").schema(_BINARY_FILE_SCHEMA)
              .option("pathGlobFilter", "*.{avro,gz,parquet,csv}"))
    if max_files_per_trigger is not None:
        reader = reader.option("maxFilesPerTrigger", str(max_files_per_trigger))
    return reader.load(str(input_dir))


def start_stream(spark: SparkSession, input_dir: str | Path, output_dir: str | Path,
                 checkpoint: str | Path, *, model: str | Path | ModelRef, format: str | None = None,
                 trigger_seconds: float = 10.0, available_now: bool = False,
                 max_files_per_trigger: int | None = None, batch_size: int = 8192,
                 include_forced: bool = INCLUDE_FORCED):
    """Start ``astrot2 spark stream``: alert files in ``input_dir`` to a Parquet sink.

    Spark's file source records which files each micro-batch took and its file sink
    commits each batch in ``output_dir/_spark_metadata``, both under ``checkpoint``'s
    log, so a crash and restart neither loses nor duplicates an alert.  Read the sink
    with Spark (``spark.read.parquet(output_dir)``), which honours that log: files of a
    batch killed before its commit are ignored.

    Returns
    -------
    pyspark.sql.streaming.StreamingQuery
    """
    ref = ModelRef.parse(model)
    files = alert_file_stream(spark, input_dir, max_files_per_trigger=max_files_per_trigger)
    rows = files.select("path", "content").mapInArrow(
        _classify_contents(ref, format, batch_size, include_forced), OUTPUT_SCHEMA)
    writer = (rows.writeStream.format("parquet").option("path", str(output_dir))
              .option("checkpointLocation", str(checkpoint)).outputMode("append"))
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{trigger_seconds} seconds")
    return writer.start()
