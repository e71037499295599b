"""Batched 2D Matern-3/2 Gaussian-process interpolation of light curves.

The kernel over (time, wavelength) is avocado's (Boone 2019), used by t2:

    k(x, x') = A**2 * (1 + sqrt(3) r) * exp(-sqrt(3) r),
    r**2 = (dt / l_t)**2 + (dlambda / l_lambda)**2,

with one joint distance, ``l_lambda`` fixed (6000 A), the measured flux errors on the
diagonal and a zero mean.  Per light curve, the amplitude ``A`` and the time length-scale
``l_t`` (bounded to [1, 1000] d) maximise the exact log marginal likelihood.

How it works and why it is fast
-------------------------------
- Per light curve, in units of the flux of its highest signal-to-noise point (avocado's
  amplitude guess; the likelihood maps back exactly with ``- n log scale``):
  1. the log likelihood is screened on a small grid of starts (avocado's guess, then
     ``start_amplitudes x start_length_scales``; one Cholesky each), because it often has
     several maxima in ``l_t`` (a smooth trend vs. fast variability);
  2. a bound-constrained trust-region Newton ascent in ``theta = (log A**2, log l_t)``,
     with the exact gradient *and* Hessian, runs from the ``n_starts`` best starts (~5
     iterations each, where L-BFGS-B needs tens of likelihood evaluations); the best end
     point wins, and the noise-only limit ``A -> 0`` is checked last;
  3. the posterior mean and standard deviation are evaluated on the grid from the final
     Cholesky factor.
- That work runs in a small C extension (:mod:`astrot2._gpcore`, C99, no BLAS, no
  per-observation Python object and no interpreter in the loop) over contiguous ranges
  of the batch, in threads that release the GIL.  Each light curve is computed on its
  own, so results do not depend on the batch composition nor on the thread count.

Which points are fitted
-----------------------
By default only points inside the output window ``[first detection - 50 d, last
detection + 50 d]`` (t2's window) are used, both to fit and to predict.  Light curves with
more than ``max_points`` points in the window (default 64; long Rubin histories reach
> 1,000 sources, and 45 % of PLAsTiCC objects exceed 64 in the window) keep the points of
the last 100 days (latest first), then the others by decreasing signal-to-noise; the fit
status records it (``STATUS_THINNED``).  The cost of a fit grows as ``n_points**3``: the cap
bounds the worst case (see ``benchmarks/gp.py`` for throughput at other caps).

Where the ascent fails from every start (Cholesky breakdown, no finite likelihood), the
initial guess is kept, or the noise-only limit where the initial guess breaks down too,
and the status says so (``STATUS_FALLBACK``); an ascent that stops at ``max_iter`` keeps
``STATUS_MAX_ITER`` whichever end point wins (the noise-only limit included); a light
curve with no usable point is skipped (``STATUS_SKIPPED``) and its outputs are NaN.
:func:`alert_status` turns these into the ``status`` of a classified alert (docs/gp.md).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from astrot2.errors import ConfigError
from astrot2.lightcurves import LightCurveBatch, segment_reduce
from astrot2.utils import balanced_ranges, run_ranges

__all__ = [
    "CLASSIFIED_STATUSES",
    "STATUS_FALLBACK",
    "STATUS_MAX_ITER",
    "STATUS_NAMES",
    "STATUS_OK",
    "STATUS_SKIPPED",
    "STATUS_THINNED",
    "GPConfig",
    "GPResult",
    "alert_status",
    "classified",
    "fit_gp",
    "iter_fit_gp",
    "log_marginal_likelihood",
]

STATUS_OK = 0  #: converged
STATUS_MAX_ITER = 1  #: stopped at ``max_iter`` before the convergence test passed
STATUS_FALLBACK = 2  #: numerical failure: the initial hyperparameters were kept
STATUS_SKIPPED = 3  #: no usable point (or rejected upstream): outputs are NaN
STATUS_THINNED = 4  #: converged on the ``max_points`` most informative points
STATUS_NAMES = {0: "ok", 1: "max_iter", 2: "fallback", 3: "skipped", 4: "thinned"}

#: The ``status`` of a classified alert for each GP status.  Thinning is by design (a
#: converged fit), so ``ok``; a fit that did not converge or fell back still yields class
#: probabilities, flagged; a light curve without a point in the model's bands is rejected.
_ALERT_STATUS = {STATUS_OK: "ok", STATUS_THINNED: "ok", STATUS_MAX_ITER: "gp_max_iter",
                 STATUS_FALLBACK: "gp_fallback", STATUS_SKIPPED: "no_points_in_model_bands"}
#: Alert statuses that come with class probabilities (the others are reject reasons).
CLASSIFIED_STATUSES = ("ok", "gp_max_iter", "gp_fallback")

_SQRT3 = np.sqrt(3.0)
_LOG_2PI = np.log(2.0 * np.pi)


@dataclass(frozen=True)
class GPConfig:
    """Settings of the GP interpolation; recorded in every model manifest.

    Parameters
    ----------
    n_steps : int
        Grid points per band (t2: 100).
    window_before, window_after : float
        Days before the first and after the last detection covered by the grid (50, 50).
    wavelength_scale : float
        Fixed wavelength length-scale in Angstrom (6000).
    length_scale_bounds : tuple of float
        Bounds of the fitted time length-scale in days ((1, 1000)).
    initial_length_scale : float
        Starting time length-scale in days (avocado: 20).
    fit_window_only : bool
        Fit and predict with the points inside the grid window only (default True).
    max_points : int
        Most points used per light curve (see module notes).
    max_iter : int
        Newton iterations at most.
    tol : float
        Convergence: predicted log-likelihood gain of the next step below ``tol``.
    n_starts : int
        Newton runs per light curve, from the best points of a screening grid.
    start_length_scales, start_amplitudes : tuple of float
        The screening grid: time length-scales (days) times amplitudes (in units of the
        flux of the highest signal-to-noise point).  avocado's guess (0.5,
        ``initial_length_scale``) is always screened first.
    """

    n_steps: int = 100
    window_before: float = 50.0
    window_after: float = 50.0
    wavelength_scale: float = 6000.0
    length_scale_bounds: tuple[float, float] = (1.0, 1000.0)
    initial_length_scale: float = 20.0
    fit_window_only: bool = True
    max_points: int = 64
    max_iter: int = 50
    tol: float = 1e-4
    n_starts: int = 2
    start_length_scales: tuple[float, ...] = (1.0, 4.0, 20.0, 100.0, 400.0)
    start_amplitudes: tuple[float, ...] = (0.5, 100.0)

    def __post_init__(self) -> None:
        lo, hi = self.length_scale_bounds
        if self.n_steps < 2:
            raise ConfigError(f"n_steps must be >= 2, got {self.n_steps}")
        if not 0 < lo < hi:
            raise ConfigError(f"length_scale_bounds must satisfy 0 < low < high, got {lo, hi}")
        if not lo <= self.initial_length_scale <= hi:
            raise ConfigError(
                f"initial_length_scale {self.initial_length_scale} outside bounds {lo, hi}"
            )
        if self.window_before < 0 or self.window_after < 0:
            raise ConfigError("window_before and window_after must be >= 0 days")
        if self.wavelength_scale <= 0:
            raise ConfigError(f"wavelength_scale must be > 0, got {self.wavelength_scale}")
        if self.n_starts < 1:
            raise ConfigError(f"n_starts must be >= 1, got {self.n_starts}")
        n_screened = len(_start_grid(self))
        if self.n_starts > n_screened:
            raise ConfigError(
                f"n_starts {self.n_starts} exceeds the {n_screened} distinct screening starts "
                "(avocado's guess and start_amplitudes x start_length_scales): lower n_starts "
                "or add start values"
            )
        if self.max_points < 2:
            raise ConfigError(f"max_points must be >= 2, got {self.max_points}")


@dataclass(frozen=True, eq=False)
class GPResult:
    """GP fits of a batch of light curves.

    Attributes
    ----------
    times : ndarray of shape (n_objects, n_steps)
        Grid times (MJD) of each light curve.
    mean, std : ndarray of shape (n_objects, n_steps, n_bands)
        Posterior mean and standard deviation of the flux (FLUXCAL) on the grid, for
        every band of the survey.
    amplitude, length_scale : ndarray of shape (n_objects,)
        Fitted ``A`` (FLUXCAL) and ``l_t`` (days).
    log_likelihood : ndarray of shape (n_objects,)
        Log marginal likelihood at the fitted hyperparameters (FLUXCAL units).
    n_points : ndarray of shape (n_objects,)
        Points used in the fit.
    n_iter : ndarray of shape (n_objects,)
    status : ndarray of int8, shape (n_objects,)
        One of the ``STATUS_*`` codes (:data:`STATUS_NAMES`).
    """

    times: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    amplitude: np.ndarray
    length_scale: np.ndarray
    log_likelihood: np.ndarray
    n_points: np.ndarray
    n_iter: np.ndarray
    status: np.ndarray

    @property
    def converged(self) -> np.ndarray:
        """True where the fit converged (``ok`` or ``thinned``), shape (n_objects,).

        Training keeps these light curves only; classification also scores ``max_iter``
        and ``fallback`` fits, flagged (:func:`alert_status`).
        """
        return (self.status == STATUS_OK) | (self.status == STATUS_THINNED)


def alert_status(reject: np.ndarray, gp_status: np.ndarray) -> np.ndarray:
    """The ``status`` of every classified alert: its reject reason, else its GP's.

    Parameters
    ----------
    reject : ndarray of object (str), shape (n_alerts,)
        Reject reasons of the light curves (``""`` for usable ones).
    gp_status : ndarray of int, shape (n_alerts,)
        ``STATUS_*`` codes of their GP fits.

    Returns
    -------
    ndarray of object (str), shape (n_alerts,)
        The reject reason, else ``ok``, ``gp_max_iter``, ``gp_fallback`` or
        ``no_points_in_model_bands``; :func:`classified` tells which get probabilities.
    """
    names = np.array([_ALERT_STATUS[code] for code in sorted(_ALERT_STATUS)], dtype=object)
    return np.where(reject != "", reject, names[gp_status]).astype(object)


def classified(status: np.ndarray) -> np.ndarray:
    """True for alert statuses that come with probabilities (:data:`CLASSIFIED_STATUSES`)."""
    return np.isin(status.astype(str), CLASSIFIED_STATUSES)


# --------------------------------------------------------------------------- selection
def _select_points(
    batch: LightCurveBatch, config: GPConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Choose the points to fit and the grid window of every light curve.

    Returns
    -------
    keep : ndarray of bool, shape (n_obs,)
    t_start, t_end : ndarray of shape (n_objects,)
    thinned : ndarray of bool, shape (n_objects,)
    """
    n = batch.n_objects
    owner = batch.owner
    time = batch.time
    det_time = np.where(batch.detected, time, np.nan)
    first = batch.reduce(det_time, np.fmin)
    last = batch.reduce(det_time, np.fmax)
    # Light curves without a detection: window over all their points (times are sorted).
    no_det = np.isnan(first) & (batch.n_points > 0)
    first[no_det] = time[batch.offsets[:-1][no_det]]
    last[no_det] = time[batch.offsets[1:][no_det] - 1]
    t_start = first - config.window_before
    t_end = last + config.window_after
    if config.fit_window_only:
        with np.errstate(invalid="ignore"):
            keep = (time >= t_start[owner]) & (time <= t_end[owner])
    else:
        keep = np.ones(len(time), dtype=bool)

    counts = np.bincount(owner[keep], minlength=n)
    thinned = counts > config.max_points
    if thinned.any():
        keep = _thin(batch, keep, thinned, last, config.max_points)
    return keep, t_start, t_end, thinned


