"""Photometric unit conversions to FLUXCAL (SNANA convention, AB zero point 27.5).

All fluxes inside astrot2 are FLUXCAL: ``mag = 27.5 - 2.5 log10(flux)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FLUXCAL_ZEROPOINT",
    "NJY_TO_FLUXCAL",
    "contradicted_limits",
    "distance_modulus",
    "limit_to_fluxcal_err",
    "mag_to_fluxcal",
    "njy_to_fluxcal",
]

#: AB zero point of FLUXCAL.
FLUXCAL_ZEROPOINT = 27.5
#: AB zero point of a flux in nanojansky (Rubin ``psfFlux``).
NJY_ZEROPOINT = 31.4
#: Multiply nJy by this to get FLUXCAL: 10**(-(31.4 - 27.5) / 2.5).
NJY_TO_FLUXCAL = 10.0 ** (-(NJY_ZEROPOINT - FLUXCAL_ZEROPOINT) / 2.5)
#: The constants of the SNANA / Fink error formula, kept as published so that results
#: match theirs to the last digit: flux_err = 9.21034e10 exp(-0.921034 mag) sigma.
_ERR_FACTOR = 9.21034e10
_ERR_EXPONENT = 0.921034


def mag_to_fluxcal(
    mag: np.ndarray, mag_err: np.ndarray, isdiffpos: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Convert difference-image PSF magnitudes to FLUXCAL flux and error.

    ``flux = 10**(-0.4 mag) * 1e11`` and ``flux_err = 9.21034e10 exp(-0.921034 mag)
    mag_err`` (first-order propagation, 0.921034 = 0.4 ln 10, with the published
    constants), as SNANA and the ZTF brokers do.

    Parameters
    ----------
    mag, mag_err : array-like of shape (n,)
        ``magpsf`` and ``sigmapsf``.
    isdiffpos : array-like of str of shape (n,), optional
        ZTF's sign of the difference: ``'t'``/``'1'`` positive, ``'f'``/``'0'`` negative
        (the source got fainter than the reference); a negative difference gives a
        negative flux.

    Returns
    -------
    flux, flux_err : ndarray of shape (n,)

    Examples
    --------
    >>> mag_to_fluxcal([18.9], [0.07])
    (array([2754.22870...]), array([177.57180...]))
    """
    mag = np.asarray(mag, dtype=np.float64)
    mag_err = np.asarray(mag_err, dtype=np.float64)
    flux = np.power(10.0, -0.4 * (mag - FLUXCAL_ZEROPOINT))
    flux_err = _ERR_FACTOR * np.exp(-_ERR_EXPONENT * mag) * mag_err
    if isdiffpos is not None:
        sign = np.where(np.isin(np.asarray(isdiffpos, dtype=object), ["f", "0"]), -1.0, 1.0)
        flux = flux * sign
    return flux, flux_err


def limit_to_fluxcal_err(limiting_mag: np.ndarray, n_sigma: float = 5.0) -> np.ndarray:
    """One-sigma FLUXCAL error of a non-detection from its limiting magnitude.

    ZTF's ``diffmaglim`` is a 5-sigma limit: a non-detection becomes the measurement
    ``0 +/- flux(diffmaglim) / 5``.
    """
    limiting_mag = np.asarray(limiting_mag, dtype=np.float64)
    return np.power(10.0, -0.4 * (limiting_mag - FLUXCAL_ZEROPOINT)) / n_sigma


def njy_to_fluxcal(flux_njy: np.ndarray) -> np.ndarray:
    """Convert a flux in nanojansky (zero point 31.4) to FLUXCAL (zero point 27.5)."""
    return np.asarray(flux_njy, dtype=np.float64) * NJY_TO_FLUXCAL


