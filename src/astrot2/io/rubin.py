"""Rubin/LSST alerts (``lsst.v10_0``) and ELAsTiCC alerts (the older DP schema names).

One alert = one light curve made of ``prvDiaSources`` (history) plus ``diaSource`` (the
current detection), both detections (``detected=True``).  Forced photometry
(``prvDiaForcedSources``) is added as non-detections when ``include_forced=True``.

Field names by schema:

============  ==================  ==============
concept       Rubin lsst.v10_0     ELAsTiCC
============  ==================  ==============
time (MJD)    ``midpointMjdTai``   ``midPointTai``
band          ``band``             ``filterName``
flux (nJy)    ``psfFlux``          ``psFlux``
error (nJy)   ``psfFluxErr``       ``psFluxErr``
alert id      ``diaSourceId``      ``alertId``
============  ==================  ==============

Fluxes are difference-image PSF fluxes in nJy, converted to FLUXCAL.  ELAsTiCC's
``diaObject`` carries host photo-z (``hostgal_zphot``, ``hostgal_zphot_err``) and
``mwebv``; its sentinels (-9, -99, -999) become NaN.

A flat layout, one list column per field holding every source of the alert (history and
current point, as a Fink/Spark job builds it with ``concat``), is read when ``diaSource``
is absent: ``midpointMjdTai, band, psfFlux, psfFluxErr`` (or their ELAsTiCC names), with
optional per-alert ``hostgal_zphot``, ``hostgal_zphot_err``, ``mwebv``, ``diaObjectId``
and ``diaSourceId`` columns.  A row whose lists differ in length is rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import astrot2.io._arrow as A
from astrot2.errors import AlertFormatError
from astrot2.io.containers import read_alert_table
from astrot2.lightcurves import LightCurveBatch
from astrot2.photometry import njy_to_fluxcal
from astrot2.surveys import LSST

__all__ = ["read_rubin", "rubin_from_table"]

_TIME = ("midpointMjdTai", "midPointTai")
_BAND = ("band", "filterName")
_FLUX = ("psfFlux", "psFlux")
_ERR = ("psfFluxErr", "psFluxErr")
_SOURCE = {name: None for name in (*_TIME, *_BAND, *_FLUX, *_ERR, "diaObjectId", "diaSourceId")}
_PHOTOZ = ("hostgal_zphot", "hostgal_zphot_q50")
_OBJECT_META = {name: None for name in ("diaObjectId", *_PHOTOZ, "hostgal_zphot_err", "mwebv")}
AVRO_SPEC = {
    "alertId": None,
    "diaSourceId": None,
    "diaSource": _SOURCE,
    "prvDiaSources": [_SOURCE],
    "prvDiaForcedSources": [_SOURCE],
    "diaObject": _OBJECT_META,
}


def read_rubin(path: Path, *, include_forced: bool = False) -> LightCurveBatch:
    """Read a Rubin or ELAsTiCC alert file (Avro, gzipped Avro or Parquet)."""
    path = Path(path)
    table = read_alert_table(path, AVRO_SPEC)
    return rubin_from_table(table, source=str(path), include_forced=include_forced)


def rubin_from_table(
    table: pa.Table, source: str = "<table>", *, include_forced: bool = False
) -> LightCurveBatch:
    """Build an LSST light-curve batch from an Arrow table of Rubin or ELAsTiCC alerts.

    Raises
    ------
    AlertFormatError
        If there is no ``diaSource`` record or it lacks time, band or flux fields.
    """
    n = table.num_rows
    current = A.column(table, "diaSource")
    if current is None and any(name in table.column_names for name in _TIME):
        return _rubin_from_flat(table, source)
    if current is None or not pa.types.is_struct(current.type):
        raise AlertFormatError(
            "no 'diaSource' record: not a Rubin/ELAsTiCC alert table "
            "(use --format to pick another reader)",
            path=source,
            field="diaSource",
        )
    for aliases in (_TIME, _BAND, _FLUX, _ERR):
        if A.struct_child(current, aliases) is None:
            raise AlertFormatError(
                f"diaSource has none of the fields {list(aliases)}", path=source,
                field="diaSource." + aliases[0],
            )

    reject = np.full(n, "", dtype=object)
    has_current = A.valid(current)
    reject[~has_current] = "bad_record: diaSource is null"
    keep = np.flatnonzero(has_current)
    parts = [(keep, _source_columns(current, n, keep), True)]
    owner, hist = A.list_points(A.column(table, "prvDiaSources"))
    parts.append((owner, _source_columns(hist, len(owner)), True))
    if include_forced:
        owner, forced = A.list_points(A.column(table, "prvDiaForcedSources"))
        parts.append((owner, _source_columns(forced, len(owner)), False))

    owners = np.concatenate([p[0] for p in parts])
    cols = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
    detected = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])

    dia_object = A.column(table, "diaObject")
    object_id = A.to_str(A.struct_child(current, ["diaObjectId"]), n)
    fallback = A.to_str(A.struct_child(dia_object, ["diaObjectId"]), n)
    object_id = np.where(object_id == "", fallback, object_id)
    alert_id = A.to_str(A.column(table, "diaSourceId"), n)
    for candidate in (A.column(table, "alertId"), A.struct_child(current, ["diaSourceId"])):
        alert_id = np.where(alert_id == "", A.to_str(candidate, n), alert_id)
    metadata = {
        "hostgal_photoz": _unsentinel(A.to_float(A.struct_child(dia_object, _PHOTOZ), n)),
        "hostgal_photoz_err": _unsentinel(
            A.to_float(A.struct_child(dia_object, ["hostgal_zphot_err"]), n)
        ),
        "mwebv": _unsentinel(A.to_float(A.struct_child(dia_object, ["mwebv"]), n)),
    }
    return LightCurveBatch.from_observations(
        LSST,
        alert_id=alert_id,
        object_id=object_id,
        owner=owners,
        time=cols["time"],
        flux=njy_to_fluxcal(cols["flux"]),
        flux_err=njy_to_fluxcal(cols["flux_err"]),
        band=LSST.band_index(cols["band"]),
        detected=detected,
        metadata=metadata,
        reject=reject,
    )


def _source_columns(
    arr: pa.Array | None, n: int, rows: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Time, band, flux and error of ``n`` sources (optionally only ``rows`` of them)."""
    cols = {
        "time": A.to_float(A.struct_child(arr, _TIME), n),
        "band": A.to_str(A.struct_child(arr, _BAND), n),
        "flux": A.to_float(A.struct_child(arr, _FLUX), n),
        "flux_err": A.to_float(A.struct_child(arr, _ERR), n),
    }
    return cols if rows is None else {k: v[rows] for k, v in cols.items()}


