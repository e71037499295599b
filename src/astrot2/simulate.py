"""A ZTF survey simulator: supernova light curves from spectral templates, observed on the
real ZTF observing log (``astrot2 simulate --survey ztf --n N -o FILE.parquet``).

Recipe, per simulated object:

1. **Class and redshift** from volumetric rates: a class is drawn with probability
   ``rate x volume`` out to the largest redshift where its brightest members could still be
   seen, the redshift from the comoving volume (rate per unit time divided by ``1+z``);
   the peak absolute magnitude from the class's luminosity function (:data:`CLASSES`:
   Gaussian, Richardson et al. 2014 for core collapse; SN Ia from SALT2 with stretch and
   colour, Tripp-standardised: ``M_B = -19.3 - 0.14 x1 + 3.1 c``).
2. **Template**: SALT2 (2.4) for SNe Ia, ``x1 ~ N(0.0, 1.0)``, ``c ~ N(0.0, 0.1)``
   (clipped to the model's range); one of sncosmo's built-in Vincenzi et al. 2019 / SNANA
   core-collapse templates of the class's subtypes for SNe II and Ibc.
3. **Observations**: a random ZTF field of the observing log (760,343 real exposures,
   2018-2022, with their 5-sigma depths), a random peak time within its survey span; every
   exposure of that field in g, r, i from 30 days before the explosion window to 150 days
   after.  FLUXCAL fluxes (AB, zero point 27.5) from ``sncosmo.Model.bandflux`` through
   the ZTF bandpasses, noise ``sigma^2 = (F_5sigma / 5)^2 + k F`` (sky from the exposure's
   depth; source photon noise ``k`` = 4.4 FLUXCAL, a 17 mag point at ~0.02 mag).
4. **Alerts**: a point at >= 5 sigma is a detection; others are non-detections
   (0 +/- the exposure's F_5sigma / 5, as the ZTF alert reader turns upper limits); an
   object is kept when it has >= 2 detections and peaks brighter than ``limit_mag`` (a
   magnitude-limited sample, as BTS), from 30 days before its first detection on.

Deterministic given the seed; the object's true class, redshift, peak time and template are
in ``extra`` (labels for training and checks, never model inputs).  Templates come from
sncosmo (the ``train`` extra), which downloads them on first use; ``data_dir`` (or
``ASTROT2_SNCOSMO_DIR``) points it at a local copy (a folder in sncosmo's data layout).
Milky-Way and host extinction are not simulated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrot2.augment import distance_modulus
from astrot2.classes import CLASSES
from astrot2.errors import ConfigError, DataFetchError
from astrot2.lightcurves import LightCurveBatch
from astrot2.surveys import ZTF

__all__ = ["CLASSES_SIMULATED", "SimClass", "SimulateConfig", "read_pointings",
           "set_parameters", "simulate"]

#: Source photon noise of the noise model, FLUXCAL (a 17 mag point: sigma_m ~ 0.02).
PHOTON_NOISE = 4.4
_BANDPASSES = {"ztfg": 0, "ztfr": 1, "ztfi": 2}


@dataclass(frozen=True)
class SimClass:
    """A simulated class: its templates, volumetric rate and luminosity function.

    Parameters
    ----------
    name : str
        The model class (:data:`astrot2.classes.CLASSES` name).
    subtypes : tuple of (str, float, float, float)
        ``(sncosmo template type, share, mean M_peak, sigma)`` (B band, AB); SN Ia use
        ``SN Ia`` and SALT2.
    rate : float
        Volumetric rate at z = 0, per Mpc^3 per year.
    """

    name: str
    subtypes: tuple[tuple[str, float, float, float], ...]
    rate: float


#: Classes the simulator draws.  Rates: SN Ia 2.35e-5 (Perley et al. 2020), core collapse
#: 1.0e-4 split II 70 % / Ibc 30 % (Li et al. 2011); B-band peak LFs between the volume-
#: limited ones (Li et al. 2011) and Richardson et al. 2014's, set so the magnitude-limited
#: sample has a BTS-like mix (measured: docs/real_sky.md).
CLASSES_SIMULATED: tuple[SimClass, ...] = (
    SimClass("SNIa", (("SN Ia", 1.0, -19.3, 0.12),), 2.35e-5),
    SimClass("SNII", (("SN IIP", 0.70, -16.7, 1.0), ("SN II", 0.10, -17.4, 0.9),
                      ("SN IIn", 0.05, -17.9, 1.0), ("SN IIb", 0.15, -16.7, 0.9)), 7.0e-5),
    SimClass("SNIbc", (("SN Ib", 0.45, -16.9, 0.9), ("SN Ic", 0.47, -17.0, 0.9),
                       ("SN Ic-BL", 0.08, -17.8, 0.7)), 3.0e-5),
)


@dataclass(frozen=True)
class SimulateConfig:
    """Settings of :func:`simulate`.

    Parameters
    ----------
    limit_mag : float
        Kept objects peak at least this bright (apparent, any band).
    z_max : float
        Largest redshift drawn.
    classes : tuple of str
        Names of :data:`CLASSES_SIMULATED` to draw (default all).
    history : float
        Days of non-detections kept before the first detection.
    after : float
        Days after the peak simulated.
    """

    limit_mag: float = 19.5
    z_max: float = 0.3
    classes: tuple[str, ...] = ("SNIa", "SNII", "SNIbc")
    history: float = 30.0
    after: float = 150.0

    def __post_init__(self) -> None:
        known = {c.name for c in CLASSES_SIMULATED}
        if not self.classes or set(self.classes) - known:
            raise ConfigError(f"classes must be among {sorted(known)}, got {self.classes}")


def read_pointings(path: str | Path) -> dict[str, np.ndarray]:
    """The ZTF observing log (``expMJD, filter, fiveSigmaDepth, _ra, _dec``), grouped by field.

    Returns
    -------
    dict
        ``mjd``, ``band`` (ZTF band index), ``depth`` (5-sigma mag), ``field`` (field index
        of each exposure, exposures sorted by field then time) and ``field_start``
        (offsets: field ``k`` holds exposures ``field_start[k]:field_start[k+1]``).
    """
    from pyarrow import csv

    table = csv.read_csv(path)
    ra = np.round(table.column("_ra").to_numpy(), 4)
    dec = np.round(table.column("_dec").to_numpy(), 4)
    _, field = np.unique(np.stack([ra, dec], axis=1), axis=0, return_inverse=True)
    field = field.ravel()
    mjd = table.column("expMJD").to_numpy()
    order = np.lexsort((mjd, field))
    bands = np.array([_BANDPASSES.get(f, -1) for f in
                      table.column("filter").to_pylist()], np.int8)
    counts = np.bincount(field)
    return {"mjd": mjd[order], "band": bands[order],
            "depth": table.column("fiveSigmaDepth").to_numpy()[order],
            "field": field[order],
            "field_start": np.concatenate([[0], np.cumsum(counts)])}


def _templates(names: tuple[str, ...]) -> dict[str, list[tuple[str, str | None]]]:
    """sncosmo's registered sources (name, version) by template type (not loaded yet)."""
    import sncosmo

    registry = sncosmo.registry._get_registry(sncosmo.Source)
    out: dict[str, list[tuple[str, str | None]]] = {}
    wanted = {s[0] for c in CLASSES_SIMULATED if c.name in names for s in c.subtypes}
    for meta in registry.get_loaders_metadata():
        kind = meta.get("type")
        if kind in wanted and kind != "SN Ia":
            out.setdefault(kind, []).append((meta["name"], meta.get("version")))
    out["SN Ia"] = [("salt2", "2.4")]
    return {k: sorted(set(v), key=str) for k, v in out.items()}


