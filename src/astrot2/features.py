"""The preprocessing seam: GP fits -> model inputs, defined once for training and inference.

The lesson of the deployed t2 (REFERENCE): accuracy is decided here (normalisation, bands,
windowing), so this module is torch-free, used unchanged by training and by the runtime,
and its :class:`FeatureConfig` is stored in every model manifest.

Inputs of a model, per light curve:

- ``x`` (n_steps, n_channels), float32: the GP mean on the grid for each band (and, with
  ``use_std``, the GP std, capped at 5), divided by a per-object scale = the largest
  |GP mean| over the grid and the bands the model uses (so 1 at peak whatever the
  distance or survey depth);
- ``extra`` (n_extra,), float32: ``log10`` of that scale (brightness, FLUXCAL), and with
  ``use_redshift`` the host photo-z and its error (0 when unknown, plus a flag).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from astrot2.errors import ConfigError
from astrot2.gp import STATUS_SKIPPED, GPConfig, GPResult, fit_gp
from astrot2.lightcurves import LightCurveBatch

__all__ = ["BAND_STATS", "GP_STATS", "MAX_RELATIVE_STD", "FeatureConfig", "build_inputs",
           "feature_names", "gp_summary_features", "gp_summary_names",
           "light_curve_statistics", "prepare", "prepare_with_statistics", "select_bands",
           "shape_features", "standardised_statistics", "summary_features"]

#: Cap of the GP std channels, in units of the light curve's peak |GP mean|.
MAX_RELATIVE_STD = 5.0


@dataclass(frozen=True)
class FeatureConfig:
    """How GP fits become model inputs.

    Parameters
    ----------
    bands : tuple of str
        Survey bands fed to the model, in order (e.g. ``("g", "r")`` for the ZTF model).
    use_std : bool
        Add the GP std of each band as channels.
    use_brightness : bool
        Add ``log10`` of the peak |GP mean| (FLUXCAL) to the extra features.  Off for
        models that must transfer to a survey of another depth.
    use_redshift : bool
        Add host photo-z, its error and a "known" flag to the extra features.
    statistics_center, statistics_scale : tuple of float
        With them (one per column of :func:`light_curve_statistics`), the extra features
        also hold those statistics of the raw points and of the GP (colours, slopes,
        ages: scale-free), standardised by these values (fitted on the training views),
        clipped to +-5, missing ones 0, then one "missing" flag per statistic.  Empty:
        not used.
    """

    bands: tuple[str, ...] = ("u", "g", "r", "i", "z", "y")
    use_std: bool = False
    use_brightness: bool = True
    use_redshift: bool = True
    statistics_center: tuple[float, ...] = ()
    statistics_scale: tuple[float, ...] = ()
    gp_statistics: bool = False
    #: settings absent from older manifests, and the value they mean there
    OPTIONAL: ClassVar[dict[str, object]] = {"gp_statistics": False}

    def __post_init__(self) -> None:
        if not self.bands:
            raise ConfigError("FeatureConfig.bands must name at least one band")
        if len(self.statistics_center) != len(self.statistics_scale):
            raise ConfigError("FeatureConfig.statistics_center and statistics_scale must "
                              "have the same length")

    @property
    def use_statistics(self) -> bool:
        """Whether the light-curve statistics are extra inputs."""
        return bool(self.statistics_center)

    @property
    def use_luminosity(self) -> bool:
        """Whether features may read absolute luminosity: brightness and host photo-z."""
        return self.use_brightness and self.use_redshift

    @property
    def n_channels(self) -> int:
        """Channels per time step."""
        return len(self.bands) * (2 if self.use_std else 1)

    @property
    def n_extra(self) -> int:
        """Extra per-object features."""
        return ((1 if self.use_brightness else 0) + (3 if self.use_redshift else 0)
                + 2 * len(self.statistics_center))

    def to_dict(self) -> dict[str, object]:
        """Plain dict, for manifests."""
        return asdict(self)


def select_bands(batch: LightCurveBatch, config: FeatureConfig) -> LightCurveBatch:
    """Keep only the observations in the model's bands (the GP is fitted on those alone).

    Raises
    ------
    ConfigError
        If a band of the model is not a band of the batch's survey.
    """
    survey = batch.survey
    missing = [b for b in config.bands if b not in survey.bands]
    if missing:
        raise ConfigError(f"bands {missing} are not bands of survey {survey.name!r} "
                          f"({survey.bands})")
    wanted = np.array([survey.bands.index(b) for b in config.bands])
    if len(wanted) == survey.n_bands:
        return batch
    return batch.keep_points(np.isin(batch.band, wanted))


def build_inputs(
    batch: LightCurveBatch, gp: GPResult, config: FeatureConfig,
    statistics: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs for every light curve.

    Parameters
    ----------
    batch : LightCurveBatch
        The light curves (for metadata).
    gp : GPResult
        ``fit_gp(batch)``.
    config : FeatureConfig
    statistics : ndarray, optional
        :func:`light_curve_statistics` of ``batch`` and ``gp`` with ``config``, when the
        caller has them already (computed here otherwise).

    Returns
    -------
    x : ndarray of float32, shape (n_objects, n_steps, n_channels)
    extra : ndarray of float32, shape (n_objects, n_extra)
        Rows of skipped light curves (no GP) are zeros; callers reject those alerts.
    """
    survey = batch.survey
    missing = [b for b in config.bands if b not in survey.bands]
    if missing:
        raise ConfigError(f"bands {missing} are not bands of survey {survey.name!r} "
                          f"({survey.bands})")
    idx = [survey.bands.index(b) for b in config.bands]
    mean = gp.mean[:, :, idx]  # (n, T, nb)
    absmean = np.where(np.isfinite(mean), np.abs(mean), -np.inf)
    scale = absmean.max(axis=(1, 2)) if mean.size else np.zeros(0)  # -inf: no GP
    ok = np.isfinite(scale) & (scale > 0)
    scale = np.where(ok, scale, 1.0)
    channels = [mean / scale[:, None, None]]
    if config.use_std:
        # std relative to the peak; far from the data it tends to the GP amplitude, which
        # can dwarf the peak: capped at MAX_RELATIVE_STD.
        std = gp.std[:, :, idx] / scale[:, None, None]
        channels.append(np.minimum(std, MAX_RELATIVE_STD))
    x = np.concatenate(channels, axis=2)
    extra = [np.log10(scale)] if config.use_brightness else []
    if config.use_redshift:
        z = batch.metadata["hostgal_photoz"]
        z_err = batch.metadata["hostgal_photoz_err"]
        known = np.isfinite(z)
        extra += [np.where(known, z, 0.0), np.where(np.isfinite(z_err), z_err, 0.0),
                  known.astype(np.float64)]
    extra_arr = np.column_stack(extra) if extra else np.zeros((len(scale), 0))
    if config.use_statistics:
        if statistics is None:
            statistics = light_curve_statistics(batch, gp, config.bands, config)
        extra_arr = np.column_stack([extra_arr, standardised_statistics(statistics, config)])
    x[~ok] = 0.0
    extra_arr[~ok] = 0.0
    # finite values lie in [-1, 1] (mean) and [0, MAX_RELATIVE_STD] (std) already; an
    # overflowed GP point (+-inf, e.g. a flux of -1.8e308) must not reach float32 as inf
    x = np.clip(np.nan_to_num(x), -MAX_RELATIVE_STD, MAX_RELATIVE_STD)
    return x.astype(np.float32), extra_arr.astype(np.float32)