def _thin(
    batch: LightCurveBatch, keep: np.ndarray, over: np.ndarray, last: np.ndarray, limit: int
) -> np.ndarray:
    """Keep at most ``limit`` points of the light curves in ``over``.

    Priority: points of the 100 days up to the last detection, latest first, then the
    other points by decreasing signal-to-noise.  Deterministic (index order breaks ties).
    """
    owner = batch.owner
    keep = keep.copy()
    idx = np.flatnonzero(keep & over[owner])  # candidate points of the light curves to thin
    snr = np.abs(batch.flux[idx]) / batch.flux_err[idx]
    recent = batch.time[idx] >= (last[owner[idx]] - 100.0)
    secondary = np.where(recent, -batch.time[idx], -snr)
    # One stable sort for all: by light curve, recent first, then latest / highest S/N.
    order = np.lexsort((secondary, ~recent, owner[idx]))
    grouped = owner[idx][order]
    first = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    keep[idx[order[rank >= limit]]] = False
    return keep


# --------------------------------------------------------------------------- driver
@functools.lru_cache(maxsize=16)
def _start_grid(config: GPConfig) -> np.ndarray:
    """Candidate starts (C, 2) in ``(log A**2, log l_t)``: avocado's guess first.

    Cached per configuration (a frozen, hashable dataclass): building it costs ~0.3 ms,
    a quarter of a single alert's latency.  The array is read-only.
    """
    lo, hi = np.log(config.length_scale_bounds)
    first = (np.log(0.25), np.log(config.initial_length_scale))
    grid = [
        (2.0 * np.log(a), float(np.clip(np.log(ls), lo, hi)))
        for a in config.start_amplitudes
        for ls in config.start_length_scales
    ]
    starts = np.array([first] + [c for c in dict.fromkeys(grid) if not np.allclose(c, first)])
    starts.flags.writeable = False
    return starts