def set_parameters(model, subtype: tuple[str, float, float, float], z: float,
                   rng: np.random.Generator) -> float:
    """Draw an object's parameters into an sncosmo ``model`` (``t0 = 0``); return its
    peak absolute B magnitude (AB).

    SN Ia (SALT2): ``x1 ~ N(0, 1)`` and ``c ~ N(0, 0.1)`` (clipped to +-3, +-0.3),
    ``M_B = N(mean, sigma) - 0.14 x1 + 3.1 c``; other templates: ``M_B = N(mean, sigma)``.
    """
    kind, _, mean, sigma = subtype
    # sncosmo scales the current amplitude to reach a peak magnitude: start it from 1 so the
    # result never depends on the object simulated before with the same template
    model.set(**{model.source.param_names[0]: 1.0})
    if kind == "SN Ia":
        x1 = float(np.clip(rng.normal(0.0, 1.0), -3, 3))
        c = float(np.clip(rng.normal(0.0, 0.1), -0.3, 0.3))
        model.set(z=z, t0=0.0, x1=x1, c=c)
        m_abs = rng.normal(mean, sigma) - 0.14 * x1 + 3.1 * c
    else:
        model.set(z=z, t0=0.0)
        m_abs = rng.normal(mean, sigma)
    model.set_source_peakabsmag(m_abs, "bessellb", "ab")
    return float(m_abs)


