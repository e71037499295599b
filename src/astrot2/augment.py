"""Training-set augmentation of light curves (NumPy, deterministic given a seed).

The PLAsTiCC training set is small and brighter than what brokers see, and an alert
carries only part of a light curve.  Each augmented copy of a light curve:

- is cut at a random time after its first detection (``truncate``: alert-like partial
  light curves, from a few days to the whole curve), optionally keeping only the last
  ``max_history`` days before the cut (ZTF alerts carry <= 30 days of history);
- loses a random fraction of its points (``drop``: cadence and weather);
- is shifted in time (``shift``; the GP grid is relative, so this tests invariance);
- optionally keeps only some bands (``bands``: the ZTF model sees g and r only).

:func:`resample_to_survey` goes further, for a model of another survey than the training
set's: each light curve's 2D GP is moved to a lower redshift (avocado's redshifting, in
the direction a shallow survey such as ZTF needs) and re-observed as that survey's alerts
at its wavelengths, cadence and noise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from astrot2.lightcurves import LightCurveBatch
from astrot2.photometry import distance_modulus, limit_to_fluxcal_err

__all__ = [
    "AugmentConfig",
    "FainterConfig",
    "RedshiftConfig",
    "ResampleConfig",
    "alert_windows",
    "augment",
    "cut_at",
    "fainter",
    "first_detection",
    "recorded_move",
    "redshifted",
    "resample_seeds",
    "resample_to_survey",
    "survey_copies",
    "survey_windows",
    "visit_sky",
]


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings.

    Parameters
    ----------
    p_truncate : float
        Probability that a copy is cut at a random time after the first detection.
    min_days, max_days : float
        Range of the cut, in days after the first detection (uniform in log).
    max_history : float or None
        Keep only this many days before the cut (ZTF: 30); None keeps everything.
    drop_fraction : tuple of float
        Range of the fraction of points removed.
    max_shift : float
        Time shift range in days (+/-).
    bands : tuple of int or None
        Band indices kept (None: all).
    """

    p_truncate: float = 0.5
    min_days: float = 1.0
    max_days: float = 200.0
    max_history: float | None = None
    drop_fraction: tuple[float, float] = (0.0, 0.5)
    max_shift: float = 50.0
    bands: tuple[int, ...] | None = None


def augment(batch: LightCurveBatch, config: AugmentConfig, seed: int) -> LightCurveBatch:
    """One augmented copy of every light curve of ``batch`` (same order, same ids).

    A copy always keeps at least its first detection, so it is never empty when the
    original had a detection.
    """
    rng = np.random.default_rng(seed)
    n = batch.n_objects
    owner = batch.owner
    det_time = np.where(batch.detected, batch.time, np.nan)
    first = batch.reduce(det_time, np.fmin)
    first = np.where(np.isfinite(first), first, batch.reduce(batch.time, np.fmin))

    cut = np.full(n, np.inf)
    trunc = rng.random(n) < config.p_truncate
    log_days = rng.uniform(np.log(config.min_days), np.log(config.max_days), n)
    cut[trunc] = first[trunc] + np.exp(log_days[trunc])
    keep = batch.time <= cut[owner]
    if config.max_history is not None:
        last = batch.reduce(np.where(keep, batch.time, np.nan), np.fmax)
        keep &= batch.time >= last[owner] - config.max_history
    drop = rng.uniform(*config.drop_fraction, n)
    keep &= rng.random(len(batch.time)) >= drop[owner]
    if config.bands is not None:
        keep &= np.isin(batch.band, config.bands)
    # never lose the first detection (in a kept band)
    is_first = batch.detected & (batch.time == first[owner])
    if config.bands is not None:
        is_first &= np.isin(batch.band, config.bands)
    keep |= is_first

    shift = rng.uniform(-config.max_shift, config.max_shift, n)
    return LightCurveBatch.from_observations(
        batch.survey,
        alert_id=batch.alert_id,
        object_id=batch.object_id,
        owner=owner[keep],
        time=batch.time[keep] + shift[owner[keep]],
        flux=batch.flux[keep],
        flux_err=batch.flux_err[keep],
        band=batch.band[keep],
        detected=batch.detected[keep],
        metadata=batch.metadata,
        reject=batch.reject,
        extra=batch.extra,
    )


def first_detection(batch: LightCurveBatch) -> np.ndarray:
    """Time of each light curve's first detection (its first point when none; NaN if empty).

    Returns
    -------
    ndarray of float, shape (n_objects,)
    """
    first = batch.reduce(np.where(batch.detected, batch.time, np.nan), np.fmin)
    return np.where(np.isfinite(first), first, batch.reduce(batch.time, np.fmin))


def cut_at(batch: LightCurveBatch, times: np.ndarray, max_history: float | None = 30.0
           ) -> LightCurveBatch:
    """Each light curve as an alert issued at ``times`` would carry it.

    Keeps the points up to the alert time and, with ``max_history``, no older than that
    many days before it (a ZTF alert carries 30 days of history).  A light curve left
    without a detection is rejected (``no_detection``); same objects, same order.

    Parameters
    ----------
    batch : LightCurveBatch
    times : array-like of float, shape (n_objects,)
        Alert time of each light curve (MJD); NaN rejects the light curve.
    max_history : float or None
    """
    times = np.asarray(times, dtype=np.float64)
    owner = batch.owner
    keep = batch.time <= times[owner]
    if max_history is not None:
        keep &= batch.time >= times[owner] - max_history
    n_det = np.bincount(owner[keep & batch.detected], minlength=len(batch))
    return batch.keep_points(keep).with_reject(n_det == 0, "no_detection")


