"""The columnar light-curve batch that every stage of astrot2 consumes.

A :class:`LightCurveBatch` holds many light curves (one per alert: history + current
point) as flat arrays plus CSR-style ``offsets``: the observations of light curve ``i``
are ``slice(offsets[i], offsets[i + 1])``.  There is no Python object per observation.

Conventions, fixed here and checked on construction:

- time is MJD (days), ascending within each light curve;
- ``flux`` and ``flux_err`` are FLUXCAL (AB zero point 27.5, see :mod:`astrot2.photometry`);
- ``band`` is an index into ``survey.bands`` (int8);
- ``detected`` is False for forced photometry and upper limits (a non-detection is
  ``0 +/- limiting_flux / 5``);
- per-object metadata is NaN where unknown; ``reject`` is ``""`` for a usable light curve,
  else a short reason (``"empty"``, ``"no_valid_points"``, ``"bad_record: ..."``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from astrot2.surveys import Survey

__all__ = ["METADATA_COLUMNS", "LightCurve", "LightCurveBatch", "segment_reduce"]

#: Per-object metadata every batch carries (float64, NaN when unknown).
METADATA_COLUMNS = ("hostgal_photoz", "hostgal_photoz_err", "mwebv")


@dataclass(frozen=True)
class LightCurve:
    """One light curve, a read-only view into a :class:`LightCurveBatch` (for inspection)."""

    alert_id: str
    object_id: str
    survey: Survey
    time: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    band: np.ndarray
    detected: np.ndarray
    metadata: Mapping[str, float]
    reject: str


@dataclass(frozen=True, eq=False)
class LightCurveBatch:
    """Many light curves stored column-wise.

    Use :meth:`from_observations` to build one from unsorted, possibly dirty columns; the
    constructor itself only checks invariants.

    Attributes
    ----------
    survey : Survey
        Defines the band order and wavelengths.
    alert_id, object_id : ndarray of object (str), shape (n_objects,)
    offsets : ndarray of int64, shape (n_objects + 1,)
    time, flux, flux_err : ndarray of float64, shape (n_obs,)
    band : ndarray of int8, shape (n_obs,)
    detected : ndarray of bool, shape (n_obs,)
    metadata : dict of str to ndarray of float64, shape (n_objects,)
        At least :data:`METADATA_COLUMNS`.
    reject : ndarray of object (str), shape (n_objects,)
        ``""`` when usable, else the reason.
    n_dropped : ndarray of int32, shape (n_objects,)
        Observations removed at ingestion (non-finite values, non-positive errors,
        unknown band; ZTF upper limits contradicted by a same-night detection); kept as a
        count so nothing disappears silently.
    extra : dict of str to ndarray, shape (n_objects,)
        Other per-object columns a reader passes through (labels, coordinates...).
    """

    survey: Survey
    alert_id: np.ndarray
    object_id: np.ndarray
    offsets: np.ndarray
    time: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    band: np.ndarray
    detected: np.ndarray
    metadata: dict[str, np.ndarray]
    reject: np.ndarray
    n_dropped: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, n_obs = len(self.alert_id), len(self.time)
        assert self.offsets.shape == (n + 1,), "offsets must have n_objects + 1 entries"
        assert self.offsets[0] == 0 and self.offsets[-1] == n_obs, "offsets must span data"
        assert np.all(np.diff(self.offsets) >= 0), "offsets must be non-decreasing"
        for name in ("flux", "flux_err", "band", "detected"):
            assert len(getattr(self, name)) == n_obs, f"{name} has the wrong length"
        for name in ("object_id", "reject", "n_dropped"):
            assert len(getattr(self, name)) == n, f"{name} has the wrong length"
        for col in METADATA_COLUMNS:
            assert col in self.metadata, f"metadata column {col} missing"
        for col, values in {**self.metadata, **self.extra}.items():
            assert len(values) == n, f"per-object column {col} has the wrong length"

    # ------------------------------------------------------------------ building
    @classmethod
    def from_observations(
        cls,
        survey: Survey,
        alert_id: Sequence[str] | np.ndarray,
        object_id: Sequence[str] | np.ndarray,
        owner: np.ndarray,
        time: np.ndarray,
        flux: np.ndarray,
        flux_err: np.ndarray,
        band: np.ndarray,
        detected: np.ndarray,
        metadata: Mapping[str, np.ndarray] | None = None,
        reject: Sequence[str] | np.ndarray | None = None,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> LightCurveBatch:
        """Build a batch from flat observation columns in any order.

        Invalid observations (non-finite time or flux, non-finite or non-positive error,
        band index -1) are removed and counted in ``n_dropped``.  Each light curve is
        sorted by time (stable, so equal times keep their input order).  A light curve
        left with no observation gets the reject reason ``"empty"`` (nothing was given)
        or ``"no_valid_points"`` (everything was invalid), unless it already had one.

        Parameters
        ----------
        survey : Survey
        alert_id, object_id : array-like of str, shape (n_objects,)
        owner : array-like of int, shape (n_obs,)
            Index of the light curve each observation belongs to.
        time, flux, flux_err : array-like of float, shape (n_obs,)
            MJD and FLUXCAL.
        band : array-like of int, shape (n_obs,)
            Index into ``survey.bands``; -1 for an unknown band.
        detected : array-like of bool, shape (n_obs,)
        metadata : mapping of str to array-like of float, shape (n_objects,), optional
            Missing :data:`METADATA_COLUMNS` are filled with NaN.
        reject : array-like of str, shape (n_objects,), optional
            Reasons already known to the reader ("" for none).
        extra : mapping of str to array-like, shape (n_objects,), optional

        Returns
        -------
        LightCurveBatch
        """
        alert_id = _as_str_array(alert_id)
        object_id = _as_str_array(object_id)
        n = len(alert_id)
        owner = np.asarray(owner, dtype=np.int64)
        time = np.asarray(time, dtype=np.float64)
        flux = np.asarray(flux, dtype=np.float64)
        flux_err = np.asarray(flux_err, dtype=np.float64)
        band = np.asarray(band, dtype=np.int8)
        detected = np.asarray(detected, dtype=bool)
        if owner.size and (owner.min() < 0 or owner.max() >= n):
            raise ValueError(
                f"owner indices must lie in [0, {n}), got {owner.min()}..{owner.max()}"
            )

        valid = (
            np.isfinite(time)
            & np.isfinite(flux)
            & np.isfinite(flux_err)
            & (flux_err > 0)
            & (band >= 0)
            & (band < survey.n_bands)
        )
        given = np.bincount(owner, minlength=n)
        kept_per_object = np.bincount(owner[valid], minlength=n)
        n_dropped = (given - kept_per_object).astype(np.int32)

        # Sort by (owner, time); lexsort is stable, so duplicated times keep input order.
        idx = np.flatnonzero(valid)
        order = idx[np.lexsort((time[idx], owner[idx]))]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(kept_per_object, out=offsets[1:])

        reasons = np.full(n, "", dtype=object) if reject is None else _as_str_array(reject)
        if len(reasons) != n:
            raise ValueError(f"reject has {len(reasons)} entries for {n} light curves")
        empty = kept_per_object == 0
        reasons[empty & (reasons == "") & (given == 0)] = "empty"
        reasons[empty & (reasons == "") & (given > 0)] = "no_valid_points"

        meta = {c: np.full(n, np.nan) for c in METADATA_COLUMNS}
        for key, values in (metadata or {}).items():
            meta[key] = np.asarray(values, dtype=np.float64)
        return cls(
            survey=survey,
            alert_id=alert_id,
            object_id=object_id,
            offsets=offsets,
            time=time[order],
            flux=flux[order],
            flux_err=flux_err[order],
            band=band[order],
            detected=detected[order],
            metadata=meta,
            reject=reasons,
            n_dropped=n_dropped,
            extra={k: np.asarray(v) for k, v in (extra or {}).items()},
        )

    @classmethod
    def concat(cls, batches: Sequence[LightCurveBatch]) -> LightCurveBatch:
        """Concatenate batches of the same survey, in order."""
        if not batches:
            raise ValueError("concat needs at least one batch")
        survey = batches[0].survey
        if any(b.survey != survey for b in batches):
            names = sorted({b.survey.name for b in batches})
            raise ValueError(f"cannot concatenate batches of different surveys: {names}")
        sizes = np.array([len(b.time) for b in batches])
        offsets = [np.zeros(1, dtype=np.int64)]
        base = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        for b, start in zip(batches, base, strict=True):
            offsets.append(b.offsets[1:] + start)
        extra_keys = set.intersection(*(set(b.extra) for b in batches))
        meta_keys = set.intersection(*(set(b.metadata) for b in batches))
        cat = np.concatenate
        return cls(
            survey=survey,
            alert_id=cat([b.alert_id for b in batches]),
            object_id=cat([b.object_id for b in batches]),
            offsets=cat(offsets),
            time=cat([b.time for b in batches]),
            flux=cat([b.flux for b in batches]),
            flux_err=cat([b.flux_err for b in batches]),
            band=cat([b.band for b in batches]),
            detected=cat([b.detected for b in batches]),
            metadata={k: cat([b.metadata[k] for b in batches]) for k in sorted(meta_keys)},
            reject=cat([b.reject for b in batches]),
            n_dropped=cat([b.n_dropped for b in batches]),
            extra={k: cat([b.extra[k] for b in batches]) for k in sorted(extra_keys)},
        )

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.alert_id)

    @property
    def n_objects(self) -> int:
        """Number of light curves (alerts)."""
        return len(self.alert_id)

    @property
    def n_points(self) -> np.ndarray:
        """Observations per light curve, shape (n_objects,)."""
        return np.diff(self.offsets)

    @property
    def owner(self) -> np.ndarray:
        """Light-curve index of every observation, shape (n_obs,)."""
        return np.repeat(np.arange(self.n_objects), self.n_points)

    @property
    def ok(self) -> np.ndarray:
        """True for light curves with no reject reason, shape (n_objects,)."""
        return self.reject == ""

    def reduce(self, values: np.ndarray, ufunc: np.ufunc, empty: float = np.nan) -> np.ndarray:
        """Reduce per-observation ``values`` over each light curve with ``ufunc``.

        Parameters
        ----------
        values : ndarray of shape (n_obs,) or (n_obs, ...)
            Trailing axes are reduced column by column.
        ufunc : numpy ufunc with a ``reduceat`` (``np.fmin``, ``np.add``...)
        empty : float
            Result for light curves without observations.

        Returns
        -------
        ndarray of float64, shape (n_objects,) or (n_objects, ...)
        """
        return segment_reduce(values, self.offsets, ufunc, empty)

    def __getitem__(self, i: int) -> LightCurve:
        if not -len(self) <= i < len(self):
            raise IndexError(f"light curve {i} out of range for a batch of {len(self)}")
        i = i % len(self)
        s = slice(self.offsets[i], self.offsets[i + 1])
        return LightCurve(
            alert_id=self.alert_id[i],
            object_id=self.object_id[i],
            survey=self.survey,
            time=self.time[s],
            flux=self.flux[s],
            flux_err=self.flux_err[s],
            band=self.band[s],
            detected=self.detected[s],
            metadata={k: float(v[i]) for k, v in self.metadata.items()},
            reject=self.reject[i],
        )

    def __iter__(self) -> Iterator[LightCurve]:
        for i in range(len(self)):
            yield self[i]

    def take(self, indices: np.ndarray | Sequence[int]) -> LightCurveBatch:
        """Return a new batch of the light curves at ``indices`` (in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.n_points[indices]  # IndexError when out of range
        # offsets has n + 1 entries: offsets[-1] is the end, not the last light curve's start
        indices = np.where(indices < 0, indices + len(self), indices)
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = self.offsets[indices]
        # Flat positions of every observation of the selected light curves.
        pos = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return replace(
            self,
            alert_id=self.alert_id[indices],
            object_id=self.object_id[indices],
            offsets=offsets,
            time=self.time[pos],
            flux=self.flux[pos],
            flux_err=self.flux_err[pos],
            band=self.band[pos],
            detected=self.detected[pos],
            metadata={k: v[indices] for k, v in self.metadata.items()},
            reject=self.reject[indices],
            n_dropped=self.n_dropped[indices],
            extra={k: v[indices] for k, v in self.extra.items()},
        )

    def chunks(self, size: int) -> Iterator[LightCurveBatch]:
        """Yield consecutive sub-batches of at most ``size`` light curves."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        for start in range(0, len(self), size):
            yield self.take(np.arange(start, min(start + size, len(self))))

    def keep_points(self, keep: np.ndarray) -> LightCurveBatch:
        """The same light curves with only the observations ``keep`` (boolean, one per
        observation), rebuilt by :meth:`from_observations`: reject reasons, metadata and
        ``extra`` carried over; a light curve left without points is rejected (``empty``)."""
        keep = np.asarray(keep, dtype=bool)
        return LightCurveBatch.from_observations(
            self.survey, self.alert_id, self.object_id, self.owner[keep], self.time[keep],
            self.flux[keep], self.flux_err[keep], self.band[keep], self.detected[keep],
            metadata=self.metadata, reject=self.reject, extra=self.extra)

    def with_reject(self, mask: np.ndarray, reason: str) -> LightCurveBatch:
        """Return a copy where light curves in ``mask`` without a reason get ``reason``."""
        reasons = self.reject.copy()
        reasons[np.asarray(mask, dtype=bool) & (reasons == "")] = reason
        return replace(self, reject=reasons)

    def to_arrow(self):
        """One row per light curve as a :class:`pyarrow.Table` with list columns."""
        import pyarrow as pa

        def lists(values: np.ndarray) -> pa.ListArray:
            return pa.ListArray.from_arrays(pa.array(self.offsets.astype(np.int32)), values)

        columns = {
            "alert_id": pa.array(self.alert_id.astype(str)),
            "object_id": pa.array(self.object_id.astype(str)),
            "reject": pa.array(self.reject.astype(str)),
            "n_dropped": pa.array(self.n_dropped),
            "time": lists(self.time),
            "flux": lists(self.flux),
            "flux_err": lists(self.flux_err),
            "band": lists(np.asarray(self.survey.bands)[self.band]),
            "detected": lists(self.detected),
        }
        columns.update({k: pa.array(v) for k, v in self.metadata.items()})
        columns.update({f"extra.{k}": pa.array(np.asarray(v).tolist())
                        for k, v in self.extra.items()})
        meta = {b"astrot2.survey": self.survey.name.encode(), b"astrot2.flux_unit": b"FLUXCAL"}
        return pa.table(columns).replace_schema_metadata(meta)

    @classmethod
    def from_arrow(cls, table) -> LightCurveBatch:
        """The batch :meth:`to_arrow` wrote (one row per light curve, list columns).

        Raises
        ------
        ValueError
            If the table is not in that layout (schema metadata ``astrot2.survey``).
        """
        from astrot2.surveys import get_survey

        meta = table.schema.metadata or {}
        if b"astrot2.survey" not in meta:
            raise ValueError("not an astrot2 light-curve table (no astrot2.survey metadata)")
        survey = get_survey(meta[b"astrot2.survey"].decode())
        n = table.num_rows

        def flat(name: str) -> np.ndarray:
            return table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False)

        lengths = table.column("time").combine_chunks().value_lengths().to_numpy()
        owner = np.repeat(np.arange(n), lengths)
        return cls.from_observations(
            survey, table.column("alert_id").to_numpy(zero_copy_only=False),
            table.column("object_id").to_numpy(zero_copy_only=False), owner, flat("time"),
            flat("flux"), flat("flux_err"), survey.band_index(flat("band")),
            flat("detected").astype(bool),
            metadata={c: table.column(c).to_numpy(zero_copy_only=False)
                      for c in METADATA_COLUMNS if c in table.column_names},
            reject=table.column("reject").to_numpy(zero_copy_only=False),
            extra={c[len("extra."):]: np.asarray(table.column(c).to_pylist())
                   for c in table.column_names if c.startswith("extra.")})

    def summary(self) -> dict[str, object]:
        """Counts for a human: light curves, observations, rejects by reason."""
        reasons, counts = np.unique(self.reject[self.reject != ""], return_counts=True)
        npts = self.n_points
        return {
            "survey": self.survey.name,
            "light_curves": len(self),
            "observations": len(self.time),
            "detections": int(self.detected.sum()),
            "median_points": float(np.median(npts)) if len(npts) else 0.0,
            "max_points": int(npts.max()) if len(npts) else 0,
            "dropped_points": int(self.n_dropped.sum()),
            "rejected": {str(r): int(c) for r, c in zip(reasons, counts, strict=True)},
        }


def segment_reduce(
    values: np.ndarray, offsets: np.ndarray, ufunc: np.ufunc, empty: float = np.nan
) -> np.ndarray:
    """``ufunc.reduceat`` over CSR segments ``values[offsets[i]:offsets[i + 1]]``.

    ``values`` may have trailing axes (shape ``(n_obs, ...)``: each column is reduced; the
    result has shape ``(n_segments, ...)``).  Empty segments get ``empty`` (``reduceat``
    alone would return a neighbour's value).
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(offsets) - 1
    out = np.full((n, *values.shape[1:]), empty, dtype=np.float64)
    nonempty = offsets[1:] > offsets[:-1]
    if nonempty.any():
        out[nonempty] = ufunc.reduceat(values, offsets[:-1][nonempty], axis=0)
    return out


def _as_str_array(values: Sequence[object] | np.ndarray) -> np.ndarray:
    """Return a 1-d object array of Python str."""
    arr = np.asarray(values, dtype=object).reshape(-1)
    return np.array([str(v) for v in arr], dtype=object)
