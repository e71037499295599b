"""ZTF alerts: ``ztf.alert`` Avro (schema 3.x/4.x) and Fink Parquet/Avro.

One alert = one light curve made of ``prv_candidates`` (history: detections and upper
limits) plus ``candidate`` (the current detection).  Fink's flat layout with ``c*`` array
columns (``cjd, cfid, cmagpsf, csigmapsf, cisdiffpos``, history followed by the current
point) is read when ``candidate`` is absent.

Photometry: a detection's ``magpsf, sigmapsf`` become FLUXCAL with the SNANA convention,
negative when ``isdiffpos`` is ``'f'``/``'0'``; an upper limit (null ``magpsf``) becomes a
non-detection ``0 +/- flux(diffmaglim) / 5``, unless a detection of the same band within
half a day is brighter than the limit (two fields with different references:
:func:`astrot2.photometry.contradicted_limits`), then it is dropped and counted in
``n_dropped``.  ``fid`` 1, 2, 3 map to bands g, r, i.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

import astrot2.io._arrow as A
from astrot2.errors import AlertFormatError
from astrot2.io.containers import read_alert_table
from astrot2.lightcurves import LightCurveBatch
from astrot2.photometry import contradicted_limits, limit_to_fluxcal_err, mag_to_fluxcal
from astrot2.surveys import ZTF

__all__ = ["read_ztf", "ztf_from_table"]

_POINT = {"jd": None, "fid": None, "magpsf": None, "sigmapsf": None,
          "isdiffpos": None, "diffmaglim": None}
_FLAT = ("cjd", "cfid", "cmagpsf", "csigmapsf", "cisdiffpos", "cdiffmaglim")
AVRO_SPEC = {
    "objectId": None,
    "candid": None,
    "candidate": {**_POINT, "candid": None},
    "prv_candidates": [_POINT],
    **{c: None for c in _FLAT},
}
_JD_TO_MJD = 2400000.5


def read_ztf(path: Path) -> LightCurveBatch:
    """Read a ZTF alert file (Avro, gzipped Avro or Parquet) into a light-curve batch."""
    path = Path(path)
    table = read_alert_table(path, AVRO_SPEC)
    return ztf_from_table(table, source=str(path))


def ztf_from_table(table: pa.Table, source: str = "<table>") -> LightCurveBatch:
    """Build a ZTF light-curve batch from an Arrow table of alerts.

    Parameters
    ----------
    table : pyarrow.Table
        One row per alert, with ``candidate`` (+ ``prv_candidates``) or the flat ``c*``
        array columns.
    source : str
        Name of the file, for error messages.

    Raises
    ------
    AlertFormatError
        If neither layout is present.
    """
    n = table.num_rows
    candidate = A.column(table, "candidate")
    if candidate is not None and not pa.types.is_null(candidate.type):
        owner, cols, reject = _points_from_structs(table, candidate, n, source)
    elif A.column(table, "cjd") is not None:
        owner, cols, reject = _points_from_flat(table, n)
    else:
        raise AlertFormatError(
            "no 'candidate' struct nor 'cjd' array column: not a ZTF alert table "
            "(use --format to pick another reader)",
            path=source,
            field="candidate",
        )

    detected = np.isfinite(cols["magpsf"])
    flux, flux_err = mag_to_fluxcal(cols["magpsf"], cols["sigmapsf"], cols["isdiffpos"])
    flux = np.where(detected, flux, 0.0)
    flux_err = np.where(detected, flux_err, limit_to_fluxcal_err(cols["diffmaglim"]))
    band = np.nan_to_num(np.where(np.isin(cols["fid"], (1, 2, 3)), cols["fid"] - 1, -1),
                         nan=-1).astype(np.int8)
    time = cols["jd"] - _JD_TO_MJD
    # a limit contradicted by a same-night detection in its band is invalid: dropped and
    # counted in n_dropped like any invalid point
    flux = np.where(contradicted_limits(owner, time, band, flux, flux_err, detected),
                    np.nan, flux)

    object_id = A.to_str(A.column(table, "objectId"), n)
    alert_id = A.to_str(A.column(table, "candid"), n)
    missing = alert_id == ""
    if missing.any() and candidate is not None and pa.types.is_struct(candidate.type):
        alert_id[missing] = A.to_str(A.struct_child(candidate, ["candid"]), n)[missing]
    return LightCurveBatch.from_observations(
        ZTF,
        alert_id=alert_id,
        object_id=object_id,
        owner=owner,
        time=time,
        flux=flux,
        flux_err=flux_err,
        band=band,
        detected=detected,
        reject=reject,
    )


def _point_columns(arr: pa.Array | None, n: int) -> dict[str, np.ndarray]:
    """Numeric and string columns of ZTF points from a struct array of length ``n``."""
    out = {k: A.to_float(A.struct_child(arr, [k]), n) for k in
           ("jd", "fid", "magpsf", "sigmapsf", "diffmaglim")}
    isdiffpos = A.struct_child(arr, ["isdiffpos"])
    out["isdiffpos"] = A.to_str(isdiffpos, n)
    return out


def _points_from_structs(
    table: pa.Table, candidate: pa.Array, n: int, source: str
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Points of the ``candidate`` + ``prv_candidates`` layout."""
    if not pa.types.is_struct(candidate.type):
        raise AlertFormatError("'candidate' is not a record", path=source, field="candidate")
    reject = np.full(n, "", dtype=object)
    has_current = A.valid(candidate)
    reject[~has_current] = "bad_record: candidate is null"
    current = _point_columns(candidate, n)
    hist_owner, hist = A.list_points(A.column(table, "prv_candidates"))
    previous = _point_columns(hist, len(hist_owner))
    keep = np.flatnonzero(has_current)
    owner = np.concatenate([keep, hist_owner])
    cols = {k: np.concatenate([current[k][keep], previous[k]]) for k in current}
    return owner, cols, reject


def _points_from_flat(
    table: pa.Table, n: int
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Points of Fink's flat ``c*`` array columns (history followed by the current point)."""
    reject = np.full(n, "", dtype=object)
    owner, jd = A.list_points(A.column(table, "cjd"))
    lengths = np.bincount(owner, minlength=n)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rank = np.arange(len(owner)) - starts[owner]  # position of each point within its row
    cols: dict[str, np.ndarray] = {"jd": A.to_float(jd, len(owner))}
    for name in ("fid", "magpsf", "sigmapsf", "diffmaglim", "isdiffpos"):
        conv = A.to_str if name == "isdiffpos" else A.to_float
        sub_owner, values = A.list_points(A.column(table, "c" + name))
        if values is None:
            cols[name] = conv(None, len(owner))
            continue
        sub_lengths = np.bincount(sub_owner, minlength=n)
        ragged = sub_lengths != lengths
        reject[ragged & (reject == "")] = f"bad_record: c{name} length differs from cjd"
        sub_starts = np.concatenate([[0], np.cumsum(sub_lengths)[:-1]])
        flat = conv(values, len(sub_owner))
        pos = np.minimum(sub_starts[owner] + rank, max(len(flat) - 1, 0))
        cols[name] = flat[pos] if len(flat) else conv(None, len(owner))
    keep = reject[owner] == ""
    return owner[keep], {k: v[keep] for k, v in cols.items()}, reject