def without_redshift(batch: LightCurveBatch, which: np.ndarray | None = None
                     ) -> LightCurveBatch:
    """``batch`` with its host photo-z and photo-z error unknown (NaN), as many real
    alerts arrive (the Rubin alerts of the data folder carry none); light curves kept.

    ``which`` (boolean, one per light curve): only those lose it (default: all).
    """
    which = np.ones(len(batch), dtype=bool) if which is None else np.asarray(which, bool)
    meta = {k: np.where(which, np.nan, batch.metadata[k])
            for k in ("hostgal_photoz", "hostgal_photoz_err")}
    return replace(batch, metadata={**batch.metadata, **meta})


def alert_windows(batch: LightCurveBatch, config: AugmentConfig, seed: int) -> LightCurveBatch:
    """Alert-like views of ``batch`` for evaluation: always truncated, few dropped points.

    The cut and the history limit come from ``config`` (the model's training
    augmentation), the time shift is off; used identically by ``astrot2 train`` and
    ``astrot2 evaluate`` so that their alert-window figures agree.
    """
    cfg = replace(config, p_truncate=1.0, drop_fraction=(0.0, 0.1), max_shift=0.0)
    return augment(batch, cfg, seed)


@dataclass(frozen=True)
class ResampleConfig:
    """Settings of :func:`resample_to_survey`: a light curve re-observed by another survey.

    Parameters
    ----------
    z_range : tuple of float
        Target redshifts of extragalactic objects, drawn log-uniformly, never above the
        object's own (host photo-z): moving an object closer only needs rest-frame
        wavelengths the source survey measured.  ZTF's Bright Transient Survey: z < 0.15.
    cadence : tuple of float
        Range of the days between two visits of a band (uniform per light curve).
    snr_peak : tuple of float
        Range of the signal-to-noise ratio at the light curve's brightest point
        (log-uniform per light curve); the noise is the same for every point.
    detection_snr : float
        Points below it are non-detections (ZTF: 5 sigma).
    p_nondetections : float
        Probability that a copy keeps its non-detections (as 0 +/- noise points, as the ZTF
        readers turn upper limits); otherwise only detections are kept.
    min_days, max_days, max_history : float
        The alert: cut between ``min_days`` and ``max_days`` after the first detection
        (log-uniform), carrying ``max_history`` days of history.
    max_gap : float
        A new point is kept only if the source light curve has a point within this many
        (source-frame) days: no sampling inside seasonal gaps.
    """

    z_range: tuple[float, float] = (0.01, 0.15)
    cadence: tuple[float, float] = (1.0, 4.0)
    snr_peak: tuple[float, float] = (8.0, 100.0)
    detection_snr: float = 5.0
    p_nondetections: float = 0.5
    min_days: float = 1.0
    max_days: float = 100.0
    max_history: float = 30.0
    max_gap: float = 5.0


def _target_redshift(z: np.ndarray, ratio_max: float, config: ResampleConfig,
                     rng: np.random.Generator) -> np.ndarray:
    """Target redshifts: log-uniform in ``z_range``, at most ``z``, and such that the
    reddest target wavelength maps inside the source survey (``ratio_max``)."""
    lo, hi = config.z_range
    draw = np.exp(rng.uniform(np.log(lo), np.log(hi), len(z)))
    floor = (1.0 + z) / ratio_max - 1.0  # lowest z the source bands still cover
    return np.where(z > 0, np.clip(np.minimum(draw, z), np.maximum(floor, 0.0), None), 0.0)


def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
    """Concatenate per-light-curve arrays (an empty array of ``dtype`` when none)."""
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def dimming_factor(z: np.ndarray | float, z_new: np.ndarray | float, bandwidth: bool = True
                   ) -> np.ndarray:
    """The factor on a source's AB flux density (FLUXCAL) when it moves from redshift ``z``
    to ``z_new``, read in the band that sees the same rest-frame light.

    ``10 ** (-0.4 (mu(z_new) - mu(z)))`` (the distance modulus difference) times, with
    ``bandwidth``, ``(1 + z_new) / (1 + z)``: a flux *density* per unit frequency gains
    ``1 + z`` as the source's frequencies are compressed (the matched-band K-correction
    ``-2.5 log10(1 + z)`` of AB magnitudes, Hogg et al. 2002; sncosmo's model fluxes, hence
    :mod:`astrot2.simulate`, have it).  ``bandwidth=False``: the distance modulus alone
    (avocado's augmentation, and this project's before 2026-12-05; kept for the runs
    recorded with it).
    """
    z = np.nan_to_num(np.asarray(z, dtype=np.float64))
    z_new = np.nan_to_num(np.asarray(z_new, dtype=np.float64))
    factor = 10 ** (-0.4 * (distance_modulus(z_new) - distance_modulus(z)))
    return factor * (1.0 + z_new) / (1.0 + z) if bandwidth else factor


