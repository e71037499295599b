"""Container formats: sniff a file and read it into a :class:`pyarrow.Table`.

Alerts arrive as Avro (one or many records, optionally gzipped) or Parquet.  Both are
turned into an Arrow table holding only the fields a survey reader asks for, so that each
survey has a single, columnar extraction path.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from astrot2.errors import AlertFormatError

__all__ = ["FieldSpec", "prune_record", "read_alert_table", "read_avro", "read_parquet",
           "sniff_container"]

#: A nested field selection: ``{"candid": None, "candidate": {"jd": None, ...},
#: "prv_candidates": [{"jd": None, ...}]}``.  ``None`` keeps a leaf; a dict selects fields of
#: a record; a one-element list selects fields of every record of an array.
FieldSpec = Mapping[str, Any]

_AVRO_MAGIC = b"Obj\x01"
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"


def sniff_container(path: Path) -> str:
    """Return ``"avro"``, ``"avro.gz"``, ``"parquet"``, ``"csv"`` or ``"csv.gz"`` from the bytes.

    Raises
    ------
    AlertFormatError
        If the file is empty or none of the above.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise AlertFormatError(f"cannot open: {exc.strerror}", path=str(path)) from exc
    if not head:
        raise AlertFormatError("file is empty", path=str(path))
    if head == _AVRO_MAGIC:
        return "avro"
    if head == _PARQUET_MAGIC:
        return "parquet"
    if head[:2] == _GZIP_MAGIC:
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(4)
        except (OSError, EOFError, zlib.error) as exc:
            raise AlertFormatError(f"corrupt gzip stream ({exc})", path=str(path)) from exc
        return "avro.gz" if inner == _AVRO_MAGIC else "csv.gz"
    if all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return "csv"
    raise AlertFormatError(
        "not an Avro, Parquet or CSV file (unrecognised leading bytes "
        f"{head!r}); pass --format to force a reader",
        path=str(path),
    )


def prune_record(value: Any, spec: Any) -> Any:
    """Keep only the fields of ``value`` named in ``spec`` (see :data:`FieldSpec`).

    Missing fields become ``None``, so every pruned record has the same shape.
    """
    if spec is None or value is None:
        return value
    if isinstance(spec, list):
        inner = spec[0]
        return [prune_record(v, inner) for v in value]
    return {key: prune_record(value.get(key), sub) for key, sub in spec.items()}


def read_avro(path: Path, spec: FieldSpec) -> tuple[pa.Table, dict[str, Any]]:
    """Read every record of an Avro container (plain or gzipped) into an Arrow table.

    Parameters
    ----------
    path : Path
    spec : FieldSpec
        The fields to keep; everything else (cutouts...) is dropped while reading.

    Returns
    -------
    table : pyarrow.Table
        One row per Avro record, columns as in ``spec``.
    writer_schema : dict
        The file's own Avro schema.

    Raises
    ------
    AlertFormatError
        On a truncated or corrupt file.
    """
    import fastavro

    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
        reader = fastavro.reader(io.BytesIO(raw))
        schema = reader.writer_schema
        rows = [prune_record(rec, spec) for rec in reader]
    except (EOFError, OSError, ValueError, TypeError, KeyError, IndexError, StopIteration) as exc:
        raise AlertFormatError(
            f"truncated or corrupt Avro data ({type(exc).__name__}: {exc})", path=str(path)
        ) from exc
    except Exception as exc:  # fastavro raises its own types on corrupt blocks
        raise AlertFormatError(
            f"unreadable Avro data ({type(exc).__name__}: {exc})", path=str(path)
        ) from exc
    try:
        table = pa.Table.from_pylist(rows) if rows else pa.table({k: [] for k in spec})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise AlertFormatError(f"inconsistent Avro records ({exc})", path=str(path)) from exc
    for key in spec:
        if key not in table.column_names:
            table = table.append_column(key, pa.nulls(len(table)))
    return table, schema


def read_parquet(path: Path, columns: Iterable[str] | None = None) -> pa.Table:
    """Read the named columns of a Parquet file (those that exist).

    A name is a top-level column or a dotted path to nested leaves (``candidate.jd``).

    Raises
    ------
    AlertFormatError
        On a truncated or corrupt file.
    """
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        present = set(pf.schema_arrow.names)
        wanted = None if columns is None else [c for c in columns
                                               if c.split(".", 1)[0] in present]
        return pf.read(columns=wanted)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise AlertFormatError(
            f"truncated or corrupt Parquet data ({type(exc).__name__}: {exc})", path=str(path)
        ) from exc


def parquet_schema(path: Path) -> pa.Schema:
    """Arrow schema of a Parquet file, without reading its data."""
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise AlertFormatError(
            f"truncated or corrupt Parquet footer ({type(exc).__name__}: {exc})", path=str(path)
        ) from exc


def avro_schema(path: Path) -> dict[str, Any]:
    """The writer schema of an Avro container (plain or gzipped), read from its header."""
    import fastavro

    try:
        opener = gzip.open if sniff_container(path) == "avro.gz" else open
        with opener(path, "rb") as fh:
            return fastavro.reader(fh).writer_schema
    except AlertFormatError:
        raise
    except Exception as exc:
        raise AlertFormatError(
            f"unreadable Avro header ({type(exc).__name__}: {exc})", path=str(path)
        ) from exc


def read_alert_table(path: Path, spec: FieldSpec) -> pa.Table:
    """Alerts of an Avro (plain or gzipped) or Parquet file as a table of ``spec``'s fields.

    Parquet keeps its own nested types, and only the leaf columns that ``spec`` names are
    read (a ZTF ``candidate`` has ~100 fields, the light curve needs 6); Avro records are
    pruned to ``spec`` while decoding.
    """
    if sniff_container(path) == "parquet":
        return read_parquet(path, columns=_parquet_leaves(path, spec))
    return read_avro(path, spec)[0]


def _parquet_leaves(path: Path, spec: FieldSpec) -> list[str]:
    """The Parquet leaf column paths of a file that ``spec`` asks for.

    A leaf path such as ``prv_candidates.list.element.jd`` is walked along ``spec``:
    struct fields must match by name, while the wrapper levels of a list (``list``,
    ``element``, ``item``, ``array``..., which differ between writers) are skipped.
    """
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(path).schema
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise AlertFormatError(
            f"truncated or corrupt Parquet footer ({type(exc).__name__}: {exc})", path=str(path)
        ) from exc
    leaves = []
    for i in range(len(schema)):
        parts = schema.column(i).path.split(".")
        node: Any = spec
        for k, part in enumerate(parts):
            if isinstance(node, list):  # inside a list: skip its wrapper levels
                node = node[0]
                rest = [p for p in parts[k:] if p in node]
                if not rest:
                    break
                part = rest[0]
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
            if node is None:
                leaves.append(schema.column(i).path)
                break
    return leaves
