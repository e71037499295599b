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

import numpy as np

from astrot2.errors import ConfigError
from astrot2.gp import GPConfig, GPResult, fit_gp
from astrot2.lightcurves import LightCurveBatch

__all__ = ["MAX_RELATIVE_STD", "FeatureConfig", "build_inputs", "prepare", "select_bands"]

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
    """

    bands: tuple[str, ...] = ("u", "g", "r", "i", "z", "y")
    use_std: bool = False
    use_brightness: bool = True
    use_redshift: bool = True

    def __post_init__(self) -> None:
        if not self.bands:
            raise ConfigError("FeatureConfig.bands must name at least one band")

    @property
    def n_channels(self) -> int:
        """Channels per time step."""
        return len(self.bands) * (2 if self.use_std else 1)

    @property
    def n_extra(self) -> int:
        """Extra per-object features."""
        return (1 if self.use_brightness else 0) + (3 if self.use_redshift else 0)

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
    keep = np.isin(batch.band, wanted)
    return LightCurveBatch.from_observations(
        survey, batch.alert_id, batch.object_id, batch.owner[keep], batch.time[keep],
        batch.flux[keep], batch.flux_err[keep], batch.band[keep], batch.detected[keep],
        metadata=batch.metadata, reject=batch.reject, extra=batch.extra)


def build_inputs(
    batch: LightCurveBatch, gp: GPResult, config: FeatureConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs for every light curve.

    Parameters
    ----------
    batch : LightCurveBatch
        The light curves (for metadata).
    gp : GPResult
        ``fit_gp(batch)``.
    config : FeatureConfig

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
    x[~ok] = 0.0
    extra_arr[~ok] = 0.0
    return np.nan_to_num(x).astype(np.float32), extra_arr.astype(np.float32)


def without_redshift_inputs(extra: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """``extra`` inputs (:func:`build_inputs`) as they are for an unknown host photo-z.

    The photo-z, its error and the "known" flag (the last three columns with
    ``use_redshift``) become 0, what :func:`build_inputs` gives a light curve without
    them; the brightness column is kept.  A copy; unchanged without ``use_redshift``.
    """
    out = np.array(extra, copy=True)
    if config.use_redshift:
        out[:, -3:] = 0.0
    return out


def prepare(
    batch: LightCurveBatch, gp_config: GPConfig, config: FeatureConfig,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, LightCurveBatch, GPResult]:
    """The whole seam, as training and inference both run it.

    Band selection, GP fit (``n_threads`` workers, default all cores; the result does not
    depend on it), model inputs.  Returns ``x``, ``extra`` (see :func:`build_inputs`), the
    band-selected batch and its GP result.
    """
    selected = select_bands(batch, config)
    gp = fit_gp(selected, gp_config, n_threads=n_threads)
    x, extra = build_inputs(selected, gp, config)
    return x, extra, selected, gp