def _flux_scale(
    owner: np.ndarray, y: np.ndarray, var: np.ndarray, counts: np.ndarray, n: int
) -> np.ndarray:
    """|flux| of each light curve's highest signal-to-noise point.

    avocado's S/N, which floors the error at 1 % of the light curve's peak flux; falls
    back to the point's error, then 1, when that flux is 0.
    """
    offsets = np.concatenate([[0], np.cumsum(counts)])
    peak = segment_reduce(y, offsets, np.maximum, 0.0)
    snr = np.abs(y) / np.sqrt(var + (1e-2 * peak[owner]) ** 2)
    order = np.lexsort((-snr, owner))  # per owner, best S/N first
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    scale = np.ones(n)
    has = counts > 0
    best = order[first[has]]
    noise = np.sqrt(var[best])
    scale[has] = np.where(np.abs(y[best]) > 0, np.abs(y[best]), np.where(noise > 0, noise, 1.0))
    return scale


def fit_gp(
    batch: LightCurveBatch, config: GPConfig | None = None, *, n_threads: int | None = None
) -> GPResult:
    """Fit a GP to every light curve of ``batch`` and evaluate it on a regular grid.

    Parameters
    ----------
    batch : LightCurveBatch
        Light curves; those with a reject reason are skipped (status ``skipped``, NaN
        outputs).
    config : GPConfig, optional
    n_threads : int, optional
        Worker threads (default: all cores).  Results do not depend on it.

    Returns
    -------
    GPResult
        Arrays of shape (n_objects, n_steps, n_bands) for the posterior mean and std, and
        per-object hyperparameters, likelihood and status.  The result for a light curve
        does not depend on the other light curves of the batch.
    """
    from astrot2 import _gpcore

    config = config or GPConfig()
    n, nb, ns = batch.n_objects, batch.survey.n_bands, config.n_steps
    keep, t_start, t_end, thinned = _select_points(batch, config)
    all_owner = batch.owner  # np.repeat over the batch: computed once here
    keep &= batch.ok[all_owner]
    owner = all_owner[keep]
    counts = np.bincount(owner, minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    y_raw = batch.flux[keep]
    var_raw = batch.flux_err[keep] ** 2
    scale = _flux_scale(owner, y_raw, var_raw, counts, n)
    sc = scale[owner]
    t = np.ascontiguousarray(batch.time[keep])
    lam = batch.survey.wavelength_array[batch.band[keep]] / config.wavelength_scale
    y = y_raw / sc
    var = var_raw / sc**2
    times = t_start[:, None] + (t_end - t_start)[:, None] * np.linspace(0.0, 1.0, ns)[None, :]
    times = np.ascontiguousarray(times)
    grid_lam = batch.survey.wavelength_array / config.wavelength_scale
    # log A**2 relative to the flux scale: wide enough for "no signal" and huge variability.
    bounds = np.array([[np.log(1e-20), np.log(1e12)], np.log(config.length_scale_bounds)])
    starts = _start_grid(config)

    theta = np.full((n, 2), np.nan)
    f = np.full(n, np.nan)
    n_iter = np.zeros(n, dtype=np.int32)
    status = np.full(n, STATUS_SKIPPED, dtype=np.int32)
    mean = np.empty((n, ns, nb))  # the C core writes every fitted row
    std = np.empty((n, ns, nb))
    args = (offsets, t, lam, y, var, starts, times, grid_lam, bounds)
    tail = (config.max_iter, config.tol, config.n_starts, theta, f, n_iter, status, mean, std)

    def run(lo_hi: tuple[int, int]) -> None:
        _gpcore.fit_range(*args, lo_hi[0], lo_hi[1], *tail)

    # a light curve's cost ~ n_points**3 (its Cholesky factorisations)
    run_ranges(run, balanced_ranges(counts.astype(np.float64) ** 3 + 50.0, n_threads),
               n_threads)

    fitted = status != STATUS_SKIPPED
    mean[fitted] *= scale[fitted, None, None]  # the other rows are unwritten memory
    std[fitted] *= scale[fitted, None, None]
    mean[~fitted] = np.nan
    std[~fitted] = np.nan
    status = np.where((status == STATUS_OK) & thinned, STATUS_THINNED, status).astype(np.int8)
    return GPResult(
        times=times,
        mean=mean,
        std=std,
        amplitude=np.exp(0.5 * theta[:, 0]) * scale,
        length_scale=np.exp(theta[:, 1]),
        log_likelihood=f - counts * np.log(scale),
        n_points=counts,
        n_iter=n_iter,
        status=status,
    )


def iter_fit_gp(
    batch: LightCurveBatch,
    config: GPConfig | None = None,
    *,
    chunk_size: int = 8192,
    n_threads: int | None = None,
) -> Iterator[tuple[slice, GPResult]]:
    """Fit ``batch`` chunk by chunk, yielding ``(slice_of_batch, result)``.

    Memory stays bounded by ``chunk_size`` light curves whatever the batch size (the
    grid arrays of a chunk are ``chunk_size * n_steps * n_bands`` floats each).
    """
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    for start in range(0, batch.n_objects, chunk_size):
        sl = slice(start, min(start + chunk_size, batch.n_objects))
        yield sl, fit_gp(batch.take(np.arange(sl.start, sl.stop)), config, n_threads=n_threads)


def log_marginal_likelihood(
    time: np.ndarray,
    wavelength: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
    amplitude: float,
    length_scale: float,
    wavelength_scale: float = 6000.0,
) -> float:
    """Exact log marginal likelihood of one light curve (reference, unbatched).

    Parameters
    ----------
    time, wavelength, flux, flux_err : array-like of shape (n,)
        Days, Angstrom, FLUXCAL, FLUXCAL.
    amplitude, length_scale : float
        ``A`` (FLUXCAL) and ``l_t`` (days).
    """
    from scipy.linalg import cho_factor, cho_solve

    t = np.asarray(time, dtype=np.float64)
    lam = np.asarray(wavelength, dtype=np.float64)
    y = np.asarray(flux, dtype=np.float64)
    r = np.sqrt(((t[:, None] - t[None, :]) / length_scale) ** 2
                + ((lam[:, None] - lam[None, :]) / wavelength_scale) ** 2)
    k = amplitude**2 * (1.0 + _SQRT3 * r) * np.exp(-_SQRT3 * r)
    k[np.diag_indices_from(k)] += np.asarray(flux_err, dtype=np.float64) ** 2
    factor = cho_factor(k, lower=True)
    alpha = cho_solve(factor, y)
    logdet = 2.0 * np.log(np.diag(factor[0])).sum()
    return float(-0.5 * y @ alpha - 0.5 * logdet - 0.5 * len(y) * _LOG_2PI)