def contradicted_limits(owner: np.ndarray, time: np.ndarray, band: np.ndarray,
                        flux: np.ndarray, flux_err: np.ndarray, detected: np.ndarray,
                        window: float = 0.5, n_sigma: float = 5.0) -> np.ndarray:
    """Upper limits that a detection of the same light curve and band contradicts.

    A non-detection ``0 +/- err`` (:func:`limit_to_fluxcal_err`) says the difference flux
    was below ``n_sigma * err``, the limit itself.  When the same band has a detection
    brighter than that (in absolute value) within ``window`` days, both cannot describe
    the same difference image: in ZTF alerts this happens when the source sits in two
    fields with different reference images (the limit of one, the detection of the
    other, minutes apart: 13 % of the real alerts of the data folder).  Fitted together,
    the two make the GP swing by orders of magnitude between them; the detection is
    the measurement, the limit goes.  The window is set by the GP, whose time length
    scale is at least a day: a genuine rise or fall within hours (a flare) cannot be
    fitted through both points either, so such a limit is dropped too (its information
    is lost to the GP, not misread by it).

    Parameters
    ----------
    owner : ndarray of int, shape (n_obs,)
        Light curve of each observation.
    time, flux, flux_err : ndarray of float, shape (n_obs,)
        MJD and FLUXCAL (a non-detection: ``0 +/- err``).
    band : ndarray of int, shape (n_obs,)
    detected : ndarray of bool, shape (n_obs,)
    window : float
        Days either side of a limit.
    n_sigma : float
        The limit in units of the non-detection's error (ZTF ``diffmaglim``: 5).

    Returns
    -------
    ndarray of bool, shape (n_obs,)
        True for the non-detections to drop.
    """
    owner = np.asarray(owner, dtype=np.int64)
    time = np.asarray(time, dtype=np.float64)
    band = np.asarray(band, dtype=np.int64)
    detected = np.asarray(detected, dtype=bool)
    out = np.zeros(len(time), dtype=bool)
    limits = np.flatnonzero(~detected & np.isfinite(time))
    dets = np.flatnonzero(detected & np.isfinite(time) & np.isfinite(flux))
    if len(limits) == 0 or len(dets) == 0:
        return out
    # one sorted key per (light curve, band, time): windows never cross a group
    t0 = time[np.concatenate([limits, dets])].min()
    span = time[np.concatenate([limits, dets])].max() - t0 + 4.0 * window + 1.0
    group = owner * (int(band.max(initial=0)) + 2) + band + 1

    def key(i: np.ndarray, dt: float = 0.0) -> np.ndarray:
        return group[i] * span + (time[i] - t0 + dt)

    dets = dets[np.argsort(key(dets), kind="stable")]
    sorted_keys = key(dets)
    lo = np.searchsorted(sorted_keys, key(limits, -window), side="left")
    hi = np.searchsorted(sorted_keys, key(limits, window), side="right")
    limit_flux = n_sigma * np.asarray(flux_err, dtype=np.float64)[limits]
    hit = np.zeros(len(limits), dtype=bool)
    for k in range(int((hi - lo).max(initial=0))):
        j = lo + k
        inside = j < hi
        brighter = np.abs(flux[dets[np.minimum(j, len(dets) - 1)]]) > limit_flux
        hit |= inside & brighter
    out[limits[hit]] = True
    return out


def distance_modulus(z: np.ndarray, h0: float = 70.0, omega_m: float = 0.3) -> np.ndarray:
    """Distance modulus (mag) of redshift ``z`` in a flat Lambda-CDM cosmology.

    ``mu = 5 log10(d_L / 10 pc)``, ``d_L = (1+z) c/H0 int_0^z dz'/E(z')``, integrated on a
    fine grid (error < 1e-4 mag for z < 3).

    Examples
    --------
    >>> round(float(distance_modulus(np.array([0.1]))[0]), 2)
    38.31
    """
    z = np.asarray(z, dtype=np.float64)
    grid = np.linspace(0.0, max(float(np.nanmax(z, initial=0.0)), 1e-3) * 1.001, 4001)
    inv_e = 1.0 / np.sqrt(omega_m * (1.0 + grid) ** 3 + 1.0 - omega_m)
    comoving = np.concatenate([[0.0], np.cumsum((inv_e[1:] + inv_e[:-1]) / 2 * np.diff(grid))])
    d_l = (1.0 + z) * 299792.458 / h0 * np.interp(z, grid, comoving)  # Mpc
    with np.errstate(divide="ignore"):
        return 5.0 * np.log10(np.maximum(d_l, 1e-12) * 1e5)
