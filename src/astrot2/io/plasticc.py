"""PLAsTiCC light curves (CSV, plain or gzipped) and their metadata.

Columns ``object_id, mjd, passband (0..5 = u, g, r, i, z, y), flux, flux_err,
detected_bool``; fluxes are already FLUXCAL.  One object = one light curve, and its
``alert_id`` is its ``object_id``.  Rows may come in any order.

Only a whitelist of metadata columns is ever read (:data:`METADATA_WHITELIST`, passed to
pyarrow as ``include_columns``): the ``true_*`` columns (the unblinded simulation truth),
``tflux_*`` and ``libid_cadence`` of the training-set metadata are never converted, so they
cannot leak into features.

PLAsTiCC conventions kept or mapped here: a host photo-z of 0 marks a galactic object and
stays 0; a distance modulus of -9 ("unknown", galactic) becomes NaN.
"""

from __future__ import annotations

import csv as _csv
import gzip
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from astrot2.errors import AlertFormatError
from astrot2.lightcurves import LightCurveBatch
from astrot2.surveys import LSST

__all__ = [
    "LIGHTCURVE_COLUMNS",
    "METADATA_WHITELIST",
    "is_plasticc_csv",
    "read_plasticc",
    "read_plasticc_metadata",
]

#: Light-curve columns, all required, with the type each is parsed as.
_LIGHTCURVE_TYPES = {
    "object_id": pa.int64(),
    "mjd": pa.float64(),
    "passband": pa.int64(),
    "flux": pa.float64(),
    "flux_err": pa.float64(),
    "detected_bool": pa.int64(),
}
LIGHTCURVE_COLUMNS = tuple(_LIGHTCURVE_TYPES)

#: Metadata columns astrot2 may read (only ``object_id`` is required); everything else in
#: the file, the simulation truth included, is never parsed.
_METADATA_TYPES = {
    "object_id": pa.int64(),
    "ra": pa.float64(),
    "decl": pa.float64(),
    "ddf_bool": pa.float64(),
    "hostgal_specz": pa.float64(),
    "hostgal_photoz": pa.float64(),
    "hostgal_photoz_err": pa.float64(),
    "distmod": pa.float64(),
    "mwebv": pa.float64(),
    "target": pa.int64(),
}
METADATA_WHITELIST = tuple(_METADATA_TYPES)

_TO_METADATA = ("hostgal_photoz", "hostgal_photoz_err", "mwebv")  # -> batch.metadata
_TO_EXTRA = ("ra", "decl", "ddf_bool", "hostgal_specz", "distmod")  # -> batch.extra (+ target)
_UNKNOWN_DISTMOD = -9.0
_READ_ERRORS = (pa.ArrowException, OSError, EOFError, ValueError, zlib.error)


def is_plasticc_csv(path: str | Path) -> bool:
    """True when the header of the (optionally gzipped) CSV names PLAsTiCC light-curve columns.

    Only the first line is read; a file that cannot be opened gives False.
    """
    try:
        header = _header(Path(path))
    except (*_READ_ERRORS, UnicodeDecodeError, StopIteration):
        return False
    return {"object_id", "passband"} <= set(header)


def read_plasticc_metadata(path: str | Path) -> dict[str, np.ndarray]:
    """The whitelisted columns of a PLAsTiCC metadata CSV, one entry per row.

    Parameters
    ----------
    path : str or Path
        Metadata CSV (``.csv`` or gzipped).  Only ``object_id`` is required.

    Returns
    -------
    dict of str to ndarray, shape (n_rows,)
        ``object_id`` and ``target`` as int64 (``target`` -1 when absent or empty); the
        other columns present in the file as float64 (NaN when empty).  ``distmod`` of -9
        becomes NaN; a host photo-z of 0 is kept (it marks a galactic object).

    Raises
    ------
    AlertFormatError
        The file is unreadable or truncated, or has no ``object_id`` column.
    """
    path = Path(path)
    table = _read_csv(path, _METADATA_TYPES, required=("object_id",))
    out = {"object_id": _int_column(table, "object_id", path)}
    target = (pc.fill_null(table.column("target"), -1) if "target" in table.column_names
              else pa.array(np.full(table.num_rows, -1, dtype=np.int64)))
    out["target"] = np.array(target.to_numpy(), dtype=np.int64)
    for name in table.column_names:
        if name not in out:
            out[name] = np.array(table.column(name).to_numpy(), dtype=np.float64)  # writable
    if "distmod" in out:
        out["distmod"][out["distmod"] == _UNKNOWN_DISTMOD] = np.nan
    return out


