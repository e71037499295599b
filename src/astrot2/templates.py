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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrot2.errors import ModelError
from astrot2.lightcurves import LightCurveBatch
from astrot2.utils import balanced_ranges, run_ranges

__all__ = ["TEMPLATE_FEATURES", "WINDOW", "TemplateGrid", "template_features"]

#: Observer-frame days around the brightest detection whose points the template explains.
WINDOW = (-40.0, 120.0)
#: The columns of :func:`template_features` (``pz_``: under the host photo-z prior, NaN
#: without one).
TEMPLATE_FEATURES = ("chi2_per_point", "explained", "z", "c", "x1", "log_x0_mu",
                     "pz_chi2_per_point", "pz_excess_chi2", "pz_x1", "pz_c", "pz_log_x0_mu")
#: Observer-frame offsets of the time of B maximum from the brightest detection at z = 0.3
#: (scaled by ``(1 + z) / 1.3`` at other redshifts).
T0_OFFSETS = np.arange(-30.0, 15.01, 2.5)
#: Fractional model error added to each point's flux error (SALT2 is not exact).
MODEL_ERROR = 0.03
#: |x1| allowed (SALT2's trained range).
X1_MAX = 3.0
#: Fading after the last tabulated phase, magnitudes per rest-frame day.
LATE_DECAY = 0.02
#: Smallest host photo-z error assumed, and the one assumed when none is given.
PHOTOZ_ERR = (0.02, 0.1)


@dataclass(frozen=True)
class TemplateGrid:
    """SALT2's band fluxes tabulated for one survey's bands.

    Attributes
    ----------
    table : ndarray, shape (2, n_z, n_c, n_bands, n_phases)
        Band flux (zero point 27.5, AB) at amplitude ``x0 = 1`` of the ``M0`` component
        and of ``M1`` (per unit ``x1``), at each redshift, colour, band (the survey's order)
        and rest-frame phase; NaN where the band lies outside the model at that redshift.
    zgrid, cgrid : ndarray
        The redshifts and colours of the table.
    distmod : ndarray
        Distance modulus of each ``zgrid`` redshift (``log_x0_mu`` features).
    phase0, dphase : float
        First rest-frame phase and step, days.
    bands : tuple of str
        The survey's bands, in the table's order.
    source : str
        The model it was built from (``salt2-2.4``).
    """

    table: np.ndarray
    zgrid: np.ndarray
    cgrid: np.ndarray
    distmod: np.ndarray
    phase0: float
    dphase: float
    bands: tuple[str, ...]
    source: str

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` file (plain arrays: read back without pickle)."""
        np.savez(path, table=self.table, zgrid=self.zgrid, cgrid=self.cgrid,
                 distmod=self.distmod, phases=np.array([self.phase0, self.dphase]),
                 bands=np.array(self.bands), source=np.array(self.source))

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
                grid = cls(table=np.ascontiguousarray(f["table"], dtype=np.float64),
                           zgrid=f["zgrid"].astype(np.float64),
                           cgrid=f["cgrid"].astype(np.float64),
                           distmod=f["distmod"].astype(np.float64),
                           phase0=float(f["phases"][0]), dphase=float(f["phases"][1]),
                           bands=tuple(str(b) for b in f["bands"]), source=str(f["source"]))
        except (OSError, KeyError, ValueError, IndexError) as exc:
            raise ModelError(f"{path}: not a template grid ({exc})") from exc
        shape = (2, len(grid.zgrid), len(grid.cgrid), len(grid.bands))
        if (grid.table.ndim != 5 or grid.table.shape[:4] != shape or grid.table.shape[4] < 2
                or grid.distmod.shape != grid.zgrid.shape or not grid.dphase > 0):
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
    of bands other than the grid's.

    Parameters
    ----------
    batch : LightCurveBatch
    grid : TemplateGrid
        Built for ``batch``'s survey.
    n_threads : int, optional
        Worker threads of the C core (default: all cores); results do not depend on it.
    """
    from astrot2 import _templatecore

    n = batch.n_objects
    out = np.full((n, len(TEMPLATE_FEATURES)), np.nan, dtype=np.float32)
    if n == 0 or tuple(batch.survey.bands) != grid.bands:
        return out
    has, inside, dt, weight, null = _window_points(batch)
    owner = batch.owner[inside]
    counts = np.bincount(owner, minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    dt = np.ascontiguousarray(dt[inside])
    band = np.ascontiguousarray(batch.band[inside], dtype=np.int64)
    flux = np.ascontiguousarray(batch.flux[inside])
    w = np.ascontiguousarray(weight[inside])
    nz, nc, nt = len(grid.zgrid), len(grid.cgrid), len(T0_OFFSETS)
    t0 = np.ascontiguousarray((1.0 + grid.zgrid)[:, None] / 1.3 * T0_OFFSETS[None, :])
    chi2 = np.empty((n, nz, nc, nt))
    x0 = np.empty_like(chi2)
    x1 = np.empty_like(chi2)
    args = (offsets, dt, band, flux, w, grid.table, grid.zgrid, t0, nc, len(grid.bands),
            grid.table.shape[4], grid.phase0, grid.dphase, LATE_DECAY, X1_MAX)

    def run(lo_hi: tuple[int, int]) -> None:
        _templatecore.fit_range(*args, lo_hi[0], lo_hi[1], chi2, x0, x1)

    run_ranges(run, balanced_ranges(counts * float(nz * nt) + 1.0, n_threads), n_threads)
    flat = chi2.reshape(n, -1)
    n_points = np.maximum(counts, 1)
    rows = np.arange(n)
    free = np.argmin(flat, axis=1)
    photoz = batch.metadata["hostgal_photoz"]
    known = np.isfinite(photoz) & (photoz > 0.01)
    err = np.maximum(np.nan_to_num(batch.metadata["hostgal_photoz_err"], nan=PHOTOZ_ERR[1]),
                     PHOTOZ_ERR[0])
    prior = ((grid.zgrid[None, :] - np.nan_to_num(photoz)[:, None]) / err[:, None]) ** 2
    at_photoz = np.argmin((chi2 + prior[:, :, None, None]).reshape(n, -1), axis=1)
    for col, pick in ((0, free), (6, at_photoz)):
        iz, ic, _ = np.unravel_index(pick, (nz, nc, nt))
        amp = x0.reshape(n, -1)[rows, pick]
        log_x0_mu = np.log10(np.maximum(amp, 1e-30)) + 0.4 * grid.distmod[iz]
        best = flat[rows, pick] / n_points
        if col == 0:
            out[:, 0] = best
            out[:, 1] = 1.0 - flat[rows, pick] / np.maximum(null, 1e-12)
            out[:, 2] = grid.zgrid[iz]
            out[:, 3] = grid.cgrid[ic]
            out[:, 4] = x1.reshape(n, -1)[rows, pick]
            out[:, 5] = log_x0_mu
        else:
            out[:, 6] = np.where(known, best, np.nan)
            out[:, 7] = np.where(known, best - out[:, 0], np.nan)
            out[:, 8] = np.where(known, x1.reshape(n, -1)[rows, pick], np.nan)
            out[:, 9] = np.where(known, grid.cgrid[ic], np.nan)
            out[:, 10] = np.where(known, log_x0_mu, np.nan)
    out[~(has & batch.ok)] = np.nan
    return out
