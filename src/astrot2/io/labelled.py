"""Readers of real, spectroscopically labelled ZTF light curves (training and real-sky data).

=================  ====================================================================
layout             what
=================  ====================================================================
``bts``            ZTF Bright Transient Survey objects as the ANTARES broker sent them:
                   ``light-curves/ZTF*.csv`` (``ant_mjd, ant_passband, ant_mag,
                   ant_magerr``, detections only) and ``labels.csv`` (the BTS catalogue)
``lcdata``         light-curve/test-data layout: ``light-curves/*.csv`` (``time, mag,
                   magerr, band``) and ``bts.csv``
``alerce``         ALeRCE ``lc_classifier`` examples: ``*_detections_corr.csv``,
                   ``*_non_detections.csv`` and ``*_labels.csv``
``parquet``        a light-curve Parquet file with labels (``astrot2 simulate -o``: the
                   project's light-curve table with ``extra.target`` ...)
=================  ====================================================================

The layout is detected from the folder's files (:func:`detect_layout`).  Each reader gives
a :class:`LabelledSet`: one ZTF light curve per object whose spectroscopic type maps to a
model class (:data:`SPECTRAL_CLASSES`), with the PLAsTiCC code of that class in
``batch.extra["target"]``, the spectroscopic type in ``extra["type"]`` and, where the
catalogue has it, the peak time in ``extra["peak_mjd"]``; objects of other types are kept
out and counted.  The catalogue's redshift, peak magnitude, rise and fade are labels, never
model inputs: they stay out of the batch's metadata (``hostgal_photoz`` is unknown, as for
a real alert), and only the redshift is kept, in ``extra["redshift"]``, for augmentation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyarrow import csv

from astrot2.classes import CLASSES
from astrot2.errors import AlertFormatError
from astrot2.lightcurves import LightCurveBatch
from astrot2.photometry import contradicted_limits, limit_to_fluxcal_err, mag_to_fluxcal
from astrot2.surveys import ZTF

__all__ = ["LAYOUTS", "SPECTRAL_CLASSES", "LabelledSet", "detect_layout", "read_labelled",
           "spectral_class"]

LAYOUTS = ("bts", "lcdata", "alerce", "parquet")

#: Spectroscopic types (BTS / TNS spelling, and ALeRCE's labels) -> model class names.
#: Any other type (novae, SLSN-II, Ia-CSM, Ca-rich, LBV, ...) is kept out of the sets.
SPECTRAL_CLASSES: dict[str, str] = {
    "SN Ia": "SNIa", "SN Ia-91T": "SNIa", "SNIa": "SNIa",
    "SN Ia-91bg": "SNIa-91bg", "SN Iax": "SNIax",
    "SN II": "SNII", "SN IIP": "SNII", "SN IIL": "SNII", "SN IIn": "SNII", "SN IIb": "SNII",
    "SNII": "SNII",
    "SN Ib": "SNIbc", "SN Ic": "SNIbc", "SN Ic-BL": "SNIbc", "SN Ibn": "SNIbc",
    "SN Ib/c": "SNIbc", "SNIbc": "SNIbc",
    "SLSN-I": "SLSN-I", "SLSN": "SLSN-I",
    "TDE": "TDE",
}

_CODE = {c.name: c.code for c in CLASSES}
#: Band labels of these files -> ZTF band index (ANTARES writes ``R`` for ZTF r).
_BANDS = {"g": 0, "r": 1, "R": 1, "i": 2, "I": 2, "1": 0, "2": 1, "3": 2}


def spectral_class(spectral_type: str) -> str | None:
    """The model class of a spectroscopic type, or None when it is kept out.

    Examples
    --------
    >>> spectral_class("SN IIb"), spectral_class("SN Ia-91T"), spectral_class("nova")
    ('SNII', 'SNIa', None)
    """
    return SPECTRAL_CLASSES.get(str(spectral_type).strip())


@dataclass(frozen=True)
class LabelledSet:
    """Labelled real light curves and what was left out.

    Attributes
    ----------
    batch : LightCurveBatch
        One ZTF light curve per kept object; ``extra``: ``target`` (PLAsTiCC code),
        ``type`` (spectroscopic type), ``peak_mjd`` (NaN where unknown), ``redshift``
        (NaN where unknown; a label, for augmentation only), ``source`` (layout name).
    kept_out : dict of str to int
        Objects not kept, by spectroscopic type (or ``"no light curve"``).
    """

    batch: LightCurveBatch
    kept_out: dict[str, int]

    def class_counts(self) -> dict[str, int]:
        """Kept objects per model class."""
        names = {c.code: c.name for c in CLASSES}
        counts = Counter(names[int(c)] for c in self.batch.extra["target"])
        return dict(counts.most_common())


def detect_layout(folder: str | Path) -> str:
    """Tell which labelled layout ``folder`` holds (one of :data:`LAYOUTS`).

    Raises
    ------
    AlertFormatError
        If the folder is none of them.
    """
    folder = Path(folder)
    if folder.is_file() and folder.name.endswith(".parquet"):
        return "parquet"
    if (folder / "labels.csv").is_file() and (folder / "light-curves").is_dir():
        return "bts"
    if (folder / "bts.csv").is_file() and (folder / "light-curves").is_dir():
        return "lcdata"
    if any(folder.glob("*_detections_corr.csv")) and any(folder.glob("*_labels.csv")):
        return "alerce"
    raise AlertFormatError(
        "not a folder of labelled light curves (expected light-curves/ with labels.csv or "
        "bts.csv, or ALeRCE *_detections_corr.csv with *_labels.csv)", path=str(folder))


def read_labelled(folder: str | Path, layout: str | None = None) -> LabelledSet:
    """Read a folder of labelled real ZTF light curves (layout detected when omitted)."""
    folder = Path(folder)
    layout = detect_layout(folder) if layout is None else layout
    if layout == "alerce":
        return _read_alerce(folder)
    if layout == "parquet":
        return _read_parquet(folder)
    if layout in ("bts", "lcdata"):
        return _read_per_object(folder, layout)
    raise AlertFormatError(f"unknown layout {layout!r}; choose one of {LAYOUTS}",
                           path=str(folder))


def _catalogue(path: Path) -> dict[str, dict[str, object]]:
    """BTS catalogue rows by ZTF id."""
    table = csv.read_csv(path, convert_options=csv.ConvertOptions(
        strings_can_be_null=True, null_values=["", "-", "None", "nan"])).to_pylist()
    return {str(row["ZTFID"]): row for row in table}


def _float(value: object) -> float:
    """A catalogue value as float (NaN when missing or not a number)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _read_per_object(folder: Path, layout: str) -> LabelledSet:
    """The ``bts`` and ``lcdata`` layouts: one CSV of magnitudes per object."""
    rows = _catalogue(folder / ("labels.csv" if layout == "bts" else "bts.csv"))
    names = ({"time": "ant_mjd", "mag": "ant_mag", "err": "ant_magerr", "band": "ant_passband"}
             if layout == "bts" else
             {"time": "time", "mag": "mag", "err": "magerr", "band": "band"})
    kept_out: Counter[str] = Counter()
    ids: list[str] = []
    info: list[tuple[str, str, float, float]] = []
    owner, time, mag, err, band = [], [], [], [], []
    for path in sorted((folder / "light-curves").glob("*.csv")):
        row = rows.get(path.stem)
        cls = spectral_class(row["type"]) if row else None
        if cls is None:
            kept_out[str(row["type"]) if row else "not in the catalogue"] += 1
            continue
        table = csv.read_csv(path, convert_options=csv.ConvertOptions(
            column_types={names["band"]: "string"}))
        owner.append(np.full(table.num_rows, len(ids)))
        time.append(table.column(names["time"]).to_numpy().astype(np.float64))
        mag.append(table.column(names["mag"]).to_numpy().astype(np.float64))
        err.append(table.column(names["err"]).to_numpy().astype(np.float64))
        band.append(np.array([_BANDS.get(b, -1) for b in table.column(names["band"])
                              .to_pylist()], np.int8))
        ids.append(path.stem)
        info.append((cls, str(row["type"]), _float(row.get("peakt")) + 58000.0,
                     _float(row.get("redshift"))))
    kept = set(ids)
    missing = [o for o, row in rows.items()
               if o not in kept and spectral_class(row["type"]) is not None]
    if missing:
        kept_out["no light curve"] += len(missing)
    if not ids:
        raise AlertFormatError("no light curve of a kept type", path=str(folder))
    flux, flux_err = mag_to_fluxcal(np.concatenate(mag), np.concatenate(err))
    batch = LightCurveBatch.from_observations(
        ZTF, ids, ids, np.concatenate(owner), np.concatenate(time), flux, flux_err,
        np.concatenate(band), np.ones(len(flux), bool), extra=_labels(info, layout))
    return LabelledSet(batch, dict(kept_out.most_common()))