def _unsentinel(values: np.ndarray) -> np.ndarray:
    """Replace the catalogue sentinels (<= -9) by NaN."""
    return np.where(values <= -9, np.nan, values)


def _flat_column(table: pa.Table, aliases: Sequence[str]) -> pa.Array | None:
    """The first column of ``table`` among ``aliases`` that has a type."""
    for name in aliases:
        arr = A.column(table, name)
        if arr is not None and not pa.types.is_null(arr.type):
            return arr
    return None


def _rubin_from_flat(table: pa.Table, source: str) -> LightCurveBatch:
    """An LSST batch from flat list columns (see the module docstring)."""
    n = table.num_rows
    lists = {}
    for key, aliases in (("time", _TIME), ("band", _BAND), ("flux", _FLUX), ("flux_err", _ERR)):
        lists[key] = _flat_column(table, aliases)
        if lists[key] is None or not pa.types.is_list(lists[key].type):
            raise AlertFormatError(
                f"flat Rubin layout needs a list column among {list(aliases)}", path=source,
                field=aliases[0],
            )
    lengths = {k: pc.list_value_length(v).fill_null(0).to_numpy(zero_copy_only=False)
               for k, v in lists.items()}
    ragged = np.zeros(n, dtype=bool)
    reject = np.full(n, "", dtype=object)
    for key, aliases in (("band", _BAND), ("flux", _FLUX), ("flux_err", _ERR)):
        bad = (lengths[key] != lengths["time"]) & ~ragged
        reject[bad] = f"bad_record: {aliases[0]} length differs from {_TIME[0]}"
        ragged |= bad
    cols: dict[str, np.ndarray] = {}
    owner = np.zeros(0, dtype=np.int64)
    for key, arr in lists.items():
        point_owner, values = A.list_points(arr)
        conv = A.to_str if key == "band" else A.to_float
        keep = ~ragged[point_owner]
        cols[key] = conv(values, len(point_owner))[keep]
        owner = point_owner[keep]  # identical for every column once ragged rows are out
    metadata = {
        "hostgal_photoz": _unsentinel(A.to_float(_flat_column(table, _PHOTOZ), n)),
        "hostgal_photoz_err": _unsentinel(A.to_float(A.column(table, "hostgal_zphot_err"), n)),
        "mwebv": _unsentinel(A.to_float(A.column(table, "mwebv"), n)),
    }
    return LightCurveBatch.from_observations(
        LSST,
        alert_id=A.to_str(_flat_column(table, ("diaSourceId", "alertId")), n),
        object_id=A.to_str(A.column(table, "diaObjectId"), n),
        owner=owner,
        time=cols["time"],
        flux=njy_to_fluxcal(cols["flux"]),
        flux_err=njy_to_fluxcal(cols["flux_err"]),
        band=LSST.band_index(cols["band"]),
        detected=np.ones(len(owner), dtype=bool),
        metadata=metadata,
        reject=reject,
    )