def read_plasticc(path: str | Path, metadata: str | Path | None = None) -> LightCurveBatch:
    """Read PLAsTiCC light curves (rows in any order) and, optionally, their metadata.

    Parameters
    ----------
    path : str or Path
        Light-curve CSV, plain or gzipped (detected from the content, not the name).
    metadata : str or Path, optional
        Metadata CSV.  ``hostgal_photoz``, ``hostgal_photoz_err`` and ``mwebv`` go to
        ``batch.metadata``; the label ``target`` (int, -1 when unknown) and ``ra, decl,
        ddf_bool, hostgal_specz, distmod`` to ``batch.extra``.  Objects without a metadata
        row get NaN and target -1; metadata rows without a light curve are ignored.

    Returns
    -------
    LightCurveBatch
        Survey :data:`~astrot2.surveys.LSST`, one light curve per object in increasing
        ``object_id`` order, ``alert_id == object_id == str(object_id)``.  Observations
        with a passband outside 0..5 or a non-finite value are dropped and counted in
        ``n_dropped``.

    Raises
    ------
    AlertFormatError
        A required column is missing (``field`` names it), or a file is unreadable,
        truncated or holds values that are not numbers (``path`` names it).
    """
    path = Path(path)
    table = _read_csv(path, _LIGHTCURVE_TYPES, required=LIGHTCURVE_COLUMNS)
    ids, owner = np.unique(_int_column(table, "object_id", path), return_inverse=True)
    passband = np.asarray(pc.fill_null(table.column("passband"), -1).to_numpy())
    band = np.where((passband >= 0) & (passband < LSST.n_bands), passband, -1)
    detected = np.asarray(pc.fill_null(table.column("detected_bool"), 0).to_numpy()) != 0
    meta, extra = _per_object(ids, metadata)
    id_str = ids.astype(str).astype(object)
    return LightCurveBatch.from_observations(
        LSST,
        alert_id=id_str,
        object_id=id_str,
        owner=owner,
        time=_float_column(table, "mjd"),
        flux=_float_column(table, "flux"),
        flux_err=_float_column(table, "flux_err"),
        band=band,
        detected=detected,
        metadata=meta,
        extra=extra,
    )


def _per_object(
    ids: np.ndarray, metadata: str | Path | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Metadata and extra columns aligned with the sorted ``ids`` (NaN / -1 when unknown)."""
    n = len(ids)
    meta = {c: np.full(n, np.nan) for c in _TO_METADATA}
    extra: dict[str, np.ndarray] = {"target": np.full(n, -1, dtype=np.int64)}
    extra.update({c: np.full(n, np.nan) for c in _TO_EXTRA})
    if metadata is None or n == 0:
        return meta, extra
    m = read_plasticc_metadata(metadata)
    pos = np.searchsorted(ids, m["object_id"])
    found = (pos < n) & (ids[np.minimum(pos, n - 1)] == m["object_id"])
    for name, dest in [*((c, meta) for c in _TO_METADATA),
                       *((c, extra) for c in (*_TO_EXTRA, "target"))]:
        if name in m:
            dest[name][pos[found]] = m[name][found]
    return meta, extra


# ---------------------------------------------------------------------------- CSV access
def _is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _header(path: Path) -> list[str]:
    """Column names from the first line (quotes, spaces and a BOM removed)."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        line = fh.readline()
    return [name.strip() for name in next(_csv.reader([line]))]


def _read_csv(path: Path, types: dict[str, pa.DataType], required: tuple[str, ...]) -> pa.Table:
    """Read only the named columns (those present) of a CSV; check the required ones."""
    from pyarrow import csv

    try:
        header = _header(path)
    except (*_READ_ERRORS, UnicodeDecodeError, StopIteration) as exc:
        raise AlertFormatError(f"unreadable CSV ({exc})", path=str(path)) from exc
    for name in required:
        if name not in header:
            raise AlertFormatError(
                f"missing column; a PLAsTiCC file has {list(required)}, this one has "
                f"{header[:12]}", path=str(path), field=name)
    wanted = [c for c in types if c in header]
    options = csv.ConvertOptions(include_columns=wanted,
                                 column_types={c: types[c] for c in wanted})
    try:
        stream = pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None)
        with stream:
            return csv.read_csv(stream, convert_options=options)
    except _READ_ERRORS as exc:
        raise AlertFormatError(f"truncated or corrupt CSV ({exc})", path=str(path)) from exc


def _int_column(table: pa.Table, name: str, path: Path) -> np.ndarray:
    """An integer column without nulls, as int64."""
    column = table.column(name)
    if column.null_count:
        raise AlertFormatError(f"{column.null_count} empty values", path=str(path), field=name)
    return np.array(column.to_numpy(), dtype=np.int64)


def _float_column(table: pa.Table, name: str) -> np.ndarray:
    """A float column as float64, NaN where empty."""
    return np.asarray(table.column(name).to_numpy(), dtype=np.float64)