def _posterior_at(t: np.ndarray, lam: np.ndarray, y: np.ndarray, var: np.ndarray,
                  tq: np.ndarray, lamq: np.ndarray, amplitude: float,
                  length_scale: float, wavelength_scale: float) -> tuple[np.ndarray, ...]:
    """GP posterior mean and variance at query points (the kernel of :mod:`astrot2.gp`)."""
    from scipy.linalg import cho_factor, cho_solve

    def kernel(ta, la, tb, lb):
        r = np.sqrt(((ta[:, None] - tb[None, :]) / length_scale) ** 2
                    + ((la[:, None] - lb[None, :]) / wavelength_scale) ** 2)
        return amplitude**2 * (1.0 + np.sqrt(3.0) * r) * np.exp(-np.sqrt(3.0) * r)

    k = kernel(t, lam, t, lam)
    k[np.diag_indices_from(k)] += var
    factor = cho_factor(k, lower=True)
    kq = kernel(tq, lamq, t, lam)
    mean = kq @ cho_solve(factor, y)
    v = cho_solve(factor, kq.T)
    return mean, np.maximum(amplitude**2 - np.einsum("ij,ji->i", kq, v), 0.0)


def _reobserved(lc, visit: np.ndarray, stretch: float, dimming: float, sky: np.ndarray,
                rng: np.random.Generator, lam: np.ndarray, amplitude: float,
                length_scale: float, wavelength_scale: float, snr: float = 5.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One light curve's points ``visit`` as seen from a redshift ``stretch`` times
    farther in ``1 + z`` (the machinery of :func:`fainter` and :func:`redshifted`).

    Observer-frame times stay; the source is read through its 2D GP at the source-frame
    times ``first + (t - first) / stretch`` and wavelengths ``lam / stretch``, dimmed by
    ``dimming`` and re-noised: ``sigma^2 = sky^2 + (sigma_old^2 - sky^2) f'/f`` (the
    visit's sky noise plus the source's photon noise, scaled), the GP's own variance added
    to the noise drawn.

    Returns
    -------
    flux, flux_err, detected : ndarray
        Of the points ``visit``; detected where ``flux >= snr * flux_err``.
    """
    first = lc.time[lc.detected].min()
    t_src = first + (lc.time[visit] - first) / stretch
    mean, var = _posterior_at(lc.time, lam[lc.band], lc.flux, lc.flux_err ** 2, t_src,
                              lam[lc.band[visit]] / stretch, amplitude, length_scale,
                              wavelength_scale)
    f_new = mean * dimming
    photon = np.maximum(lc.flux_err[visit] ** 2 - sky ** 2, 0.0) * np.clip(
        f_new / np.maximum(lc.flux[visit], 1e-9), 0.0, 1.0)
    err = np.sqrt(sky ** 2 + photon)
    flux = f_new + rng.normal(0.0, 1.0, len(f_new)) * np.sqrt(err ** 2 + var * dimming ** 2)
    return flux, err, flux >= snr * err


def resample_to_survey(batch: LightCurveBatch, amplitude: np.ndarray,
                       length_scale: np.ndarray, target, bands: tuple[str, ...],
                       config: ResampleConfig, seed: int,
                       wavelength_scale: float = 6000.0) -> LightCurveBatch:
    """Alerts of ``target`` (e.g. ZTF) simulated from well-sampled light curves.

    avocado's augmentation, in the direction a low-redshift survey needs: each light
    curve's 2D GP (fitted on all source bands, hyperparameters ``amplitude``,
    ``length_scale`` from :func:`astrot2.gp.fit_gp`) is moved to a target redshift
    ``z' <= z`` (time dilation ``(1+z')/(1+z)``, target band wavelengths mapped to the
    source frame by ``(1+z)/(1+z')``) and re-observed at the target survey's cadence
    with noise, inside an alert window (``max_history`` days before a random cut).
    Galactic objects (``z = 0``) only change cadence and band wavelengths.  Which
    points are detections follows from the noise; copies without a detection are
    rejected (``no_detection``), so the result has one light curve per input, in order.

    Parameters
    ----------
    batch : LightCurveBatch
        Source light curves (e.g. PLAsTiCC, LSST bands), ``hostgal_photoz`` in metadata.
    amplitude, length_scale : ndarray of shape (n_objects,)
        The GP hyperparameters fitted to ``batch`` (NaN: the copy is rejected).
    target : Survey
        The survey to simulate.
    bands : tuple of str
        Target bands observed.
    config : ResampleConfig
    seed : int
    wavelength_scale : float
        The GP's wavelength length-scale (Angstrom).

    Returns
    -------
    LightCurveBatch
        Light curves of ``target``; ``hostgal_photoz`` set to the target redshift.
    """
    rng = np.random.default_rng(seed)
    n = batch.n_objects
    src_lam = batch.survey.wavelength_array
    tgt_idx = target.band_index(np.array(bands)).astype(np.int64)
    tgt_lam = target.wavelength_array[tgt_idx]
    z = np.nan_to_num(batch.metadata["hostgal_photoz"], nan=0.0).clip(0.0, None)
    z_new = _target_redshift(z, src_lam.max() / tgt_lam.max(), config, rng)
    stretch = (1.0 + z_new) / (1.0 + z)
    cadence = rng.uniform(*config.cadence, n)
    snr = np.exp(rng.uniform(*np.log(config.snr_peak), n))
    keep_nondet = rng.random(n) < config.p_nondetections
    cut_days = np.exp(rng.uniform(np.log(config.min_days), np.log(config.max_days), n))

    owners, times, fluxes, errors, band_out, det_out = [], [], [], [], [], []
    reject = np.where(batch.ok, "", batch.reject).astype(object)
    for i in range(n):
        lc = batch[i]
        if not batch.ok[i] or not np.isfinite(amplitude[i] * length_scale[i]) \
                or not lc.detected.any():
            reject[i] = reject[i] or "no_source_fit"
            continue
        first = lc.time[lc.detected].min()
        # the alert window, in days after the first detection in the target frame
        cut = min(cut_days[i], (lc.time.max() - first) * stretch[i])
        start = cut - config.max_history
        n_vis = int(config.max_history / cadence[i]) + 2
        visits = [start + np.cumsum(rng.uniform(0.5, 1.5, n_vis) * cadence[i])
                  for _ in tgt_idx]
        tq_new = np.concatenate(visits)
        bq = np.repeat(tgt_idx, n_vis)
        inside = tq_new <= cut
        tq_src = first + tq_new / stretch[i]
        gap = np.abs(tq_src[:, None] - lc.time[None, :]).min(axis=1)
        inside &= gap <= config.max_gap
        if not inside.any():
            reject[i] = "no_detection"
            continue
        tq_new, bq, tq_src = tq_new[inside], bq[inside], tq_src[inside]
        lamq = target.wavelength_array[bq] * (1.0 + z[i]) / (1.0 + z_new[i])
        near = np.abs(lc.time - tq_src.mean()) <= 150.0
        mean, var = _posterior_at(lc.time[near], src_lam[lc.band[near]], lc.flux[near],
                                  lc.flux_err[near] ** 2, tq_src, lamq, amplitude[i],
                                  length_scale[i], wavelength_scale)
        noise = np.abs(lc.flux[lc.detected]).max() / snr[i]
        flux = mean + rng.normal(0.0, 1.0, len(mean)) * np.sqrt(noise**2 + var)
        det = flux / noise >= config.detection_snr
        if not det.any():
            reject[i] = "no_detection"
            continue
        keep = det | keep_nondet[i]
        owners.append(np.full(keep.sum(), i))
        times.append(first + tq_new[keep])
        fluxes.append(np.where(det, flux, 0.0)[keep])
        errors.append(np.full(keep.sum(), noise))
        band_out.append(bq[keep])
        det_out.append(det[keep])
    metadata = {**batch.metadata, "hostgal_photoz": np.where(z > 0, z_new, batch.metadata[
        "hostgal_photoz"])}
    return LightCurveBatch.from_observations(
        target, batch.alert_id, batch.object_id, _cat(owners, np.int64), _cat(times, float),
        _cat(fluxes, float), _cat(errors, float), _cat(band_out, np.int8), _cat(det_out, bool),
        metadata=metadata, reject=reject, extra=batch.extra)


def resample_seeds(seed: int, n: int) -> list[int]:
    """Seeds of the ``n`` re-observed training copies of a run with ``seed`` (shared by
    ``astrot2 train`` and the compression pipeline, which rebuilds the same inputs)."""
    return [seed * 1000 + 500 + k for k in range(n)]


def survey_copies(batch: LightCurveBatch, gp, target, bands: tuple[str, ...],
                  config: ResampleConfig, seeds) -> list[LightCurveBatch]:
    """Fit the GP of every light curve on all its bands once, then one
    :func:`resample_to_survey` copy per seed.

    Used identically by training (the re-observed training copies, validation and test
    views), by compression (rebuilding the training inputs) and by ``astrot2 evaluate``.

    Parameters
    ----------
    batch : LightCurveBatch
    gp : GPConfig
        GP settings of the source fit (the model's).
    target : Survey
    bands : tuple of str
    config : ResampleConfig
    seeds : sequence of int
    """
    from astrot2.gp import fit_gp

    fit = fit_gp(batch, gp)
    return [resample_to_survey(batch, fit.amplitude, fit.length_scale, target, bands, config,
                               seed, gp.wavelength_scale) for seed in seeds]


def training_copies(train: LightCurveBatch, config: AugmentConfig, seed: int,
                    n_augment: int, *, redshift_dropout: float = 0.0, gp=None,
                    target=None, bands: tuple[str, ...] = (),
                    resample: ResampleConfig | None = None,
                    n_resample: int = 0) -> list[LightCurveBatch]:
    """The training views of a run: ``train`` itself and its copies, one batch each.

    The one definition of a training run's inputs, used by ``astrot2 train`` and rebuilt
    identically by the compression pipeline and the feature companion
    (:func:`astrot2.recipe.training_views`).

    Parameters
    ----------
    train : LightCurveBatch
        The train objects.
    config : AugmentConfig
    seed : int
        The run's seed: copy ``k`` uses ``seed * 1000 + k``.
    n_augment : int
        Augmented copies.
    redshift_dropout : float
        Fraction of the augmented copies' objects shown without host photo-z
        (:func:`without_redshift`; draws seeded by ``seed * 1000 + 999``).
    gp, target, bands, resample, n_resample
        With ``n_resample``, that many copies re-observed as ``target`` alerts
        (:func:`survey_copies` with :func:`resample_seeds`).
    """
    copies = [augment(train, config, seed * 1000 + k) for k in range(n_augment)]
    if redshift_dropout > 0:
        rng = np.random.default_rng(seed * 1000 + 999)
        copies = [without_redshift(c, rng.random(len(c)) < redshift_dropout) for c in copies]
    views = [train, *copies]
    if n_resample:  # one source GP fit for all the re-observed copies
        views += survey_copies(train, gp, target, bands, resample or ResampleConfig(),
                               resample_seeds(seed, n_resample))
    return views


def survey_windows(batch: LightCurveBatch, gp, target, bands: tuple[str, ...],
                   config: ResampleConfig, seed: int) -> LightCurveBatch:
    """One re-observed copy of ``batch`` (:func:`survey_copies` with one seed)."""
    return survey_copies(batch, gp, target, bands, config, [seed])[0]


@dataclass(frozen=True)
class FainterConfig:
    """Settings of :func:`fainter`: real light curves moved farther and re-observed.

    Parameters
    ----------
    max_dz : float
        The new redshift is drawn uniformly in ``[z, z + max_dz]`` (capped as below).
    limit_mag : tuple of float
        Range of the 5-sigma limiting magnitude of a visit (ZTF: about 19.5-21, median
        20.4); a point fainter than its visit's limit is lost.
    max_peak_mag : float
        The new redshift keeps the brightest point at most this faint (a magnitude-limited
        sample: fainter objects are not what the survey classifies).
    max_wavelength_shift : float
        At most this many Angstrom of extrapolation below the bluest source band (the band
        shift of a higher redshift asks the GP for bluer rest-frame light than measured).
    p_nondetections : float
        Probability that a copy keeps lost points as non-detections (0 +/- limit/5, as the
        ZTF alert reader turns upper limits) rather than dropping them.
    bandwidth : bool
        The flux gains ``(1+z')/(1+z)`` beside the distance modulus (:func:`dimming_factor`);
        False in runs recorded before the option (read back as such).
    """

    max_dz: float = 0.1
    limit_mag: tuple[float, float] = (19.8, 20.8)
    max_peak_mag: float = 19.5
    max_wavelength_shift: float = 600.0
    p_nondetections: float = 0.3
    bandwidth: bool = True


def recorded_move(config_type: type, section: dict):
    """A :class:`RedshiftConfig` or :class:`FainterConfig` read back from a model folder's
    recorded ``section``: a section recorded before ``bandwidth`` existed keeps the
    behaviour it was trained with (``bandwidth=False``, the distance modulus alone)."""
    return config_type(**{"bandwidth": False, **section})


def fainter(batch: LightCurveBatch, amplitude: np.ndarray, length_scale: np.ndarray,
            config: FainterConfig, seed: int, wavelength_scale: float = 6000.0
            ) -> LightCurveBatch:
    """Real light curves as the same objects would look farther away (z' >= z).

    avocado's and ztfparsnip's augmentation, upward: each light curve's 2D GP (hyper-
    parameters ``amplitude``, ``length_scale`` from :func:`astrot2.gp.fit_gp` on the same
    batch) is evaluated at the source-frame times and wavelengths of the new redshift:
    times dilated by ``(1+z')/(1+z)`` from the first detection (the same visits, thinned
    by that factor to keep the cadence), band wavelengths divided by it; the flux is dimmed
    by :func:`dimming_factor` and re-noised with ZTF's error model
    (``sigma^2 = sigma_sky^2 + (sigma_old^2 - sigma_sky^2) f'/f``: sky noise from the
    visit's limiting magnitude plus the source's photon noise, scaled; the GP's own
    uncertainty is added to the noise drawn).  Points under the
    5-sigma limit are lost (dropped, or kept as non-detections).  A light curve without a
    redshift (``extra["redshift"]`` NaN) or left without a detection is returned
    unchanged / rejected (``no_detection``).  Same objects, same order.

    Parameters
    ----------
    batch : LightCurveBatch
        Real light curves (FLUXCAL) with ``extra["redshift"]``.
    amplitude, length_scale : ndarray of shape (n_objects,)
    config : FainterConfig
    seed : int
    wavelength_scale : float
    """
    rng = np.random.default_rng(seed)
    n = batch.n_objects
    z = np.asarray(batch.extra.get("redshift", np.full(n, np.nan)), dtype=np.float64)
    lam = batch.survey.wavelength_array
    peak = batch.reduce(np.where(batch.detected, batch.flux, np.nan), np.fmax)
    peak_mag = 27.5 - 2.5 * np.log10(np.where(peak > 0, peak, np.nan))
    # the largest z' keeping the peak visible and the band shift within bounds
    z_grid = z[:, None] + np.linspace(0.0, config.max_dz, 41)[None, :]
    with np.errstate(invalid="ignore"):
        dmag = -2.5 * np.log10(dimming_factor(z[:, None], z_grid, config.bandwidth))
        stretch_grid = (1.0 + z_grid) / (1.0 + z[:, None])
        allowed = ((peak_mag[:, None] + dmag <= config.max_peak_mag)
                   & (lam.min() / stretch_grid >= lam.min() - config.max_wavelength_shift))
    z_max = np.where(allowed.any(axis=1),
                     np.nanmax(np.where(allowed, z_grid, np.nan), axis=1, initial=-1.0), z)
    usable = np.isfinite(z) & (z > 0) & np.isfinite(amplitude * length_scale) & batch.ok
    z_new = np.where(usable, z + rng.random(n) * np.maximum(z_max - z, 0.0), z)
    stretch = np.where(usable, (1.0 + z_new) / (1.0 + z), 1.0)
    dimming = np.where(usable, dimming_factor(z, z_new, config.bandwidth), 1.0)
    keep_nondet = rng.random(n) < config.p_nondetections
    owners, times, fluxes, errors, band_out, det_out = [], [], [], [], [], []
    reject = batch.reject.copy()
    for i in range(n):
        lc = batch[i]
        if not usable[i] or not lc.detected.any():
            continue
        visit = rng.random(len(lc.time)) < 1.0 / stretch[i]  # thin to the same cadence
        limit = rng.uniform(*config.limit_mag, int(visit.sum()))
        sky = limit_to_fluxcal_err(limit)
        flux, err, det = _reobserved(lc, visit, stretch[i], dimming[i], sky, rng, lam,
                                     amplitude[i], length_scale[i], wavelength_scale)
        if not det.any():
            reject[i] = reject[i] or "no_detection"
            continue
        keep = det | keep_nondet[i]
        owners.append(np.full(keep.sum(), i))
        times.append(lc.time[visit][keep])  # observer-frame times: the dilated visits
        fluxes.append(np.where(det, flux, 0.0)[keep])
        errors.append(np.where(det, err, sky)[keep])
        band_out.append(lc.band[visit][keep])
        det_out.append(det[keep])
    # unchanged light curves (no redshift) are carried over as they are
    same = ~usable & batch.ok
    for i in np.flatnonzero(same):
        lc = batch[i]
        owners.append(np.full(len(lc.time), i))
        for out, values in zip((times, fluxes, errors, band_out, det_out),
                               (lc.time, lc.flux, lc.flux_err, lc.band, lc.detected),
                               strict=True):
            out.append(values)
    return LightCurveBatch.from_observations(
        batch.survey, batch.alert_id, batch.object_id, _cat(owners, np.int64),
        _cat(times, float), _cat(fluxes, float), _cat(errors, float), _cat(band_out, np.int8),
        _cat(det_out, bool), metadata=batch.metadata, reject=reject,
        extra={**batch.extra, "redshift": z_new})


@dataclass(frozen=True)
class RedshiftConfig:
    """Settings of :func:`redshifted`: training objects moved to a higher redshift, seen
    by the same survey (avocado's augmentation, for the deeper survey's own training set).

    Parameters
    ----------
    max_z : float
        Highest new redshift (PLAsTiCC's extragalactic test objects: mostly z < 1.5).
    max_stretch : float
        ``(1 + z') / (1 + z)`` at most this: the new redshift is drawn log-uniformly in
        ``1 + z`` between ``1 + z`` and ``min(1 + max_z, max_stretch (1 + z))``.
    min_detections : int
        The survey's trigger: a copy with fewer detections never becomes an alert, so
        another ``z'`` is drawn, up to ``n_tries`` draws (then the copy is rejected,
        ``not_detected``); this is what makes the copies follow the magnitude-limited,
        test-like redshift distribution.
    n_tries : int
        Draws of ``z'`` per object.
    detection_snr : float
        A point is a detection at ``flux >= detection_snr * flux_err``.
    max_wavelength_shift : float
        A point whose source-frame wavelength ``lambda / stretch`` falls more than this
        many Angstrom below the bluest source band is not kept (no extrapolation of the
        GP beyond what the source measured).
    photoz_scale : bool
        The new host photo-z is ``z' + (photoz - z) (1 + z') / (1 + z)`` and its error
        scaled by ``(1 + z') / (1 + z)`` (photo-z errors grow as ``1 + z``).
    bandwidth : bool
        The flux gains ``(1+z')/(1+z)`` beside the distance modulus (:func:`dimming_factor`);
        False in runs recorded before the option (read back as such: the shipped ``lsst``
        0.2-0.4 and their representative figures).
    """

    max_z: float = 1.5
    max_stretch: float = 3.0
    min_detections: int = 2
    n_tries: int = 3
    detection_snr: float = 5.0
    max_wavelength_shift: float = 0.0
    bandwidth: bool = True


def visit_sky(lc) -> np.ndarray:
    """Sky noise of each point of one light curve (FLUXCAL): the point's own error where
    it is not a detection, else at most the median error of the non-detections of its
    band (the error of a detection also holds the source's photon noise).  Used to move
    objects (:func:`redshifted`) and to read a survey's depths from its light curves
    (:func:`astrot2.simulate.pointings_from_light_curves`)."""
    sky = lc.flux_err.astype(np.float64).copy()
    for band in np.unique(lc.band[lc.detected]):
        quiet = (lc.band == band) & ~lc.detected
        if quiet.any():
            own = (lc.band == band) & lc.detected
            sky[own] = np.minimum(sky[own], np.median(lc.flux_err[quiet]))
    return sky


def redshifted(batch: LightCurveBatch, amplitude: np.ndarray, length_scale: np.ndarray,
               config: RedshiftConfig, seed: int, wavelength_scale: float = 6000.0
               ) -> LightCurveBatch:
    """Training light curves as the same objects would look at a higher redshift, in the
    same survey (avocado's redshift augmentation; :func:`fainter` is the same machinery
    with ZTF's depth).

    Each extragalactic light curve (``hostgal_specz`` > 0 in ``batch.extra``: the
    training set's spectroscopic redshift, used to move the object, never as an input)
    is moved to ``z'`` (:class:`RedshiftConfig`), every visit kept at its observer-frame
    time and band, with the visit's own sky noise (:func:`visit_sky`: WFD and DDF depths
    come with the object's own visits) and the source's photon noise scaled; the source
    is read through its 2D GP at ``lambda / stretch`` and dimmed by
    :func:`dimming_factor`.  Points whose source-frame wavelength would need extrapolation are not
    kept; the others are forced photometry (detected or not, as the new flux says).  The
    host photo-z moves with the object.  Galactic objects are carried over unchanged.
    Copies with fewer than ``min_detections`` detections are rejected (``not_detected``).
    Same objects, same order; ``extra["hostgal_specz"]`` holds ``z'``.

    Parameters
    ----------
    batch : LightCurveBatch
        Training light curves (FLUXCAL; PLAsTiCC) with ``extra["hostgal_specz"]`` and the
        ``hostgal_photoz`` / ``hostgal_photoz_err`` metadata.
    amplitude, length_scale : ndarray of shape (n_objects,)
        The GP hyperparameters fitted to ``batch`` (:func:`astrot2.gp.fit_gp`).
    config : RedshiftConfig
    seed : int
    wavelength_scale : float
    """
    rng = np.random.default_rng(seed)
    n = batch.n_objects
    z = np.nan_to_num(np.asarray(batch.extra["hostgal_specz"], dtype=np.float64), nan=0.0)
    lam = batch.survey.wavelength_array
    usable = (z > 0) & np.isfinite(amplitude * length_scale) & batch.ok
    lo = np.log1p(z)
    hi = np.maximum(np.log(np.minimum(1.0 + config.max_z, config.max_stretch * (1.0 + z))), lo)
    draws = np.exp(rng.uniform(lo[:, None], hi[:, None], (n, config.n_tries))) - 1.0
    z_new = z.copy()
    owners, times, fluxes, errors, band_out, det_out = [], [], [], [], [], []
    reject = np.where(batch.ok, "", batch.reject).astype(object)
    for i in range(n):
        lc = batch[i]
        if not batch.ok[i]:
            continue
        parts = (lc.time, lc.flux, lc.flux_err, lc.band, lc.detected)
        if usable[i] and lc.detected.any():
            sky = visit_sky(lc)
            for z_try in draws[i]:
                stretch = (1.0 + z_try) / (1.0 + z[i])
                dimming = float(dimming_factor(z[i], z_try, config.bandwidth))
                visit = lam[lc.band] / stretch >= lam.min() - config.max_wavelength_shift
                flux, err, det = _reobserved(lc, visit, stretch, dimming, sky[visit], rng,
                                             lam, amplitude[i], length_scale[i],
                                             wavelength_scale, config.detection_snr)
                parts = (lc.time[visit], flux, err, lc.band[visit], det)
                z_new[i] = z_try
                if int(det.sum()) >= config.min_detections:
                    break
        if int(parts[4].sum()) < config.min_detections:
            reject[i] = "not_detected"
            continue
        owners.append(np.full(len(parts[0]), i))
        for out, values in zip((times, fluxes, errors, band_out, det_out), parts,
                               strict=True):
            out.append(values)
    photoz = np.asarray(batch.metadata["hostgal_photoz"], dtype=np.float64)
    photoz_err = np.asarray(batch.metadata["hostgal_photoz_err"], dtype=np.float64)
    moved = (1.0 + z_new) / (1.0 + z)
    metadata = {**batch.metadata,
                "hostgal_photoz": np.where(usable, z_new + (photoz - z) * moved, photoz),
                "hostgal_photoz_err": photoz_err * moved}
    return LightCurveBatch.from_observations(
        batch.survey, batch.alert_id, batch.object_id, _cat(owners, np.int64),
        _cat(times, float), _cat(fluxes, float), _cat(errors, float), _cat(band_out, np.int8),
        _cat(det_out, bool), metadata=metadata, reject=reject,
        extra={**batch.extra, "hostgal_specz": z_new})


@dataclass(frozen=True)
class TransplantConfig:
    """Settings of :func:`transplanted`: real light curves moved onto another survey's
    cadence at a higher redshift.

    Parameters
    ----------
    min_z, max_z : float
        The new redshift is drawn log-uniformly in ``1 + z`` between ``1 + max(z, min_z)``
        and ``1 + max_z`` (a source already beyond ``max_z`` is rejected, ``no_source_fit``).
    n_tries : int
        Draws of the new redshift, field and peak time until the copy has
        ``min_detections`` detections (else it is rejected, ``not_detected``).
    min_detections : int
    detection_snr : float
    max_gap : float
        A visit is kept only when its source-frame time lies within this many days of a
        source point (the GP is unconstrained in a seasonal gap: its variance, added to the
        noise, would make detections out of nothing).
    photon_noise : float
        Source photon noise ``k`` of ``sigma^2 = sigma_sky^2 + k F`` (FLUXCAL); the
        simulator's LSST value by default (:data:`astrot2.simulate.SIM_SURVEYS`).
    """

    min_z: float = 0.1
    max_z: float = 1.0
    n_tries: int = 5
    min_detections: int = 2
    detection_snr: float = 5.0
    max_gap: float = 10.0
    photon_noise: float = 0.015


def transplanted(batch: LightCurveBatch, amplitude: np.ndarray, length_scale: np.ndarray,
                 pointings: dict[str, np.ndarray], target, config: TransplantConfig,
                 seed: int, wavelength_scale: float = 6000.0) -> LightCurveBatch:
    """Real light curves as another survey would see the same objects farther away.

    Each light curve's 2D GP (fitted on its own bands) is moved from its redshift ``z``
    (``extra["redshift"]``: a label, used to move the object, never an input) to ``z' > z``
    (:class:`TransplantConfig`) and observed at every visit of a random field of
    ``pointings`` (``astrot2.simulate.pointings_from_light_curves``: e.g. PLAsTiCC's LSST
    cadences, each visit with its 5-sigma depth), its peak (the brightest source point) at
    a random time of the field's span: source-frame time ``t_peak_src + (t - t_peak) /
    stretch``, wavelength ``lambda / stretch`` (``stretch = (1+z')/(1+z)``), flux times
    :func:`dimming_factor`, noise from the visit's depth plus photon noise
    plus the GP's own variance.  Only visits whose source-frame wavelength lies within
    the wavelengths the source measured (no extrapolation: two ZTF bands give one to
    three LSST bands) and whose source-frame time is near a source point are kept;
    every kept visit is forced photometry, detected at ``detection_snr``.  Same objects,
    same order; host photo-z unknown, ``mwebv`` 0; ``extra["redshift"]`` holds ``z'`` and
    ``extra["peak_mjd"]`` the new peak time.

    Parameters
    ----------
    batch : LightCurveBatch
        Source light curves (FLUXCAL) with ``extra["redshift"]``.
    amplitude, length_scale : ndarray of shape (n_objects,)
        The GP hyperparameters fitted to ``batch`` (:func:`astrot2.gp.fit_gp`).
    pointings : dict of str to ndarray
        ``mjd``, ``band`` (indices of ``target``), ``depth``, ``field_start``.
    target : Survey
    config : TransplantConfig
    seed : int
    wavelength_scale : float

    Raises
    ------
    ValueError
        ``pointings`` without a field.
    """
    starts = pointings["field_start"]
    if len(starts) < 2:
        raise ValueError("transplanted needs pointings with at least one field")
    rng = np.random.default_rng(seed)
    n = batch.n_objects
    z = np.nan_to_num(np.asarray(batch.extra["redshift"], dtype=np.float64), nan=0.0)
    src_lam, tgt_lam = batch.survey.wavelength_array, target.wavelength_array
    z_new = np.full(n, np.nan)
    t_new = np.full(n, np.nan)
    owners, times, fluxes, errors, band_out, det_out = [], [], [], [], [], []
    reject = np.where(batch.ok, "", batch.reject).astype(object)
    for i in range(n):
        lc = batch[i]
        low = max(z[i], config.min_z)
        if not batch.ok[i] or not np.isfinite(amplitude[i] * length_scale[i]) \
                or not lc.detected.any() or not 0.0 < z[i] < config.max_z:
            reject[i] = reject[i] or "no_source_fit"
            continue
        measured = src_lam[np.unique(lc.band)]
        t_ref = lc.time[np.argmax(lc.flux)]
        for _ in range(config.n_tries):
            z_try = float(np.expm1(rng.uniform(np.log1p(low), np.log1p(config.max_z))))
            field = int(rng.integers(len(starts) - 1))
            visits = slice(starts[field], starts[field + 1])
            mjd, band = pointings["mjd"][visits], pointings["band"][visits]
            depth = pointings["depth"][visits]
            t_peak = float(rng.uniform(mjd.min(), mjd.max())) if len(mjd) else 0.0
            stretch = (1.0 + z_try) / (1.0 + z[i])
            lam = tgt_lam[band] / stretch
            t_src = t_ref + (mjd - t_peak) / stretch
            pos = np.clip(np.searchsorted(lc.time, t_src), 1, len(lc.time) - 1)
            gap = np.minimum(np.abs(t_src - lc.time[pos - 1]), np.abs(t_src - lc.time[pos]))
            kept = (lam >= measured.min()) & (lam <= measured.max()) & (gap <= config.max_gap)
            mean, var = np.zeros(len(mjd)), np.zeros(len(mjd))
            if kept.any():
                mean[kept], var[kept] = _posterior_at(
                    lc.time, src_lam[lc.band], lc.flux, lc.flux_err ** 2, t_src[kept],
                    lam[kept], amplitude[i], length_scale[i], wavelength_scale)
            dimming = float(dimming_factor(z[i], z_try))
            true = np.maximum(mean * dimming, 0.0)
            err = np.sqrt(limit_to_fluxcal_err(depth) ** 2 + config.photon_noise * true)
            flux = true + rng.normal(0.0, 1.0, len(mjd)) * np.sqrt(err ** 2
                                                                   + var * dimming ** 2)
            det = kept & (flux >= config.detection_snr * err)
            if int(det.sum()) >= config.min_detections:
                break
        else:
            reject[i] = "not_detected"
            continue
        z_new[i], t_new[i] = z_try, t_peak
        owners.append(np.full(int(kept.sum()), i))
        for out, values in zip((times, fluxes, errors, band_out, det_out),
                               (mjd, flux, err, band, det), strict=True):
            out.append(values[kept])
    nan = np.full(n, np.nan)
    metadata = {**batch.metadata, "hostgal_photoz": nan, "hostgal_photoz_err": nan,
                "mwebv": np.zeros(n)}
    return LightCurveBatch.from_observations(
        target, batch.alert_id, batch.object_id, _cat(owners, np.int64), _cat(times, float),
        _cat(fluxes, float), _cat(errors, float), _cat(band_out, np.int8),
        _cat(det_out, bool), metadata=metadata, reject=reject,
        extra={**batch.extra, "redshift": z_new, "peak_mjd": t_new})
