"""The main job: alert files in, one row of class probabilities per alert out.

:func:`classify_batch` is the single batch function that the CLI (``astrot2 classify``)
and, later, the Spark UDFs call.  :func:`classify_files` streams files in chunks (memory
bounded by ``batch_size``) and streams Parquet, CSV or JSON rows into a temporary file
that becomes the output only when every alert has its row.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from astrot2.classes import CLASSES
from astrot2.errors import Astrot2Error, ConfigError, ModelError
from astrot2.gp import CLASSIFIED_STATUSES, classified
from astrot2.lightcurves import LightCurveBatch
from astrot2.runtime import Classifier

__all__ = ["BAD_FILE", "ON_ERROR", "WRONG_SURVEY", "FileRead", "classify_batch",
           "classify_files", "read_or_reject", "reject_rows"]

#: What :func:`classify_files` does with an input file it cannot classify.
ON_ERROR = ("fail", "skip")
#: Status of the one row an unreadable file gives (``bad_file: <the error>``).
BAD_FILE = "bad_file"
#: Status of each alert of a file of another survey than the model's.
WRONG_SURVEY = "wrong_survey"


def classify_batch(clf: Classifier, batch: LightCurveBatch,
                   min_points: int = 1, *, uncertainty: bool = False,
                   tta: int = 0) -> pa.Table:
    """Classify a batch: a table with exactly one row per light curve, in order.

    Columns: ``alert_id, object_id, status``, ``top_class, top_prob``, ``p_<slug>`` for
    the 14 classes, and ``model``.  ``status`` is ``ok``, a flagged GP fit that still has
    probabilities (``gp_max_iter``: the fit stopped before converging; ``gp_fallback``: it
    failed and kept its initial guess or the noise-only limit; see docs/gp.md), or a
    reject reason (all probabilities 0, ``top_class`` null, ``top_prob`` NaN).  With
    ``uncertainty``, then ``entropy``: the predictive entropy (nats) of the (calibrated)
    probabilities, NaN for rejected alerts (see :mod:`astrot2.calibration`); with ``tta``
    copies (test-time augmentation, ``tta`` times the cost), then ``tta_top_class,
    tta_top_prob`` (of the mean over copies), ``tta_top_std`` (its spread) and
    ``tta_entropy``.
    """
    few = (batch.n_points < min_points) & batch.ok
    if few.any():
        batch = batch.with_reject(few, f"fewer_than_{min_points}_points")
    pred = clf.predict(batch)
    prob = pred.probabilities
    ok = classified(pred.status)
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
    if uncertainty:
        from astrot2.uncertainty import predictive_entropy

        columns["entropy"] = pa.array(np.where(ok, predictive_entropy(prob), np.nan),
                                      pa.float32(), from_pandas=True)
    if tta:
        columns.update(_tta_columns(clf, batch, tta, ok))
    return pa.table(columns)


def _tta_columns(clf: Classifier, batch: LightCurveBatch, n_copies: int,
                 ok: np.ndarray) -> dict[str, pa.Array]:
    """The test-time augmentation columns of :func:`classify_batch`."""
    from astrot2.uncertainty import predictive_entropy, tta_probabilities

    mean, std = tta_probabilities(clf, batch, n_copies)
    ok = ok & (mean.sum(axis=1) > 0)
    top = mean.argmax(axis=1)
    rows = np.arange(len(mean))
    names = np.array([c.name for c in CLASSES], dtype=object)

    def floats(values: np.ndarray) -> pa.Array:
        return pa.array(np.where(ok, values, np.nan), pa.float32(), from_pandas=True)

    return {"tta_top_class": pa.array(np.where(ok, names[top], None).tolist(), pa.string()),
            "tta_top_prob": floats(mean[rows, top]), "tta_top_std": floats(std[rows, top]),
            "tta_entropy": floats(predictive_entropy(mean))}


class _TableSink:
    """Stream tables into one Parquet, CSV or JSON file (format from the file name).

    Tables are buffered up to ``flush_rows`` rows, then written (one Parquet row group per
    flush), so memory stays bounded whatever the number of alerts.  The bytes of CSV and
    JSON, and the rows of Parquet, are those of writing the concatenated tables at once.

    Parameters
    ----------
    path : Path
        Where to write (the temporary file of :func:`astrot2.utils.atomic_path`).
    kind : {"parquet", "csv", "json"}
    flush_rows : int
        Rows buffered before a write.
    """

    def __init__(self, path: Path, kind: str, *, flush_rows: int = 65536) -> None:
        self.path = path
        self.kind = kind
        self.flush_rows = flush_rows
        self.rows_written = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer = None  # ParquetWriter or CSVWriter, opened with the first table
        self._fh = None  # the JSON text file

    def write(self, table: pa.Table) -> None:
        """Buffer ``table``; write the buffer once it holds ``flush_rows`` rows."""
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.flush_rows:
            self._flush()

    def close(self, empty: pa.Table) -> None:
        """Write what is buffered (or ``empty``, the schema, when nothing was) and close."""
        if self._writer is None and self._fh is None and not self._pending:
            self._pending.append(empty)
        self._flush()
        if self._writer is not None:
            self._writer.close()
        if self._fh is not None:
            self._fh.write("]")
            self._fh.close()

    def abort(self) -> None:
        """Close the file without completing it (the caller discards it)."""
        for handle in (self._writer, self._fh):
            if handle is not None:
                handle.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        if self.kind == "json":
            self._write_json(table)
        else:
            if self._writer is None:
                self._writer = self._open(table.schema)
            self._writer.write_table(table)
        self.rows_written += table.num_rows

    def _open(self, schema: pa.Schema):
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetWriter(self.path, schema)
        from pyarrow import csv

        return csv.CSVWriter(self.path, schema)

    def _write_json(self, table: pa.Table) -> None:
        """One JSON array over all flushes: ``[row, row, ...]`` as ``json.dumps`` writes it."""
        import json

        first = self._fh is None
        if first:
            self._fh = open(self.path, "w", encoding="utf-8")  # closed by close() / abort()
            self._fh.write("[")
        for row in table.to_pylist():
            if not first:
                self._fh.write(", ")
            self._fh.write(json.dumps(row))
            first = False


def _output_kind(path: Path) -> str:
    """``"parquet"``, ``"csv"`` or ``"json"`` from the output file name."""
    name = path.name.lower()
    for kind in ("parquet", "csv", "json"):
        if name.endswith("." + kind):
            return kind
    raise ConfigError(f"output {path}: use a .parquet, .csv or .json file name")


def _empty_table(clf: Classifier, uncertainty: bool = False, tta: int = 0) -> pa.Table:
    """The output of no alerts: the columns and types, zero rows."""
    empty = LightCurveBatch.from_observations(clf.manifest.survey, [], [], [], [], [], [], [],
                                              [])
    return classify_batch(clf, empty, uncertainty=uncertainty, tta=tta)


#: Classification reads the forced photometry of Rubin / ELAsTiCC alerts
#: (``prvDiaForcedSources``) as non-detections by default: the models were trained on
#: light curves with them (PLAsTiCC), and without them they do much worse (docs/model.md).
INCLUDE_FORCED = True


def reject_rows(clf: Classifier, alert_ids: Iterable, object_ids: Iterable, status: str, *,
                uncertainty: bool = False, tta: int = 0) -> pa.Table:
    """Rows of alerts that are not classified, laid out as :func:`classify_batch`'s rejects:
    ``status``, every probability 0, ``top_class`` / ``top_prob`` (and the optional
    columns) null."""
    schema = _empty_table(clf, uncertainty, tta).schema
    given = {"alert_id": [str(a) for a in alert_ids], "object_id": [str(o) for o in object_ids]}
    n = len(given["alert_id"])
    given.update(status=[status] * n, model=[clf.name] * n)
    columns = [pa.array(given[f.name], f.type) if f.name in given
               else pa.array(np.zeros(n, np.float32), f.type) if f.name.startswith("p_")
               else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


class FileRead(NamedTuple):
    """One input file as :func:`read_or_reject` found it."""

    #: The alerts read (None: the file could not be read).
    batch: LightCurveBatch | None
    #: The rows the file gets instead of classified ones (None: classify ``batch``).
    rejects: pa.Table | None
    #: Why it is rejected (None: it is not).
    error: Astrot2Error | None


def read_or_reject(path: str | Path, clf: Classifier, format: str | None = None,
                   metadata: str | Path | None = None, include_forced: bool = INCLUDE_FORCED,
                   *, uncertainty: bool = False, tta: int = 0) -> FileRead:
    """Read one alert file for ``clf``, or the reject rows it gets instead.

    The one rule of ``astrot2 classify --on-error skip`` and of the Spark jobs: a file that
    cannot be read gives one row, alert and object ids empty, status ``bad_file: <the
    error, which names the file>``; a file of another survey than the model's gives one row
    per alert, status ``wrong_survey``.  Both have all probabilities 0 (:func:`reject_rows`).
    """
    from astrot2.io import read_file

    try:
        batch = read_file(path, format, metadata=metadata, include_forced=include_forced)
    except Astrot2Error as exc:
        return FileRead(None, reject_rows(clf, [""], [""], f"{BAD_FILE}: {exc}",
                                          uncertainty=uncertainty, tta=tta), exc)
    if batch.survey.name == clf.manifest.survey.name:
        return FileRead(batch, None, None)
    exc = ModelError(f"file {path}: {batch.survey.name} alerts, but model {clf.name} is "
                     f"for {clf.manifest.survey.name} alerts; pick the matching model")
    return FileRead(batch, reject_rows(clf, batch.alert_id, batch.object_id, WRONG_SURVEY,
                                       uncertainty=uncertainty, tta=tta), exc)


def classify_files(inputs: Iterable[str | Path], output: str | Path, clf: Classifier, *,
                   format: str | None = None, batch_size: int = 8192, min_points: int = 1,
                   metadata: str | Path | None = None, progress: bool = True,
                   on_error: str = "fail", errors_file: str | Path | None = None,
                   uncertainty: bool = False, tta: int = 0,
                   include_forced: bool = INCLUDE_FORCED) -> dict:
    """Classify every alert of ``inputs`` into ``output``; returns a summary dict.

    Rows are streamed into a temporary file beside ``output`` that is renamed onto it only
    once every alert has its row: an interrupted run leaves no ``output`` at all.  Memory is
    bounded by the largest input file and ``batch_size``, not by the number of alerts.

    Parameters
    ----------
    inputs : iterable of str or Path
        Alert files and/or directories.
    output : str or Path
        ``.parquet``, ``.csv`` or ``.json`` (a JSON array of row objects).
    clf : Classifier
    format, metadata
        See :func:`astrot2.io.read_file`.
    batch_size : int
        Light curves classified at once.
    min_points : int
        Light curves with fewer points get the status ``fewer_than_N_points``.
    progress : bool
        Show a progress bar on stderr.
    on_error : {"fail", "skip"}
        What to do with a file that cannot be read, or holds alerts of another survey than
        the model's (an :class:`astrot2.errors.Astrot2Error` naming it): ``fail`` stops
        with that error and writes nothing; ``skip`` writes its reject rows
        (:func:`read_or_reject`: one ``bad_file`` row, or a ``wrong_survey`` row per
        alert), lists it (path and error) in the summary and in ``errors_file``, and
        classifies the rest.
    errors_file : str or Path, optional
        With ``on_error="skip"``: where to write the JSON list of skipped files (default
        ``OUTPUT.errors.json``; written, atomically, even when it is empty).
    uncertainty : bool
        Add the ``entropy`` column (see :func:`classify_batch`).
    tta : int
        Test-time augmentation copies (0: off; see :func:`classify_batch`).
    include_forced : bool
        Rubin / ELAsTiCC alerts: read their forced photometry as non-detections (default,
        :data:`INCLUDE_FORCED`); off: detections only.

    Returns
    -------
    dict
        ``alerts_in, classified`` (with probabilities), ``flagged`` (the classified ones
        with a flagged GP fit: status -> count), ``rejected`` (reason -> count), ``files,
        skipped_files``
        (``[{"path", "error"}]``), timing, ``output, model`` (and ``errors_file`` with skip).

    Raises
    ------
    Astrot2Error
        With ``on_error="fail"``, the first unreadable file's error.
    """
    from tqdm import tqdm

    from astrot2.io import expand_inputs, require_files
    from astrot2.utils import atomic_path, check_writable

    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    output = Path(output)
    kind = _output_kind(output)
    check_writable(output, "output")
    errors_path = _errors_path(output, errors_file)
    if on_error == "skip":
        check_writable(errors_path, "errors file")
    inputs = [Path(i) for i in ([inputs] if isinstance(inputs, str | Path) else inputs)]
    files = require_files(_without_own_outputs(inputs, expand_inputs(inputs), output,
                                               errors_file), inputs)
    start = time.perf_counter()
    statuses: Counter[str] = Counter()
    skipped: list[dict[str, str]] = []
    n_in = n_bad = 0  # alerts read; unreadable files (one bad_file row each)
    bar = tqdm(total=len(files), unit="file", disable=not progress, file=sys.stderr)
    with atomic_path(output) as tmp:
        sink = _TableSink(tmp, kind, flush_rows=batch_size)
        try:
            for path in files:
                batch, rejects, error = read_or_reject(path, clf, format, metadata,
                                                       include_forced,
                                                       uncertainty=uncertainty, tta=tta)
                n_in += 0 if batch is None else len(batch)
                if error is not None:
                    if on_error == "fail":
                        raise error
                    skipped.append({"path": str(path), "error": str(error)})
                    n_bad += batch is None
                    statuses[BAD_FILE if batch is None else WRONG_SURVEY] += rejects.num_rows
                    sink.write(rejects)
                    bar.update(1)
                    continue
                for chunk in batch.chunks(batch_size):
                    table = classify_batch(clf, chunk, min_points, uncertainty=uncertainty,
                                           tta=tta)
                    statuses.update(table.column("status").to_pylist())
                    sink.write(table)
                bar.update(1)
            sink.close(_empty_table(clf, uncertainty, tta))
        except BaseException:
            sink.abort()
            raise
        finally:
            bar.close()
        if sink.rows_written != n_in + n_bad:  # checked before the rename
            raise RuntimeError(f"{sink.rows_written} rows written for {n_in} alerts read "
                               f"and {n_bad} unreadable files: every input alert must "
                               "yield exactly one output row")
    elapsed = time.perf_counter() - start
    summary = {
        "alerts_in": n_in,
        "classified": sum(statuses[s] for s in CLASSIFIED_STATUSES),
        "flagged": {s: statuses[s] for s in CLASSIFIED_STATUSES[1:] if statuses[s]},
        "rejected": {s: n for s, n in statuses.items() if s not in CLASSIFIED_STATUSES},
        "files": len(files),
        "skipped_files": skipped,
        "seconds": round(elapsed, 3),
        "alerts_per_s": round(n_in / elapsed, 1) if elapsed > 0 else None,
        "output": str(output),
        "model": clf.name,
    }
    if on_error == "skip":
        _write_errors(errors_path, skipped)
        summary["errors_file"] = str(errors_path)
    return summary


def _errors_path(output: Path, errors_file: str | Path | None) -> Path:
    """Where ``on_error="skip"`` lists the skipped files: ``errors_file``, else
    ``OUTPUT.errors.json``."""
    return Path(errors_file) if errors_file else output.with_name(output.name + ".errors.json")


def _without_own_outputs(inputs: list[Path], files: list[Path], output: Path,
                         errors_file: str | Path | None) -> list[Path]:
    """``files`` less this job's own outputs; refuse an output that is a named input.

    Never overwrite a user's input: ``-o`` naming an input file is an error.  A re-run whose
    earlier output (or errors file) sits inside an input folder does not read it back.

    Raises
    ------
    ConfigError
        If the output (or the errors file) is one of the input files given.
    """
    own = {output.resolve(), Path(f"{output}.errors.json").resolve(),
           _errors_path(output, errors_file).resolve()}
    for item in inputs:
        if item.is_file() and item.resolve() in own:
            raise ConfigError(f"-o/--errors-file {item} is also an input: choose another "
                              "output path (astrot2 never overwrites its inputs)")
    return [f for f in files if f.resolve() not in own]


def _write_errors(path: Path, skipped: list[dict[str, str]]) -> None:
    """The skipped files as a JSON list of ``{"path", "error"}``, written atomically."""
    import json

    from astrot2.utils import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(skipped, indent=2) + "\n")