def standardised_statistics(stats: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """:func:`light_curve_statistics` as model inputs: standardised by the config's
    centre and scale, clipped to +-5, missing values 0, then one missing flag per column.

    Returns
    -------
    ndarray of float64, shape (n_objects, 2 * n_statistics)
    """
    center = np.asarray(config.statistics_center)
    scale = np.asarray(config.statistics_scale)
    missing = ~np.isfinite(stats)
    with np.errstate(invalid="ignore"):
        z = np.clip((stats - center) / scale, -5.0, 5.0)
    return np.column_stack([np.where(missing, 0.0, z), missing.astype(np.float64)])


def prepare(
    batch: LightCurveBatch, gp_config: GPConfig, config: FeatureConfig,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, LightCurveBatch, GPResult]:
    """The whole seam, as training and inference both run it.

    Band selection, GP fit (``n_threads`` workers, default all cores; the result does not
    depend on it), model inputs.  Returns ``x``, ``extra`` (see :func:`build_inputs`), the
    band-selected batch and its GP result.
    """
    return prepare_with_statistics(batch, gp_config, config, n_threads)[:4]


def prepare_with_statistics(
    batch: LightCurveBatch, gp_config: GPConfig, config: FeatureConfig,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, LightCurveBatch, GPResult, np.ndarray | None]:
    """:func:`prepare`, and the :func:`light_curve_statistics` the extra inputs were
    standardised from (None for a network without statistics inputs), so that the feature
    companion reads them instead of computing them again."""
    selected = select_bands(batch, config)
    gp = fit_gp(selected, gp_config, n_threads=n_threads)
    stats = (light_curve_statistics(selected, gp, config.bands, config)
             if config.use_statistics else None)
    x, extra = build_inputs(selected, gp, config, stats)
    return x, extra, selected, gp, stats


#: Per-band statistics of :func:`summary_features`, in order.
BAND_STATS = ("max", "min", "mean", "std", "max_snr", "n_detections", "detected_days")


def feature_names(bands: tuple[str, ...] | list[str], n_extra: int) -> list[str]:
    """Names of the columns of :func:`summary_features`."""
    return [f"{b}_{s}" for b in bands for s in BAND_STATS] + ["n_points"] + [
        f"extra_{k}" for k in range(n_extra)]


def summary_features(selected: LightCurveBatch, extra: np.ndarray,
                     bands: tuple[str, ...] | list[str]) -> np.ndarray:
    """Per-light-curve statistics of the raw points, the companion's inputs.

    Per band: the maximum, minimum, mean and standard deviation of the flux divided by
    the light curve's peak flux over all ``bands`` (NaN when that peak is not positive),
    the largest signal-to-noise ratio, the number of detections and the days between the
    first and the last detection (NaN without one); then the number of points and the
    network's ``extra`` inputs.  NaN marks a missing value (a band without points), which
    the trees route explicitly.

    Parameters
    ----------
    selected : LightCurveBatch
        Light curves restricted to the model's bands (:func:`astrot2.features.prepare`).
    extra : ndarray, shape (n_objects, n_extra)
        The network's extra inputs for the same light curves.
    bands : sequence of str
        The model's bands.

    Returns
    -------
    ndarray of float32, shape (n_objects, len(feature_names(bands, n_extra)))
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        # extreme inputs overflow to +-inf or NaN: both become "missing" below
        out = _statistics(selected, extra, bands).astype(np.float32)
    out[~np.isfinite(out)] = np.nan
    return out


def _statistics(selected: LightCurveBatch, extra: np.ndarray,
                bands: tuple[str, ...] | list[str]) -> np.ndarray:
    """The columns of :func:`summary_features`, float64, possibly non-finite.

    Every statistic is one reduction over an ``(n_obs, n_bands)`` array (a light curve's
    points, masked per band): a handful of NumPy calls whatever the number of bands.
    """
    peak = selected.reduce(selected.flux, np.fmax)
    peak = np.where(peak > 0, peak, np.nan)
    relative = selected.flux / np.repeat(peak, np.diff(selected.offsets))
    snr = selected.flux / selected.flux_err
    idx = np.array([selected.survey.bands.index(b) for b in bands])
    in_band = selected.band[:, None] == idx[None, :]  # (n_obs, n_bands)
    detected = in_band & selected.detected[:, None]
    f = np.where(in_band, relative[:, None], np.nan)
    f0 = np.nan_to_num(f)
    t_det = np.where(detected, selected.time[:, None], np.nan)
    reduce = selected.reduce
    n = reduce(in_band.astype(float), np.add, 0.0)
    mean = reduce(f0, np.add, 0.0) / n
    var = reduce(f0 ** 2, np.add, 0.0) / n - mean ** 2
    stats = [reduce(f, np.fmax), reduce(f, np.fmin), mean, np.sqrt(np.maximum(var, 0.0)),
             reduce(np.where(in_band, snr[:, None], np.nan), np.fmax),
             reduce(detected.astype(float), np.add, 0.0),
             reduce(t_det, np.fmax) - reduce(t_det, np.fmin)]  # each (n, n_bands)
    per_band = np.stack(stats, axis=2).reshape(len(peak), len(BAND_STATS) * len(idx))
    return np.column_stack([per_band, np.diff(selected.offsets).astype(float),
                            np.asarray(extra, dtype=np.float64)])


#: The GP shape statistics of :func:`shape_features`, in order.
GP_STATS = ("colour_last", "colour_peak", "slope_first_band", "slope_last_band",
            "days_since_first_detection", "days_since_peak")


def shape_features(selected: LightCurveBatch, gp: GPResult, bands: tuple[str, ...] | list[str]
                   ) -> np.ndarray:
    """Colours, slopes and ages of each light curve from its GP mean (scale-free).

    With the first two ``bands`` (e.g. g, r): the colour (mag) at the last observation and
    at the observed peak of the second band, the slope (mag/day) of the first and of the
    last band over the 5 days before the last observation, the days from the first
    detection and from the observed peak to the last observation.  NaN where undefined
    (no GP, a non-positive GP mean).

    Returns
    -------
    ndarray of float64, shape (n_objects, len(GP_STATS))
    """
    idx = [selected.survey.bands.index(b) for b in bands]
    a, b = idx[0], idx[min(1, len(idx) - 1)]
    times = gp.times
    n = len(selected)
    out = np.full((n, len(GP_STATS)), np.nan)
    if n == 0 or times.size == 0:
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = -2.5 * np.log10(np.where(gp.mean > 0, gp.mean, np.nan))
    last = selected.reduce(selected.time, np.fmax)
    first = selected.reduce(np.where(selected.detected, selected.time, np.nan), np.fmin)
    rows = np.arange(n)
    dist = np.abs(times - last[:, None])
    i_last = np.argmin(np.where(np.isfinite(dist), dist, np.inf), axis=1)
    dist5 = np.abs(times - (last - 5.0)[:, None])
    i_5 = np.argmin(np.where(np.isfinite(dist5), dist5, np.inf), axis=1)
    observed = np.where(times <= last[:, None], np.nan_to_num(gp.mean[:, :, b], nan=-np.inf),
                        -np.inf)
    i_peak = observed.argmax(axis=1)
    dt = times[rows, i_last] - times[rows, i_5]
    dt = np.where(dt > 0, dt, np.nan)
    out[:, 0] = mag[rows, i_last, a] - mag[rows, i_last, b]
    out[:, 1] = mag[rows, i_peak, a] - mag[rows, i_peak, b]
    out[:, 2] = (mag[rows, i_last, a] - mag[rows, i_5, a]) / dt
    out[:, 3] = (mag[rows, i_last, b] - mag[rows, i_5, b]) / dt
    out[:, 4] = last - first
    out[:, 5] = last - times[rows, i_peak]
    out[gp.status == STATUS_SKIPPED] = np.nan
    return out


def light_curve_statistics(selected: LightCurveBatch, gp: GPResult,
                           bands: tuple[str, ...] | list[str],
                           config: FeatureConfig | None = None) -> np.ndarray:
    """:func:`summary_features` of the raw points (without extra inputs) and
    :func:`shape_features` of the GP, side by side; NaN marks a missing value.

    Returns
    -------
    ndarray of float64, shape (n_objects, n_bands * len(BAND_STATS) + 1 + len(GP_STATS))
    """
    points = summary_features(selected, np.zeros((len(selected), 0)), bands)
    out = np.column_stack([points.astype(np.float64), shape_features(selected, gp, bands)])
    if config is None or not config.gp_statistics:
        return out
    return np.column_stack([out, gp_summary_features(selected, gp, bands,
                                                     config.use_luminosity)])


#: Days after the GP peak at which :func:`gp_summary_features` reads each band's flux.
GP_EPOCHS = (-10.0, 0.0, 20.0, 40.0)
#: The band-free columns of :func:`gp_summary_features`, in order (then, with
#: ``luminosity``, :data:`GP_LUMINOSITY`).
GP_SUMMARY = ("rise_50", "fall_50", "rise_20", "fall_20", "log_length_scale",
              "peak_to_last", "first_detection_to_peak")
#: The host photo-z columns of :func:`gp_summary_features`.
GP_LUMINOSITY = ("peak_absolute_mag", "rest_rise_50", "rest_fall_50")
#: Host photo-z above this is read as unknown by :func:`gp_summary_features`: one absurd
#: value must not stretch the distance-modulus grid of the batch.  PLAsTiCC's reach 3.0,
#: their representative copies (catastrophic outliers moved farther) stay below 9.
MAX_PHOTOZ = 10.0


def gp_summary_names(bands: tuple[str, ...] | list[str], luminosity: bool) -> list[str]:
    """Names of the columns of :func:`gp_summary_features`."""
    epochs = [f"{b}_gp_{'m' if e < 0 else 'p'}{abs(e):g}" for e in GP_EPOCHS for b in bands]
    return epochs + [f"{b}_gp_peak_delay" for b in bands] + [f"gp_{s}" for s in GP_SUMMARY] + (
        [f"gp_{s}" for s in GP_LUMINOSITY] if luminosity else [])


def _crossing(total: np.ndarray, times: np.ndarray, i_peak: np.ndarray, level: float,
              after: bool) -> np.ndarray:
    """Days between the peak of ``total`` (n, T) and where it last crosses ``level`` times
    its peak value before it (``after`` False) or first after it, linearly interpolated
    on the grid; NaN where it never does inside the grid."""
    n, n_steps = total.shape
    rows = np.arange(n)
    steps = np.arange(n_steps)
    low = total < level * total[rows, i_peak][:, None]
    side = steps[None, :] > i_peak[:, None] if after else steps[None, :] < i_peak[:, None]
    hit = low & side
    found = hit.any(axis=1)
    if after:
        j = np.argmax(hit, axis=1)  # first low point after the peak
        k = np.maximum(j - 1, 0)    # the last point above the level
    else:
        j = n_steps - 1 - np.argmax(hit[:, ::-1], axis=1)  # last low point before it
        k = np.minimum(j + 1, n_steps - 1)
    target = level * total[rows, i_peak]
    f_j, f_k = total[rows, j], total[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip((target - f_j) / (f_k - f_j), 0.0, 1.0)
    t = times[rows, j] + frac * (times[rows, k] - times[rows, j])
    return np.where(found, np.abs(t - times[rows, i_peak]), np.nan)


def _grid_at(values: np.ndarray, times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``values`` (n, T, k) on the grid ``times`` (n, T) at one time ``t`` (n,) per row,
    linear between grid points (clamped at the ends): shape (n, k)."""
    rows = np.arange(len(t))
    j = np.clip((times < t[:, None]).sum(axis=1), 1, times.shape[1] - 1)
    t0, t1 = times[rows, j - 1], times[rows, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.clip(np.where(t1 > t0, (t - t0) / (t1 - t0), 0.0), 0.0, 1.0)
    return values[rows, j - 1] * (1.0 - w)[:, None] + values[rows, j] * w[:, None]


def gp_summary_features(selected: LightCurveBatch, gp: GPResult,
                        bands: tuple[str, ...] | list[str], luminosity: bool) -> np.ndarray:
    """Shape of each light curve's GP around its peak: colours, timescales, luminosity.

    The GP mean summed over ``bands`` (the bolometric-like curve) peaks at grid time
    ``t_peak``.  Per band: the flux at ``t_peak`` + each of :data:`GP_EPOCHS` days (linear
    in the grid) divided by the largest band flux at ``t_peak`` (the spectral shape and its
    evolution: colours), and the days from ``t_peak`` to the band's own peak.  Then the days
    the summed curve takes to rise from and fall to 50 % and 20 % of its peak, ``log10`` of
    the GP's time length-scale, and the days from ``t_peak`` to the last point and from the
    first detection to ``t_peak``.  With ``luminosity`` (models reading absolute
    brightness and host photo-z), where the photo-z is known (0 < z <= :data:`MAX_PHOTOZ`):
    the peak absolute magnitude
    ``27.5 - 2.5 log10(peak) - mu(photo-z)`` and the 50 % rise and fall in the rest frame.
    NaN marks a missing value (no GP, no crossing inside the grid, no photo-z).  The
    distance modulus is integrated on a grid up to the batch's largest photo-z (error below
    1e-4 mag, :func:`astrot2.photometry.distance_modulus`).

    Parameters
    ----------
    selected : LightCurveBatch
        Light curves restricted to the model's bands.
    gp : GPResult
        Their GP fits (:func:`astrot2.features.prepare`).
    bands : sequence of str
    luminosity : bool

    Returns
    -------
    ndarray of float32, shape (n_objects, len(gp_summary_names(bands, luminosity)))
    """
    from astrot2.photometry import FLUXCAL_ZEROPOINT, distance_modulus

    n = len(selected)
    names = gp_summary_names(bands, luminosity)
    if n == 0 or gp.times.size == 0:
        return np.full((n, len(names)), np.nan, dtype=np.float32)
    idx = [selected.survey.bands.index(b) for b in bands]
    mean = np.nan_to_num(gp.mean[:, :, idx].astype(np.float64))  # (n, T, nb)
    times = gp.times.astype(np.float64)
    rows = np.arange(n)
    total = mean.sum(axis=2)
    i_peak = total.argmax(axis=1)
    t_peak = times[rows, i_peak]
    with np.errstate(divide="ignore", invalid="ignore"):
        peak_bands = mean[rows, i_peak]                        # (n, nb)
        scale = np.max(peak_bands, axis=1)
        scale = np.where(scale > 0, scale, np.nan)
        cols = []
        for epoch in GP_EPOCHS:
            t = t_peak + epoch
            inside = (t >= times[:, 0]) & (t <= times[:, -1])
            cols.append(np.where(inside[:, None], _grid_at(mean, times, t) / scale[:, None],
                                 np.nan))
        cols.append(times[rows[:, None], mean.argmax(axis=1)] - t_peak[:, None])
        last = selected.reduce(selected.time, np.fmax)
        first = selected.reduce(np.where(selected.detected, selected.time, np.nan), np.fmin)
        rise_50, fall_50 = (_crossing(total, times, i_peak, 0.5, a) for a in (False, True))
        rise_20, fall_20 = (_crossing(total, times, i_peak, 0.2, a) for a in (False, True))
        summary = [rise_50, fall_50, rise_20, fall_20, np.log10(gp.length_scale),
                   last - t_peak, t_peak - first]
        if luminosity:
            z = np.asarray(selected.metadata["hostgal_photoz"], dtype=np.float64)
            known = np.isfinite(z) & (z > 0) & (z <= MAX_PHOTOZ)
            mu = distance_modulus(np.where(known, z, 0.0))
            stretch = np.where(known, 1.0 + z, np.nan)
            summary += [np.where(known, FLUXCAL_ZEROPOINT - 2.5 * np.log10(scale) - mu, np.nan),
                        rise_50 / stretch, fall_50 / stretch]
        out = np.column_stack([*cols, *summary])
    out[gp.status == STATUS_SKIPPED] = np.nan
    out[~np.isfinite(out)] = np.nan
    return out.astype(np.float32)
