"""Alert ingestion: every supported input format to a :class:`LightCurveBatch`.

=============  ========================================================  ==========
format         what                                                       survey
=============  ========================================================  ==========
``ztf``        ZTF ``ztf.alert`` Avro, Fink Parquet / data-transfer Avro  ztf
``rubin``      Rubin ``lsst.v10_0`` alerts, Parquet or Avro               lsst
``elasticc``   ELAsTiCC alerts (``midPointTai``, ``filterName``...)       lsst
``plasticc``   PLAsTiCC light-curve CSV (+ metadata CSV)                  lsst
=============  ========================================================  ==========

The format is detected from the file's bytes and field names; ``format=`` overrides it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from astrot2.errors import AlertFormatError, ConfigError
from astrot2.io.containers import avro_schema, parquet_schema, sniff_container
from astrot2.lightcurves import LightCurveBatch

__all__ = ["FORMATS", "detect_format", "expand_inputs", "iter_alert_files", "read_alerts",
           "read_file", "require_files"]

FORMATS = ("ztf", "rubin", "elasticc", "plasticc")
#: File name endings taken from a directory; anything else there is ignored.
ALERT_SUFFIXES = (".avro", ".avro.gz", ".parquet", ".csv", ".csv.gz")


def detect_format(path: str | Path) -> str:
    """Guess the alert format of a file from its container and field names.

    Raises
    ------
    AlertFormatError
        If the file is not one of :data:`FORMATS`.
    """
    path = Path(path)
    container = sniff_container(path)
    if container.startswith("csv"):
        from astrot2.io.plasticc import is_plasticc_csv

        if is_plasticc_csv(path):
            return "plasticc"
        raise AlertFormatError(
            "CSV without PLAsTiCC columns (object_id, mjd, passband, flux, flux_err)",
            path=str(path),
        )
    if container == "parquet":
        schema = parquet_schema(path)
        names, text = set(schema.names), str(schema)
    else:
        schema_dict = avro_schema(path)
        text = json.dumps(schema_dict)
        names = {f.get("name") for f in schema_dict.get("fields", [])}
    if "candidate" in names or "cjd" in names:
        return "ztf"
    if "diaSource" in names:
        return "elasticc" if "midPointTai" in text or "filterName" in text else "rubin"
    raise AlertFormatError(
        f"cannot tell the alert format from its fields ({sorted(n for n in names if n)[:8]}...); "
        f"pass format= one of {FORMATS}",
        path=str(path),
    )


def read_file(
    path: str | Path,
    format: str | None = None,
    *,
    metadata: str | Path | None = None,
    include_forced: bool = False,
) -> LightCurveBatch:
    """Read one file of alerts.

    Parameters
    ----------
    path : str or Path
    format : {"ztf", "rubin", "elasticc", "plasticc"}, optional
        Detected from the file when omitted.
    metadata : str or Path, optional
        PLAsTiCC metadata CSV (host photo-z, E(B-V), labels).
    include_forced : bool
        Rubin/ELAsTiCC: add forced photometry as non-detections.

    Returns
    -------
    LightCurveBatch
        One light curve per alert, in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise AlertFormatError("no such file", path=str(path))
    fmt = detect_format(path) if format is None else format
    if fmt not in FORMATS:
        raise ConfigError(f"unknown alert format {fmt!r}; choose one of {FORMATS}")
    try:
        return _read_as(path, fmt, metadata, include_forced)
    except AlertFormatError:
        raise
    except (pa.ArrowException, ValueError, TypeError, OverflowError, IndexError,
            KeyError) as exc:
        # Fields of unexpected types or values (a string where a number is due, a struct
        # where a string is...) make the Arrow/NumPy conversions fail: still a bad file.
        raise AlertFormatError(
            f"fields of unexpected types or values for the {fmt} reader "
            f"({type(exc).__name__}: {exc})", path=str(path)) from exc


def _read_as(path: Path, fmt: str, metadata: str | Path | None,
             include_forced: bool) -> LightCurveBatch:
    """Dispatch to the reader of ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "ztf":
        from astrot2.io.ztf import read_ztf

        return read_ztf(path)
    if fmt in ("rubin", "elasticc"):
        from astrot2.io.rubin import read_rubin

        return read_rubin(path, include_forced=include_forced)
    from astrot2.io.plasticc import read_plasticc

    return read_plasticc(path, metadata=metadata)


def expand_inputs(inputs: str | Path | Iterable[str | Path]) -> list[Path]:
    """Files named by ``inputs``: files as given, directories searched recursively.

    Directory entries are kept when their name ends in one of :data:`ALERT_SUFFIXES`, in
    sorted order, so the same folder always yields the same sequence.
    """
    if isinstance(inputs, str | Path):
        inputs = [inputs]
    files: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = (p for p in item.rglob("*") if p.is_file())
            files.extend(sorted(p for p in found if p.name.endswith(ALERT_SUFFIXES)))
        elif item.exists():
            files.append(item)
        else:
            raise AlertFormatError("no such file or directory", path=str(item))
    return files


def require_files(files: list[Path], inputs: str | Path | Iterable[str | Path]) -> list[Path]:
    """``files`` (found in ``inputs``, less any a job leaves out), or a clear error.

    Raises
    ------
    AlertFormatError
        If ``files`` is empty: nothing to read in ``inputs``.
    """
    if not files:
        items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
        raise AlertFormatError(f"no alert files in {', '.join(str(i) for i in items)} "
                               f"(alert files end in {', '.join(ALERT_SUFFIXES)})")
    return files


def iter_alert_files(
    inputs: str | Path | Iterable[str | Path],
    format: str | None = None,
    **kwargs: object,
) -> Iterator[tuple[Path, LightCurveBatch]]:
    """Yield ``(path, batch)`` for every alert file in ``inputs`` (see :func:`read_file`)."""
    for path in expand_inputs(inputs):
        yield path, read_file(path, format, **kwargs)


def read_alerts(
    inputs: str | Path | Iterable[str | Path],
    format: str | None = None,
    **kwargs: object,
) -> LightCurveBatch:
    """Read all alerts of ``inputs`` (files and/or directories) into one batch.

    All files must belong to one survey (ZTF, or LSST for Rubin/ELAsTiCC/PLAsTiCC).

    Raises
    ------
    AlertFormatError
        If no file is found, a file cannot be read, or surveys are mixed.
    """
    files = require_files(expand_inputs(inputs), inputs)
    batches = [read_file(path, format, **kwargs) for path in files]
    surveys = {b.survey.name for b in batches}
    if len(surveys) > 1:
        raise AlertFormatError(f"inputs mix surveys {sorted(surveys)}; read them separately")
    return LightCurveBatch.concat(batches)
