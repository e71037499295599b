"""How well a SN Ia template explains a light curve: a batched SALT2 grid fit.

The feature companion's strongest SN Ia evidence at faint depth is physics the training set
cannot teach from a few hundred objects per class: whether one SN Ia spectral model, moved to
some redshift, with some stretch and colour, explains every band at once.  This module fits
SALT2 (Guy et al. 2007, the model photometric SN Ia cosmology uses; trained on real
supernovae) to the raw points of every light curve of a batch, on a grid:

- redshift ``z`` (:attr:`TemplateGrid.zgrid`), colour ``c`` (:attr:`TemplateGrid.cgrid`)
  and the time of B maximum ``t0`` (offsets from the brightest detection, stretched by
  ``1 + z``): hypotheses fitted independently;
- amplitude ``x0`` and stretch ``x1`` in closed form (the model is linear in ``x0`` and
  ``x0 x1``; ``|x1| <= 3``, ``x0 >= 0``);
- the band fluxes of SALT2's two components tabulated once (:class:`TemplateGrid`, built
  with sncosmo by :func:`astrot2.simulate.salt2_grid`), read by linear interpolation in
  rest-frame phase: no sncosmo at inference.

Points within :data:`WINDOW` days of the brightest detection are fitted and measured (the
chi-square per point and the share of the signal explained are the window's: a survey's
three-year light curve would dilute a supernova's misfit with its noise-only points).  The
per-hypothesis work runs in a small C core (:mod:`astrot2._templatecore`, GIL released,
threads over light curves); the features (:data:`TEMPLATE_FEATURES`) come from the best
hypothesis, free in redshift, and from the best one under the host photo-z as a prior when
the light curve has one.

The same machinery fits core-collapse spectral templates (one amplitude each: a table whose
``M1`` is zero; the colour axis holds template x host extinction): :func:`cc_features` gives
how well the best SN II-like and the best stripped-envelope template explain the light curve,
and the SALT2 fit's chi-square per point minus theirs (a likelihood ratio, as PSNID's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrot2.errors import ModelError
from astrot2.lightcurves import LightCurveBatch
from astrot2.utils import balanced_ranges, run_ranges

__all__ = ["CC_FEATURES", "CC_GROUPS", "TEMPLATE_FEATURES", "WINDOW", "TemplateGrid",
           "cc_features", "cc_groups", "template_features"]

#: Observer-frame days around the brightest detection whose points the template explains.
WINDOW = (-40.0, 120.0)
#: The columns of :func:`template_features` (``pz_``: under the host photo-z prior, NaN
#: without one).
TEMPLATE_FEATURES = ("chi2_per_point", "explained", "z", "c", "x1", "log_x0_mu",
                     "pz_chi2_per_point", "pz_excess_chi2", "pz_x1", "pz_c", "pz_log_x0_mu")
#: Observer-frame offsets of the time of B maximum from the brightest detection at z = 0.3
#: (scaled by ``(1 + z) / 1.3`` at other redshifts).
T0_OFFSETS = np.arange(-30.0, 15.01, 2.5)
#: Fractional model error added to each point's flux error (SALT2 is not exact).  The
#: core-collapse fits use the same weights, so that ``ia_minus_cc`` compares chi-squares of
#: the same points with the same errors (a larger error for the single-supernova templates
#: was measured, rule 15 in docs/model.md, and made that difference inconsistent).
MODEL_ERROR = 0.03
#: |x1| allowed (SALT2's trained range).
X1_MAX = 3.0
#: Fading after the last tabulated phase, magnitudes per rest-frame day.
LATE_DECAY = 0.02
#: Smallest host photo-z error assumed, and the one assumed when none is given.
PHOTOZ_ERR = (0.02, 0.1)
#: Hypotheses (light curves x grid points) fitted at once: three float64 arrays of this
#: many values (~100 MB), so the SALT2 grid's 5,472 hypotheses take ~770 light curves.
CHUNK = 1 << 22
#: The columns of :func:`cc_features` (``pz_``: under the host photo-z prior).
CC_FEATURES = ("ii_chi2_per_point", "se_chi2_per_point", "ia_minus_cc",
               "pz_ii_chi2_per_point", "pz_se_chi2_per_point", "pz_ia_minus_cc")
#: Core-collapse template types of each group of :func:`cc_features`: hydrogen-rich SNe II,
#: and the stripped-envelope SNe (IIb with them: their light curves are Ib-like).
CC_GROUPS = {"ii": ("SN II", "SN IIP", "SN IIL", "SN IIn"),
             "se": ("SN IIb", "SN Ib", "SN Ic", "SN Ic-BL")}


@dataclass(frozen=True, eq=False)
class TemplateGrid:
    """A spectral model's band fluxes tabulated for one survey's bands: SALT2's, or
    core-collapse templates' (one component: ``M1`` zero).

    Attributes
    ----------
    table : ndarray, shape (2, n_z, n_c, n_bands, n_phases)
        Band flux (zero point 27.5, AB) at amplitude ``x0 = 1`` of the ``M0`` component
        and of ``M1`` (per unit ``x1``), at each redshift, colour, band (the survey's order)
        and rest-frame phase; NaN where the band lies outside the model at that redshift.
    zgrid, cgrid : ndarray
        The redshifts and colours of the table (core-collapse templates: each column's
        host E(B-V)).
    distmod : ndarray
        Distance modulus of each ``zgrid`` redshift (``log_x0_mu`` features).
    phase0, dphase : float
        First rest-frame phase and step, days.
    bands : tuple of str
        The survey's bands, in the table's order.
    source : str
        The model it was built from (``salt2-2.4``).
    kinds, names : tuple of str
        Core-collapse tables: each column's template type (``SN IIn``) and sncosmo name;
        empty for SALT2.
    """

    table: np.ndarray
    zgrid: np.ndarray
    cgrid: np.ndarray
    distmod: np.ndarray
    phase0: float
    dphase: float
    bands: tuple[str, ...]
    source: str
    kinds: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """A table of templates (``kinds``) has one component: its ``M1`` is zero (the C
        core's one-component path relies on it)."""
        table = self.table
        if self.kinds and table.ndim == 5 and len(table) > 1 and np.any(table[1]):
            raise ModelError("a table of templates (kinds) has one component: M1 must be 0")

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` file (plain arrays: read back without pickle).  A table of
        templates (``kinds``) is stored as its ``M0`` alone, in float32 where that loses
        nothing (:func:`astrot2.simulate.cc_grid` rounds it so)."""
        extra = {}
        table = self.table
        if self.kinds:
            table = table[:1]
            if np.array_equal(table.astype(np.float32), table, equal_nan=True):
                table = table.astype(np.float32)
            extra = {"kinds": np.array(self.kinds), "names": np.array(self.names)}
        np.savez(path, table=table, zgrid=self.zgrid, cgrid=self.cgrid,
                 distmod=self.distmod, phases=np.array([self.phase0, self.dphase]),
                 bands=np.array(self.bands), source=np.array(self.source), **extra)

    @classmethod
    def load(cls, path: str | Path) -> TemplateGrid:
        """Read a file of :meth:`save`.

        Raises
        ------
        ModelError
            Missing arrays or inconsistent shapes.
        """
        try:
            with np.load(path, allow_pickle=False) as f:
                kinds = tuple(str(k) for k in f["kinds"]) if "kinds" in f else ()
                table = np.asarray(f["table"], dtype=np.float64)
                if kinds and table.ndim == 5 and table.shape[0] == 1:  # M1 of templates: 0
                    table = np.concatenate([table, np.zeros_like(table)])
                grid = cls(table=np.ascontiguousarray(table),
                           zgrid=f["zgrid"].astype(np.float64),
                           cgrid=f["cgrid"].astype(np.float64),
                           distmod=f["distmod"].astype(np.float64),
                           phase0=float(f["phases"][0]), dphase=float(f["phases"][1]),
                           bands=tuple(str(b) for b in f["bands"]), source=str(f["source"]),
                           kinds=kinds,
                           names=tuple(str(k) for k in f["names"]) if kinds else ())
        except (OSError, KeyError, ValueError, IndexError, TypeError) as exc:
            raise ModelError(f"{path}: not a template grid ({exc})") from exc
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from exc
        shape = (2, len(grid.zgrid), len(grid.cgrid), len(grid.bands))
        if (grid.table.ndim != 5 or grid.table.shape[:4] != shape or grid.table.shape[4] < 2
                or grid.distmod.shape != grid.zgrid.shape or not grid.dphase > 0
                or (grid.kinds and len(grid.kinds) != len(grid.cgrid))
                or len(grid.names) != len(grid.kinds)):
            raise ModelError(f"{path}: inconsistent template grid (table {grid.table.shape})")
        return grid


def _window_points(batch: LightCurveBatch) -> tuple[np.ndarray, ...]:
    """Which light curves have a detection; which points lie inside :data:`WINDOW` of the
    brightest one and their times from it; every point's weight (inverse variance with
    the model error); the chi-square of no source over the window, per light curve."""
    n = batch.n_objects
    owner = batch.owner
    weight = 1.0 / (batch.flux_err ** 2 + (MODEL_ERROR * np.maximum(batch.flux, 0.0)) ** 2)
    key = np.where(batch.detected & batch.ok[owner], batch.flux, -np.inf)
    best = np.full(n, -np.inf)
    np.maximum.at(best, owner, key)
    has = np.isfinite(best)
    at_best = np.flatnonzero((key == best[owner]) & has[owner])
    which, first = np.unique(owner[at_best], return_index=True)  # the first, on a tie
    t_ref = np.zeros(n)
    t_ref[which] = batch.time[at_best[first]]
    dt = batch.time - t_ref[owner]
    inside = (dt > WINDOW[0]) & (dt < WINDOW[1]) & has[owner]
    null = np.bincount(owner, np.where(inside, weight * batch.flux ** 2, 0.0), minlength=n)
    return has, inside, dt, weight, null


def _photoz(batch: LightCurveBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Host photo-z, its error (floored, :data:`PHOTOZ_ERR`) and whether it is known."""
    photoz = batch.metadata["hostgal_photoz"]
    err = np.maximum(np.nan_to_num(batch.metadata["hostgal_photoz_err"], nan=PHOTOZ_ERR[1]),
                     PHOTOZ_ERR[0])
    return photoz, err, np.isfinite(photoz) & (photoz > 0.01)


def _chunks(batch: LightCurveBatch, grid: TemplateGrid, window: tuple[np.ndarray, ...],
            n_threads: int | None):
    """Fit ``grid`` to the batch's light curves, :data:`CHUNK` hypotheses at a time: yield
    each chunk's rows and their chi-square, x0 and x1 (:func:`_fit`)."""
    _, inside, dt, weight, _ = window
    band = batch.band.astype(np.int64)
    step = max(1, CHUNK // (len(grid.zgrid) * len(grid.cgrid) * len(T0_OFFSETS)))
    for lo in range(0, batch.n_objects, step):
        rows = np.arange(lo, min(lo + step, batch.n_objects))
        points = slice(batch.offsets[lo], batch.offsets[rows[-1] + 1])
        yield (rows, *_fit(batch.owner[points] - lo, len(rows), inside[points], dt[points],
                           band[points], batch.flux[points], weight[points], grid, n_threads))


def _prior(grid: TemplateGrid, photoz: np.ndarray, err: np.ndarray) -> np.ndarray:
    """The host photo-z's Gaussian prior as a chi-square term on each ``grid`` redshift,
    shape (len(photoz), n_z)."""
    return ((grid.zgrid[None, :] - photoz[:, None]) / err[:, None]) ** 2


def template_features(batch: LightCurveBatch, grid: TemplateGrid,
                      n_threads: int | None = None) -> np.ndarray:
    """SALT2 grid-fit features of every light curve (float32, NaN where not defined).

    Columns (:data:`TEMPLATE_FEATURES`), from the best hypothesis free in redshift:
    ``chi2_per_point`` (its chi-square per point of the window), ``explained`` (1 - its
    chi-square over that of no source, in the window), its ``z``, ``c``,
    ``x1`` and ``log_x0_mu`` (``log10 x0 + 0.4 mu(z)``: the amplitude a SN Ia of standard
    brightness has at every redshift, so the Hubble diagram's consistency); then, under the
    host photo-z (a Gaussian prior on z) when the light curve has one above 0.01, the best
    hypothesis's ``pz_chi2_per_point``, its excess over the free one, and its ``x1``,
    ``c`` and ``log_x0_mu``.  All NaN for a light curve without a detection, rejected, or
    of another survey than the table's (its bands differ: a ZTF ``g`` is not an LSST
    ``g``); the fitted parameters NaN where no source (``x0 = 0``) explains it best.

    Parameters
    ----------
    batch : LightCurveBatch
    grid : TemplateGrid
    n_threads : int, optional
        Worker threads of the C core (default: all cores); results do not depend on it.
    """
    n = batch.n_objects
    out = np.full((n, len(TEMPLATE_FEATURES)), np.nan, dtype=np.float32)
    if n == 0 or tuple(batch.survey.bands) != grid.bands:
        return out
    window = _window_points(batch)
    has, inside, null = window[0], window[1], window[4]
    photoz, err, known = _photoz(batch)
    n_window = np.maximum(np.bincount(batch.owner[inside], minlength=n), 1)
    for rows, chi2, x0, x1 in _chunks(batch, grid, window, n_threads):
        counts = n_window[rows]
        free = chi2.argmin(axis=1)
        best = _best(free, chi2, x0, x1, grid, counts)
        out[rows, 0] = best[:, 0]
        out[rows, 1] = 1.0 - np.take_along_axis(chi2, free[:, None], 1)[:, 0] / np.maximum(
            null[rows], 1e-12)
        out[rows, 2:6] = best[:, 1:]
        at = np.flatnonzero(known[rows])
        if len(at):
            shape = (len(grid.zgrid), -1)
            prior = _prior(grid, photoz[rows[at]], err[rows[at]])
            pick = (chi2[at].reshape(len(at), *shape) + prior[:, :, None]).reshape(
                len(at), -1).argmin(axis=1)
            best = _best(pick, chi2[at], x0[at], x1[at], grid, counts[at])
            out[rows[at], 6] = best[:, 0]
            out[rows[at], 7] = best[:, 0] - out[rows[at], 0]
            out[rows[at], 8:] = best[:, [3, 2, 4]]  # x1, c, log_x0_mu
    out[~has] = np.nan
    return out


def cc_features(batch: LightCurveBatch, grid: TemplateGrid, salt2: np.ndarray,
                n_threads: int | None = None) -> np.ndarray:
    """Core-collapse template-fit features of every light curve (float32, NaN where not
    defined), beside the SALT2 fit's.

    Columns (:data:`CC_FEATURES`): the chi-square per window point of the best SN II-like
    and of the best stripped-envelope template of ``grid`` (:data:`CC_GROUPS`; any
    redshift, time of maximum and host extinction of the table, the amplitude fitted,
    ``x0 >= 0``; the same weights as SALT2's), and ``ia_minus_cc``: the SALT2 fit's
    chi-square per point minus the better of the two (negative: SN Ia-like); then the
    same under the host photo-z prior (with the SALT2 fit's ``pz_chi2_per_point``), NaN
    without one.  NaN where :func:`template_features` is (no detection, another survey).

    Parameters
    ----------
    batch : LightCurveBatch
    grid : TemplateGrid
        A core-collapse table (:func:`astrot2.simulate.cc_grid`; ``kinds`` set).
    salt2 : ndarray
        :func:`template_features` of the same batch.
    n_threads : int, optional
        Worker threads of the C core; results do not depend on it.

    Raises
    ------
    ModelError
        ``grid`` is not a core-collapse table of both groups (:func:`cc_groups`), or
        ``salt2`` is not of this batch.
    """
    n = batch.n_objects
    out = np.full((n, len(CC_FEATURES)), np.nan, dtype=np.float32)
    groups = cc_groups(grid)
    if salt2.shape != (n, len(TEMPLATE_FEATURES)):
        raise ModelError(f"SALT2 features of shape {salt2.shape} for {n} light curves")
    if n == 0 or tuple(batch.survey.bands) != grid.bands:
        return out
    window = _window_points(batch)
    photoz, err, known = _photoz(batch)
    n_window = np.maximum(np.bincount(batch.owner[window[1]], minlength=n), 1)
    shape = (len(grid.zgrid), len(grid.cgrid), len(T0_OFFSETS))
    for rows, chi2, _, _ in _chunks(batch, grid, window, n_threads):
        chi2 = chi2.reshape(len(rows), *shape) / n_window[rows, None, None, None]
        for j, member in enumerate(groups):
            out[rows, j] = chi2[:, :, member].min(axis=(1, 2, 3))
        at = np.flatnonzero(known[rows])
        if len(at):
            penalty = (_prior(grid, photoz[rows[at]], err[rows[at]])
                       / n_window[rows[at], None])[:, :, None, None]
            for j, member in enumerate(groups):
                # the prior's term is left out of the reported chi-square, as SALT2's
                part = chi2[at][:, :, member]
                pick = (part + penalty).reshape(len(at), -1).argmin(axis=1)
                out[rows[at], 3 + j] = np.take_along_axis(
                    part.reshape(len(at), -1), pick[:, None], 1)[:, 0]
    out[:, 2] = salt2[:, 0] - np.minimum(out[:, 0], out[:, 1])
    out[:, 5] = salt2[:, 6] - np.minimum(out[:, 3], out[:, 4])
    out[~window[0]] = np.nan
    return out


def cc_groups(grid: TemplateGrid) -> list[np.ndarray]:
    """Which columns of a core-collapse table belong to each group of :data:`CC_GROUPS`.

    Raises
    ------
    ModelError
        Not a core-collapse table (no ``kinds``), or a group without a template.
    """
    groups = [np.isin(np.array(grid.kinds), kinds) for kinds in CC_GROUPS.values()]
    if not all(g.any() for g in groups):
        raise ModelError(f"not a core-collapse table of both groups {sorted(CC_GROUPS)}: "
                         f"template types {sorted(set(grid.kinds))}")
    return groups


def _fit(owner: np.ndarray, n: int, inside: np.ndarray, dt: np.ndarray, band: np.ndarray,
         flux: np.ndarray, weight: np.ndarray, grid: TemplateGrid, n_threads: int | None
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chi-square, x0 and x1 of every hypothesis (arrays (n, n_z * n_c * n_t)) of ``n``
    light curves (the points' ``owner`` in 0..n-1, sorted), from their ``inside`` (window)
    points, in the C core."""
    from astrot2 import _templatecore

    counts = np.bincount(owner[inside], minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    nz, nc, nt = len(grid.zgrid), len(grid.cgrid), len(T0_OFFSETS)
    t0 = np.ascontiguousarray((1.0 + grid.zgrid)[:, None] / 1.3 * T0_OFFSETS[None, :])
    chi2 = np.empty((n, nz * nc * nt))
    x0 = np.empty_like(chi2)
    x1 = np.empty_like(chi2)
    args = (offsets, np.ascontiguousarray(dt[inside]), np.ascontiguousarray(band[inside]),
            np.ascontiguousarray(flux[inside]), np.ascontiguousarray(weight[inside]), grid.table,
            grid.zgrid, t0, nc, len(grid.bands), grid.table.shape[4], grid.phase0,
            grid.dphase, LATE_DECAY, X1_MAX, bool(grid.kinds))  # kinds: M1 is zero

    def run(lo_hi: tuple[int, int]) -> None:
        _templatecore.fit_range(*args, lo_hi[0], lo_hi[1], chi2, x0, x1)

    run_ranges(run, balanced_ranges(counts * float(nz * nt) + 1.0, n_threads), n_threads)
    return chi2, x0, x1


def _best(pick: np.ndarray, chi2: np.ndarray, x0: np.ndarray, x1: np.ndarray,
          grid: TemplateGrid, counts: np.ndarray) -> np.ndarray:
    """The features of hypothesis ``pick`` of each light curve: chi-square per window
    point, z, c, x1 and ``log10 x0 + 0.4 mu(z)``; the parameters NaN where the best
    amplitude is 0 (no source)."""
    iz, ic, _ = np.unravel_index(pick, (len(grid.zgrid), len(grid.cgrid), len(T0_OFFSETS)))
    amp = np.take_along_axis(x0, pick[:, None], 1)[:, 0]
    source = amp > 0
    with np.errstate(divide="ignore"):
        log_x0_mu = np.log10(amp) + 0.4 * grid.distmod[iz]
    return np.column_stack([
        np.take_along_axis(chi2, pick[:, None], 1)[:, 0] / counts,
        np.where(source, grid.zgrid[iz], np.nan), np.where(source, grid.cgrid[ic], np.nan),
        np.where(source, np.take_along_axis(x1, pick[:, None], 1)[:, 0], np.nan),
        np.where(source, log_x0_mu, np.nan)])