def simulate(n: int, pointings: dict[str, np.ndarray], config: SimulateConfig | None = None,
             seed: int = 0, *, data_dir: str | Path | None = None) -> LightCurveBatch:
    """Simulate ``n`` ZTF light curves of supernovae (see the module docstring).

    Parameters
    ----------
    n : int
        Light curves kept (objects that fail the cuts are redrawn).
    pointings : dict
        :func:`read_pointings` of the observing log.
    config : SimulateConfig, optional
    seed : int
    data_dir : str or Path, optional
        sncosmo's data folder (default ``ASTROT2_SNCOSMO_DIR``, else the cache's
        ``sncosmo/`` of ``astrot2 data fetch sncosmo``, else sncosmo's own).

    Returns
    -------
    LightCurveBatch
        ZTF light curves; ``extra``: ``target`` (PLAsTiCC code), ``type`` (template type),
        ``template``, ``redshift``, ``peak_mjd``, ``source`` = ``simulated``.
    """
    try:
        import sncosmo
    except ImportError as exc:
        raise DataFetchError("astrot2 simulate needs sncosmo: pip install 'astrot2[train]'"
                             ) from exc
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    config = config or SimulateConfig()
    data_dir = data_dir or os.environ.get("ASTROT2_SNCOSMO_DIR")
    if data_dir is None:
        from astrot2.data import default_data_dir

        cached = default_data_dir() / "sncosmo"  # astrot2 data fetch sncosmo
        data_dir = cached if cached.is_dir() else None
    if data_dir:
        sncosmo.conf.data_dir = str(data_dir)
    templates = _templates(config.classes)
    classes = [c for c in CLASSES_SIMULATED if c.name in config.classes]
    rng = np.random.default_rng(seed)
    z_grid = np.linspace(1e-3, config.z_max, 600)
    mu_grid = distance_modulus(z_grid)
    # comoving volume element x rate time dilation, per class out to its visible limit
    dvdz = np.gradient((10 ** ((mu_grid - 25) / 5) / (1 + z_grid)) ** 3, z_grid) / (1 + z_grid)
    weights, cdfs = [], []
    for c in classes:
        brightest = min(m - 3 * s for _, _, m, s in c.subtypes)
        visible = mu_grid + brightest <= config.limit_mag + 0.5
        w = np.where(visible, dvdz, 0.0)
        weights.append(c.rate * w.sum())
        cdfs.append(np.cumsum(w) / w.sum())
    p_class = np.array(weights) / np.sum(weights)
    n_fields = len(pointings["field_start"]) - 1
    models: dict[str, object] = {}
    codes = {c.name: c.code for c in CLASSES}
    ids, owner, time, flux, err, band, det, info = [], [], [], [], [], [], [], []
    while len(ids) < n:
        k = rng.choice(len(classes), p=p_class)
        cls = classes[k]
        z = float(np.interp(rng.random(), cdfs[k], z_grid))
        sub = cls.subtypes[rng.choice(len(cls.subtypes), p=[s[1] for s in cls.subtypes])]
        names = templates.get(sub[0])
        if not names:
            continue
        name, version = names[rng.integers(len(names))]
        if name not in models:
            try:
                models[name] = sncosmo.Model(source=sncosmo.get_source(name, version=version))
            except Exception:  # a template sncosmo cannot obtain here: never drawn again
                names.remove((name, version))
                continue
        model = models[name]
        m_abs = set_parameters(model, sub, z, rng)
        if m_abs + np.interp(z, z_grid, mu_grid) > config.limit_mag + 0.5:
            continue  # too faint to be kept whatever its colour: no flux to compute
        field = rng.integers(n_fields)
        s, e = pointings["field_start"][field], pointings["field_start"][field + 1]
        mjd = pointings["mjd"][s:e]
        if len(mjd) < 10:
            continue
        t_peak = rng.uniform(mjd[0], mjd[-1])
        lo, hi = model.mintime(), model.maxtime()
        sel = ((mjd >= t_peak + lo - config.history) & (mjd <= t_peak + min(hi, config.after))
               & (pointings["band"][s:e] >= 0))
        if sel.sum() < 2:
            continue
        t = mjd[sel]
        b = pointings["band"][s:e][sel]
        depth = pointings["depth"][s:e][sel]
        inside = (t - t_peak > lo) & (t - t_peak < hi)
        true = np.zeros(len(t))
        bp = np.array(list(_BANDPASSES))[b]
        if inside.any():
            true[inside] = np.maximum(model.bandflux(bp[inside], t[inside] - t_peak, zp=27.5,
                                                     zpsys="ab"), 0.0)
        if 27.5 - 2.5 * np.log10(max(true.max(), 1e-9)) > config.limit_mag:
            continue
        sky = 10 ** (-0.4 * (depth - 27.5)) / 5.0
        sigma = np.sqrt(sky ** 2 + PHOTON_NOISE * true)
        measured = true + rng.normal(0.0, 1.0, len(t)) * sigma
        detected = measured >= 5.0 * sigma
        if detected.sum() < 2:
            continue
        keep = t >= t[detected].min() - config.history
        i = len(ids)
        ids.append(f"sim{seed}_{i:07d}")
        owner.append(np.full(keep.sum(), i))
        time.append(t[keep])
        flux.append(np.where(detected, measured, 0.0)[keep])
        err.append(np.where(detected, sigma, sky)[keep])
        band.append(b[keep])
        det.append(detected[keep])
        grid = t_peak + np.linspace(lo, min(hi, 100.0), 200)
        peak = grid[np.argmax(model.bandflux("ztfr", grid - t_peak, zp=27.5, zpsys="ab"))]
        info.append((codes[cls.name], sub[0], name, z, peak))
    extra = {"target": np.array([r[0] for r in info], np.int64),
             "type": np.array([r[1] for r in info], dtype=object),
             "template": np.array([r[2] for r in info], dtype=object),
             "redshift": np.array([r[3] for r in info]),
             "peak_mjd": np.array([r[4] for r in info]),
             "source": np.full(len(info), "simulated", dtype=object)}
    return LightCurveBatch.from_observations(
        ZTF, ids, ids, np.concatenate(owner), np.concatenate(time), np.concatenate(flux),
        np.concatenate(err), np.concatenate(band).astype(np.int8),
        np.concatenate(det), extra=extra)