def _labels(info: list[tuple[str, str, float, float]], source: str) -> dict[str, np.ndarray]:
    """The ``extra`` columns of a labelled batch from (class, type, peak, redshift) rows."""
    return {"target": np.array([_CODE[i[0]] for i in info], np.int64),
            "type": np.array([i[1] for i in info], dtype=object),
            "peak_mjd": np.array([i[2] for i in info], np.float64),
            "redshift": np.array([i[3] for i in info], np.float64),
            "source": np.full(len(info), source, dtype=object)}


def _read_alerce(folder: Path) -> LabelledSet:
    """ALeRCE examples: detections (``magpsf``, ``isdiffpos``) and upper limits
    (``diffmaglim``, turned into 0 +/- limit/5 points as the ZTF alert reader does)."""
    prefix = next(folder.glob("*_detections_corr.csv")).name[:-len("detections_corr.csv")]
    det = csv.read_csv(folder / f"{prefix}detections_corr.csv").to_pydict()
    lim_path = folder / f"{prefix}non_detections.csv"
    lim = csv.read_csv(lim_path).to_pydict() if lim_path.is_file() else {
        "objectId": [], "jd": [], "fid": [], "diffmaglim": []}
    labels = {str(k): str(v) for k, v in
              zip(*csv.read_csv(folder / f"{prefix}labels.csv").to_pydict().values(),
                  strict=True)}
    kept_out: Counter[str] = Counter(t for t in labels.values() if spectral_class(t) is None)
    ids = sorted(o for o, t in labels.items() if spectral_class(t) is not None)
    index = {oid: k for k, oid in enumerate(ids)}
    d_oid = np.array(det["objectId"], dtype=object)
    l_oid = np.array(lim["objectId"], dtype=object)
    d_keep = np.array([o in index for o in d_oid], bool)
    l_keep = np.array([o in index for o in l_oid], bool)
    d_flux, d_err = mag_to_fluxcal(np.array(det["magpsf"], float)[d_keep],
                                   np.array(det["sigmapsf"], float)[d_keep])
    d_flux *= np.where(np.array(det["isdiffpos"], float)[d_keep] > 0, 1.0, -1.0)
    owner = np.r_[[index[o] for o in d_oid[d_keep]], [index[o] for o in l_oid[l_keep]]]
    time = np.r_[np.array(det["mjd"], float)[d_keep],
                 np.array(lim["jd"], float)[l_keep] - 2400000.5]
    band = np.r_[np.array(det["fid"], int)[d_keep], np.array(lim["fid"], int)[l_keep]] - 1
    flux = np.r_[d_flux, np.zeros(l_keep.sum())]
    err = np.r_[d_err, limit_to_fluxcal_err(np.array(lim["diffmaglim"], float)[l_keep])]
    detected = np.r_[np.ones(d_keep.sum(), bool), np.zeros(l_keep.sum(), bool)]
    owner = owner.astype(np.int64)
    # as the ZTF alert reader: limits a same-night detection outshines are dropped (counted)
    flux = np.where(contradicted_limits(owner, time, band, flux, err, detected), np.nan, flux)
    info = [(spectral_class(labels[o]), labels[o], float("nan"), float("nan")) for o in ids]
    batch = LightCurveBatch.from_observations(ZTF, ids, ids, owner, time, flux, err,
                                              band.astype(np.int8), detected,
                                              extra=_labels(info, "alerce"))
    return LabelledSet(batch, dict(kept_out.most_common()))


def _read_parquet(path: Path) -> LabelledSet:
    """A labelled light-curve table (:meth:`LightCurveBatch.to_arrow` with ``extra.target``)."""
    import pyarrow.parquet as pq

    try:
        batch = LightCurveBatch.from_arrow(pq.read_table(path))
    except (OSError, ValueError, KeyError) as exc:
        raise AlertFormatError(f"not a labelled light-curve table ({exc})",
                               path=str(path)) from exc
    if "target" not in batch.extra:
        raise AlertFormatError("light-curve table without labels (extra.target)",
                               path=str(path))
    return LabelledSet(batch, {})
