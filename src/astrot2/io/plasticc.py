"""PLAsTiCC light curves (CSV, plain or gzipped) and their metadata.

Columns ``object_id, mjd, passband (0..5 = u, g, r, i, z, y), flux, flux_err,
detected_bool``; fluxes are already FLUXCAL.  One object = one light curve, and its
``alert_id`` is its ``object_id``.

Only a whitelist of metadata columns is ever read (:data:`METADATA_WHITELIST`): the
``true_*`` columns (the unblinded simulation truth), ``tflux_*`` and ``libid_cadence`` of
the training-set metadata are never loaded, so they cannot leak into features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from astrot2.errors import AlertFormatError
from astrot2.lightcurves import LightCurveBatch
from astrot2.surveys import LSST

__all__ = ["LIGHTCURVE_COLUMNS", "METADATA_WHITELIST", "is_plasticc_csv", "read_plasticc",
           "read_plasticc_metadata"]

LIGHTCURVE_COLUMNS = ("object_id", "mjd", "passband", "flux", "flux_err", "detected_bool")
#: Metadata columns astrot2 may read; everything else in the file is ignored.
METADATA_WHITELIST = ("object_id", "ra", "decl", "ddf_bool", "hostgal_specz", "hostgal_photoz",
                      "hostgal_photoz_err", "distmod", "mwebv", "target")
_TO_METADATA = ("hostgal_photoz", "hostgal_photoz_err", "mwebv")
_TO_EXTRA = ("ra", "decl", "ddf_bool", "hostgal_specz", "distmod")


def is_plasticc_csv(path: str | Path) -> bool:
    """True when the first line of the (optionally gzipped) CSV names PLAsTiCC columns."""
    import gzip

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            header = {c.strip() for c in fh.readline().split(",")}
    except (OSError, EOFError):
        return False
    return {"object_id", "passband", "mjd", "flux"} <= header


def _read_csv(path: Path, columns: tuple[str, ...], required: tuple[str, ...]) -> pa.Table:
    """Read the named columns of a CSV (those present), checking the required ones."""
    from pyarrow import csv

    try:
        head = csv.open_csv(path).schema.names
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise AlertFormatError(f"unreadable CSV ({exc})", path=str(path)) from exc
    for name in required:
        if name not in head:
            raise AlertFormatError(
                f"missing column; a PLAsTiCC file has {list(required)}", path=str(path),
                field=name)
    wanted = [c for c in columns if c in head]
    try:
        return csv.read_csv(path, convert_options=csv.ConvertOptions(include_columns=wanted))
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise AlertFormatError(f"truncated or corrupt CSV ({exc})", path=str(path)) from exc


def read_plasticc_metadata(path: str | Path) -> dict[str, np.ndarray]:
    """The whitelisted metadata columns of a PLAsTiCC metadata CSV, as float arrays.

    ``distmod`` of -9 (galactic objects) becomes NaN; a host photo-z of 0 is kept (it marks
    a galactic object).  ``target`` is an int array (-1 when absent).
    """
    path = Path(path)
    table = _read_csv(path, METADATA_WHITELIST, ("object_id",))
    out = {name: table.column(name).to_numpy().astype(np.float64)
           for name in table.column_names if name not in ("object_id", "target")}
    out["object_id"] = table.column("object_id").to_numpy().astype(np.int64)
    n = table.num_rows
    out["target"] = (table.column("target").to_numpy().astype(np.int64)
                     if "target" in table.column_names else np.full(n, -1, dtype=np.int64))
    if "distmod" in out:
        out["distmod"] = np.where(out["distmod"] <= -9, np.nan, out["distmod"])
    return out


def read_plasticc(path: str | Path, metadata: str | Path | None = None) -> LightCurveBatch:
    """Read PLAsTiCC light curves (any row order) and optional metadata.

    Parameters
    ----------
    path : str or Path
        Light-curve CSV (``.csv`` or ``.csv.gz``).
    metadata : str or Path, optional
        Metadata CSV: host photo-z and its error, E(B-V) go to ``batch.metadata``; the
        label ``target`` and ``ra, decl, ddf_bool, hostgal_specz, distmod`` to
        ``batch.extra``.  Objects without a metadata row get NaN and target -1.

    Returns
    -------
    LightCurveBatch
        Objects in increasing ``object_id`` order.
    """
    path = Path(path)
    table = _read_csv(path, LIGHTCURVE_COLUMNS, LIGHTCURVE_COLUMNS)
    col = {name: table.column(name).to_numpy() for name in LIGHTCURVE_COLUMNS}
    ids, owner = np.unique(col["object_id"].astype(np.int64), return_inverse=True)
    passband = col["passband"].astype(np.int64)
    band = np.where((passband >= 0) & (passband < LSST.n_bands), passband, -1)

    n = len(ids)
    meta = {c: np.full(n, np.nan) for c in _TO_METADATA}
    extra: dict[str, np.ndarray] = {"target": np.full(n, -1, dtype=np.int64)}
    extra.update({c: np.full(n, np.nan) for c in _TO_EXTRA})
    if metadata is not None:
        m = read_plasticc_metadata(metadata)
        pos = np.searchsorted(ids, m["object_id"])
        found = (pos < n) & (ids[np.minimum(pos, n - 1)] == m["object_id"])
        for name in (*_TO_METADATA, *_TO_EXTRA, "target"):
            if name in m:
                target = meta if name in _TO_METADATA else extra
                target[name][pos[found]] = m[name][found]
    id_str = ids.astype(str).astype(object)
    return LightCurveBatch.from_observations(
        LSST,
        alert_id=id_str,
        object_id=id_str,
        owner=owner,
        time=col["mjd"],
        flux=col["flux"],
        flux_err=col["flux_err"],
        band=band,
        detected=col["detected_bool"].astype(bool),
        metadata=meta,
        extra=extra,
    )
