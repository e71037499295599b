"""A survey simulator: supernova light curves from spectral templates, observed on a survey's
cadence: ZTF's real observing log (``astrot2 simulate --survey ztf --n N -o FILE.parquet``)
or LSST's, as PLAsTiCC simulated it (``--survey lsst``).

Recipe, per simulated object (survey-dependent settings in :data:`SIM_SURVEYS`):

1. **Class and redshift** from volumetric rates: a class is drawn with probability
   ``rate x volume`` out to the largest redshift where its brightest members could still be
   seen, the redshift from the comoving volume (rate per unit time divided by ``1+z``;
   LSST: rates growing as ``(1+z)^1.5`` SN Ia, ``(1+z)^2.7`` core collapse); the peak
   absolute magnitude from the class's luminosity function (:data:`CLASSES`: Gaussian,
   Richardson et al. 2014 for core collapse; SN Ia from SALT2 with stretch and colour,
   Tripp-standardised: ``M_B = -19.3 - 0.14 x1 + 3.1 c``).
2. **Template**: SALT2 (2.4) for SNe Ia, ``x1 ~ N(0.0, 1.0)``, ``c ~ N(0.0, 0.1)``
   (clipped to the model's range), or Hsiao's template (``ia_model``); one of sncosmo's
   built-in Vincenzi et al. 2019 / SNANA core-collapse templates of the class's subtypes
   for SNe II and Ibc.
3. **Observations**: a random field and a random peak time within its span; every visit
   of that field from 30 days before the explosion window to 150 days after (or every
   visit of the field, ``span="survey"``, as PLAsTiCC's light curves).  ZTF: the
   fields of the observing log (760,343 real exposures in g, r, i, 2018-2022, with their
   5-sigma depths, :func:`read_pointings`).  LSST: each PLAsTiCC training object's visits
   are a field (u..y, WFD and DDF, the depth of each visit from its sky noise,
   :func:`pointings_from_light_curves`).  FLUXCAL fluxes (AB, zero point 27.5) from
   ``sncosmo.Model.bandflux`` through the survey's bandpasses (bands bluer than the
   template: no flux; redder: not kept), noise ``sigma^2 = (F_5sigma / 5)^2 + k F`` (sky
   from the visit's depth; source photon noise ``k`` = 4.4 FLUXCAL for ZTF, a 17 mag
   point at ~0.02 mag; 0.015 for LSST).
4. **Alerts**: a point at >= 5 sigma is a detection; an object is kept when it has >= 2
   detections and peaks brighter than ``limit_mag``, from 30 days before its first
   detection on.  ZTF: non-detections are 0 +/- the exposure's F_5sigma / 5 (as the ZTF
   alert reader turns upper limits), ``limit_mag`` 19.5 (a magnitude-limited sample, as
   BTS), z <= 0.3.  LSST: forced photometry (non-detections keep their measured flux and
   error), ``limit_mag`` 26 (no cut beyond the 2-detection trigger), z <= 1.5, a host
   photo-z ``z + N(0, 0.03 (1+z))`` with error ``0.03 (1+z)`` in ``metadata``
   (PLAsTiCC's columns; ``mwebv`` 0), the true redshift as ``extra["hostgal_specz"]``.

Measured (LSST, seed 0, 2,000 kept objects): SN Ia 36.4 %, SN II 47.1 %, SN Ibc 16.6 %;
redshift median 0.60, 90th percentile 1.11 (SN Ia 0.72); 60 % on DDF cadences (27 % of
PLAsTiCC's training objects are DDF; DDF objects are kept deeper).

Speed: candidates are drawn 1,024 at a time and the cuts known from the draws alone (peak
absolute magnitude vs distance, a field's visit count, no visit inside the template) reject
them before any sncosmo call; objects come in chunks of :data:`CHUNK` with random streams of
their own, shared among ``workers`` processes (the output does not depend on their number).
About 3 ms per kept ZTF object and 6 ms per LSST object on one core, plus ~9 s to load the
templates (``python -m benchmarks.simulate``; docs/real_sky.md).

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

from astrot2.augment import visit_sky
from astrot2.classes import CLASSES
from astrot2.errors import ConfigError, DataFetchError
from astrot2.lightcurves import LightCurveBatch
from astrot2.photometry import distance_modulus, limit_to_fluxcal_err
from astrot2.surveys import LSST, ZTF, Survey
from astrot2.templates import LATE_DECAY, TemplateGrid

__all__ = ["CLASSES_SIMULATED", "IA_MODELS", "SIM_SURVEYS", "SPANS", "TEMPLATE_FAMILIES",
           "SimClass", "SimSurvey",
           "SimulateConfig", "cc_grid", "pointings_from_light_curves", "read_pointings",
           "salt2_grid", "set_parameters", "simulate"]

#: Source photon noise of the ZTF noise model, FLUXCAL (a 17 mag point: sigma_m ~ 0.02).
PHOTON_NOISE = 4.4


@dataclass(frozen=True)
class SimSurvey:
    """How a survey observes and alerts (one row of :data:`SIM_SURVEYS`).

    Parameters
    ----------
    survey : Survey
        The survey of the light curves written (band order).
    bandpasses : tuple of str
        sncosmo bandpass of each band of ``survey``, in its order.
    limit_mag : float
        Default of :attr:`SimulateConfig.limit_mag`.
    z_max : float
        Default of :attr:`SimulateConfig.z_max`.
    photon_noise : float
        Source photon noise ``k`` of ``sigma^2 = sigma_sky^2 + k F`` (FLUXCAL).
    forced_photometry : bool
        Non-detections keep their measured flux and error (Rubin's forced photometry);
        else they become ``0 +/- F_5sigma / 5`` (ZTF's upper limits).
    photoz_scatter : float or None
        Host photo-z ``z + N(0, s (1 + z))`` with error ``s (1 + z)``; None: no host
        photo-z (NaN, as real ZTF alerts).
    rate_evolution : bool
        Rates grow as ``(1 + z)^rate_index`` (:class:`SimClass`); off for ZTF (z <= 0.3),
        the recipe of the shipped model's simulated training file.
    """

    survey: Survey
    bandpasses: tuple[str, ...]
    limit_mag: float
    z_max: float
    photon_noise: float
    forced_photometry: bool
    photoz_scatter: float | None
    rate_evolution: bool


#: The simulated surveys.  LSST: photon noise from Rubin's r zero point (28.36 mag for
#: 1 e-/s, 30 s visits: 0.015 FLUXCAL per photo-electron; PLAsTiCC's own detections give
#: a median 0.012); ``limit_mag`` 26 is deeper than any single visit (DDF r median 25.6),
#: so the 2-detection trigger alone selects; photo-z scatter 0.03 (1 + z), about the LSST
#: science requirement for hosts (PLAsTiCC's catastrophic outliers are not simulated).
SIM_SURVEYS: dict[str, SimSurvey] = {
    "ztf": SimSurvey(ZTF, ("ztfg", "ztfr", "ztfi"), limit_mag=19.5, z_max=0.3,
                     photon_noise=PHOTON_NOISE, forced_photometry=False,
                     photoz_scatter=None, rate_evolution=False),
    "lsst": SimSurvey(LSST, ("lsstu", "lsstg", "lsstr", "lssti", "lsstz", "lssty"),
                      limit_mag=26.0, z_max=1.5, photon_noise=0.015,
                      forced_photometry=True, photoz_scatter=0.03, rate_evolution=True),
}


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
    rate_index : float
        The rate grows as ``(1 + z)^rate_index`` (where the survey simulates it).
    """

    name: str
    subtypes: tuple[tuple[str, float, float, float], ...]
    rate: float
    rate_index: float = 0.0


#: Classes the simulator draws.  Rates: SN Ia 2.35e-5 (Perley et al. 2020), core collapse
#: 1.0e-4 split II 70 % / Ibc 30 % (Li et al. 2011); B-band peak LFs between the volume-
#: limited ones (Li et al. 2011) and Richardson et al. 2014's, set so the magnitude-limited
#: sample has a BTS-like mix (measured: docs/real_sky.md).  Rate evolution: SN Ia
#: ``(1 + z)^1.5`` (Dilday et al. 2008), core collapse ``(1 + z)^2.7`` (the star formation
#: history of Madau & Dickinson 2014 below its turnover; up to 1.4x high at z = 1.5).
CLASSES_SIMULATED: tuple[SimClass, ...] = (
    SimClass("SNIa", (("SN Ia", 1.0, -19.3, 0.12),), 2.35e-5, 1.5),
    SimClass("SNII", (("SN IIP", 0.70, -16.7, 1.0), ("SN II", 0.10, -17.4, 0.9),
                      ("SN IIn", 0.05, -17.9, 1.0), ("SN IIb", 0.15, -16.7, 0.9)), 7.0e-5,
             2.7),
    SimClass("SNIbc", (("SN Ib", 0.45, -16.9, 0.9), ("SN Ic", 0.47, -17.0, 0.9),
                       ("SN Ic-BL", 0.08, -17.8, 0.7)), 3.0e-5, 2.7),
)


#: Core-collapse template families :class:`SimulateConfig` draws from (SNe Ia: SALT2 in
#: all): every one, Vincenzi et al. 2019's (sncosmo names ``v19-*``), or the others (SNANA,
#: Nugent, Sako et al. 2011).  Two simulations of disjoint families: one to learn from, one
#: to check on, whose core-collapse supernovae the model never saw.
TEMPLATE_FAMILIES = ("all", "v19", "classic")

#: SN Ia models :class:`SimulateConfig` draws from (sncosmo name, version): SALT2 2.4
#: (Betoule et al. 2014) with its stretch and colour, or Hsiao et al. 2007's single
#: spectral time series (one shape and colour; the same luminosity function).  A check
#: simulation on the other model tells whether what a model learned about SNe Ia is
#: SALT2's or the supernovae's.
IA_MODELS = {"salt2": ("salt2", "2.4"), "hsiao": ("hsiao", "3.0")}

#: Which visits an object is observed at (:class:`SimulateConfig` ``span``): ``template``,
#: from ``history`` days before the template starts to the earlier of its end and
#: ``after`` days past the peak (an alert stream's view); ``survey``, every visit of the
#: field, no source flux outside the template (PLAsTiCC's light curves: a field's whole
#: ~3 years of forced photometry; LSST only).
SPANS = ("template", "survey")


@dataclass(frozen=True)
class SimulateConfig:
    """Settings of :func:`simulate`.

    Parameters
    ----------
    survey : str
        A :data:`SIM_SURVEYS` name: its bands, noise and alert rules.
    limit_mag : float, optional
        Kept objects peak at least this bright (apparent, any band); default the
        survey's (ZTF 19.5, a BTS-like sample; LSST 26, no cut beyond the trigger).
    z_max : float, optional
        Largest redshift drawn; default the survey's (ZTF 0.3, LSST 1.5).
    classes : tuple of str
        Names of :data:`CLASSES_SIMULATED` to draw (default all).
    history : float
        Days of non-detections kept before the first detection.
    after : float
        Days after the peak simulated.
    templates : str
        The core-collapse templates drawn, one of :data:`TEMPLATE_FAMILIES`.  A subtype
        without a template of the family is never drawn (its candidates are redrawn), so
        the class mix changes with the family (``v19`` has no template typed SN IIP).
    span : str
        The visits observed, one of :data:`SPANS` (``survey``: LSST only).
    ia_model : str
        The SN Ia model, a key of :data:`IA_MODELS`.  ``x1, c`` are drawn for either and
        set the peak magnitude (Tripp) for either; only SALT2 takes them as its shape and
        colour.
    """

    survey: str = "ztf"
    limit_mag: float | None = None
    z_max: float | None = None
    classes: tuple[str, ...] = ("SNIa", "SNII", "SNIbc")
    history: float = 30.0
    after: float = 150.0
    templates: str = "all"
    ia_model: str = "salt2"
    span: str = "template"

    def __post_init__(self) -> None:
        known = {c.name for c in CLASSES_SIMULATED}
        if not self.classes or set(self.classes) - known:
            raise ConfigError(f"classes must be among {sorted(known)}, got {self.classes}")
        if self.templates not in TEMPLATE_FAMILIES:
            raise ConfigError(f"templates must be one of {TEMPLATE_FAMILIES}, got "
                              f"{self.templates!r}")
        if self.ia_model not in IA_MODELS:
            raise ConfigError(f"ia_model must be one of {sorted(IA_MODELS)}, got "
                              f"{self.ia_model!r}")
        if self.survey not in SIM_SURVEYS:
            raise ConfigError(f"survey must be one of {sorted(SIM_SURVEYS)}, got "
                              f"{self.survey!r}")
        if self.span not in SPANS or (self.span == "survey" and self.survey != "lsst"):
            raise ConfigError(f"span must be one of {SPANS} ('survey' for lsst only), got "
                              f"{self.span!r} for {self.survey}")
        sim = SIM_SURVEYS[self.survey]
        for name in ("limit_mag", "z_max"):  # the survey's default where not given
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(sim, name))
        if not 0.0 < self.z_max <= 3.0:
            raise ConfigError(f"z_max must be in (0, 3], got {self.z_max}")


def read_pointings(path: str | Path) -> dict[str, np.ndarray]:
    """The ZTF observing log (``expMJD, filter, fiveSigmaDepth, _ra, _dec``), grouped by field.

    Returns
    -------
    dict
        ``mjd``, ``band`` (ZTF band index), ``depth`` (5-sigma mag), ``field`` (field index
        of each exposure, exposures sorted by field then time), ``field_start``
        (offsets: field ``k`` holds exposures ``field_start[k]:field_start[k+1]``) and
        ``survey`` (``["ztf"]``).
    """
    from pyarrow import csv

    table = csv.read_csv(path)
    ra = np.round(table.column("_ra").to_numpy(), 4)
    dec = np.round(table.column("_dec").to_numpy(), 4)
    _, field = np.unique(np.stack([ra, dec], axis=1), axis=0, return_inverse=True)
    field = field.ravel()
    mjd = table.column("expMJD").to_numpy()
    order = np.lexsort((mjd, field))
    bandpasses = {name: i for i, name in enumerate(SIM_SURVEYS["ztf"].bandpasses)}
    bands = np.array([bandpasses.get(f, -1) for f in
                      table.column("filter").to_pylist()], np.int8)
    counts = np.bincount(field)
    return {"mjd": mjd[order], "band": bands[order],
            "depth": table.column("fiveSigmaDepth").to_numpy()[order],
            "field": field[order],
            "field_start": np.concatenate([[0], np.cumsum(counts)]),
            "survey": np.array(["ztf"])}


def pointings_from_light_curves(batch: LightCurveBatch) -> dict[str, np.ndarray]:
    """A survey's cadence and depths read from its own light curves (e.g. PLAsTiCC's
    training set for LSST): each light curve's visits become one field.

    A visit's 5-sigma depth is ``27.5 - 2.5 log10(5 sigma_sky)``, its sky noise
    ``sigma_sky`` (FLUXCAL) the visit's own flux error where it is not a detection, else
    the median error of the object's non-detections in that band
    (:func:`astrot2.augment.visit_sky`).  WFD and DDF come with the objects.

    Parameters
    ----------
    batch : LightCurveBatch
        Light curves of the survey, forced photometry included (FLUXCAL).

    Returns
    -------
    dict
        As :func:`read_pointings`: ``mjd``, ``band``, ``depth``, ``field``,
        ``field_start`` (= ``batch.offsets``), ``survey``; per field ``ddf_bool`` (1.0 deep
        drilling, NaN unknown) and ``cadence_id`` (the light curve's object id).
    """
    sky = [visit_sky(batch[i]) for i in range(batch.n_objects)]
    sky = np.concatenate(sky) if sky else np.zeros(0)
    n = batch.n_objects
    ddf = batch.extra.get("ddf_bool", np.full(n, np.nan))
    return {"mjd": batch.time.copy(), "band": batch.band.copy(),
            "depth": 27.5 - 2.5 * np.log10(5.0 * sky),
            "field": np.repeat(np.arange(n), np.diff(batch.offsets)),
            "field_start": batch.offsets.copy(), "survey": np.array([batch.survey.name]),
            "ddf_bool": np.asarray(ddf, dtype=np.float64),
            "cadence_id": np.asarray(batch.object_id, dtype=object)}


def _templates(names: tuple[str, ...], family: str = "all", ia_model: str = "salt2"
               ) -> dict[str, list[tuple[str, str | None]]]:
    """sncosmo's registered sources (name, version) by template type (not loaded yet):
    ``ia_model`` (:data:`IA_MODELS`) for SNe Ia, the core-collapse ones of ``family``
    (:data:`TEMPLATE_FAMILIES`)."""
    import sncosmo

    registry = sncosmo.registry._get_registry(sncosmo.Source)
    out: dict[str, list[tuple[str, str | None]]] = {}
    wanted = {s[0] for c in CLASSES_SIMULATED if c.name in names for s in c.subtypes}
    for meta in registry.get_loaders_metadata():
        kind = meta.get("type")
        v19 = meta["name"].startswith("v19-")
        if family != "all" and v19 != (family == "v19"):
            continue
        if kind in wanted and kind != "SN Ia":
            out.setdefault(kind, []).append((meta["name"], meta.get("version")))
    out["SN Ia"] = [IA_MODELS[ia_model]]
    return {k: sorted(set(v), key=str) for k, v in out.items()}


#: Templates sncosmo could not obtain, by data folder: ``(data_dir, name, version)``.
_UNOBTAINABLE: set[tuple[str, str, str | None]] = set()


def _obtainable(templates: dict[str, list[tuple[str, str | None]]]
                ) -> dict[str, list[tuple[str, str | None]]]:
    """The templates sncosmo can load here, by type (each loaded once per process:
    sncosmo's registry keeps it; one it cannot obtain is remembered and never drawn).

    Resolved before any object is drawn, so that every chunk of :func:`simulate` draws from
    the same lists whichever process runs it.
    """
    import sncosmo

    out = {}
    for kind, names in templates.items():
        out[kind] = []
        for name, version in names:
            key = (str(sncosmo.conf.data_dir), name, version)
            if key in _UNOBTAINABLE:
                continue
            try:
                sncosmo.get_source(name, version=version)
            except Exception:  # a template sncosmo cannot obtain here: never drawn
                _UNOBTAINABLE.add(key)
                continue
            out[kind].append((name, version))
    return out


def _draw_salt2(rng: np.random.Generator) -> tuple[float, float]:
    """SALT2 stretch and colour: ``x1 ~ N(0, 1)``, ``c ~ N(0, 0.1)``, clipped to +-3, +-0.3."""
    x1 = float(np.clip(rng.normal(0.0, 1.0), -3, 3))
    c = float(np.clip(rng.normal(0.0, 0.1), -0.3, 0.3))
    return x1, c


def _distmod(z: np.ndarray) -> np.ndarray:
    """Distance modulus of ``z`` in sncosmo's default cosmology (WMAP9), the one of its
    ``set_source_peakabsmag`` (an array at once: ~20x faster than one by one)."""
    from astropy.cosmology import WMAP9

    return np.asarray(WMAP9.distmod(z).value, dtype=np.float64)


def _set_model(model, z: float, m_abs: float, dm: float,
               salt2: tuple[float, float] | None = None, unit_mag: float | None = None
               ) -> None:
    """Put an object into an sncosmo ``model`` (``t0 = 0``): redshift, SALT2 ``(x1, c)``, and
    the amplitude that makes its rest-frame peak B magnitude (AB) ``m_abs`` at distance
    modulus ``dm`` (:func:`_distmod` of ``z``).

    The amplitude is sncosmo's ``set_source_peakabsmag(m_abs, "bessellb", "ab")`` from
    amplitude 1, so it never depends on the object simulated before with the same model.
    ``unit_mag``: the source's peak B magnitude at amplitude 1 when already known (a
    template without parameters: the same for all its objects).
    """
    model.set(**{model.source.param_names[0]: 1.0})
    if salt2 is None:
        model.set(z=z, t0=0.0)
    else:
        model.set(z=z, t0=0.0, x1=salt2[0], c=salt2[1])
    if unit_mag is None:
        unit_mag = float(model.source.peakmag("bessellb", "ab"))
    model.set(**{model.source.param_names[0]: 10.0 ** (0.4 * (unit_mag - m_abs - dm))})


def set_parameters(model, subtype: tuple[str, float, float, float], z: float,
                   rng: np.random.Generator) -> float:
    """Draw an object's parameters into an sncosmo ``model`` (``t0 = 0``); return its
    peak absolute B magnitude (AB).

    SN Ia (SALT2): ``x1 ~ N(0, 1)`` and ``c ~ N(0, 0.1)`` (clipped to +-3, +-0.3),
    ``M_B = N(mean, sigma) - 0.14 x1 + 3.1 c``; other templates: ``M_B = N(mean, sigma)``.
    The model's amplitude follows from ``M_B`` alone (never from the object set before).
    """
    kind, _, mean, sigma = subtype
    if kind == "SN Ia":
        x1, c = _draw_salt2(rng)
        m_abs = float(rng.normal(mean, sigma) - 0.14 * x1 + 3.1 * c)
        _set_model(model, z, m_abs, float(_distmod(z)), (x1, c))
    else:
        m_abs = float(rng.normal(mean, sigma))
        _set_model(model, z, m_abs, float(_distmod(z)))
    return m_abs


#: Per-field columns of the pointings copied into ``extra`` of the objects seen there.
_FIELD_COLUMNS = ("ddf_bool", "cadence_id")


def _redshift_law(classes: list[SimClass], sim: SimSurvey, config: SimulateConfig
                  ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray]:
    """Class probabilities, and per class the redshift CDF on a grid: rate x comoving volume
    element / (1 + z), out to where the class's brightest members could still be kept.

    Returns
    -------
    p_class : ndarray of shape (n_classes,)
    cdfs : list of ndarray of shape (n_grid,)
    z_grid, mu_grid : ndarray of shape (n_grid,)
        Redshifts and their distance moduli.
    """
    z_grid = np.linspace(1e-3, config.z_max, 600)
    mu_grid = distance_modulus(z_grid)
    # comoving volume element x rate time dilation, per class out to its visible limit
    dvdz = np.gradient((10 ** ((mu_grid - 25) / 5) / (1 + z_grid)) ** 3, z_grid) / (1 + z_grid)
    weights, cdfs = [], []
    for c in classes:
        brightest = min(m - 3 * s for _, _, m, s in c.subtypes)
        visible = mu_grid + brightest <= config.limit_mag + 0.5
        w = np.where(visible, dvdz, 0.0)
        if sim.rate_evolution:
            w = w * (1 + z_grid) ** c.rate_index
        weights.append(c.rate * w.sum())
        cdfs.append(np.cumsum(w) / w.sum())
    return np.array(weights) / np.sum(weights), cdfs, z_grid, mu_grid


#: Kept objects per chunk.  Chunk ``k`` draws from its own random streams (children of
#: ``SeedSequence(seed, spawn_key=(k,))``), so the output depends on the seed alone, never
#: on how many processes share the chunks.
CHUNK = 100

#: Candidate objects drawn at once (vectorised) within a chunk.
_BATCH = 1024

#: Flux (FLUXCAL) below which a light curve counts as no flux at all: 50 mag.
_FLUX_FLOOR = 1e-9


@dataclass(frozen=True)
class _Plan:
    """Everything a chunk of :func:`simulate` needs (sent once to each worker process)."""

    sim: SimSurvey
    config: SimulateConfig
    seed: int
    classes: tuple[SimClass, ...]
    templates: dict[str, list[tuple[str, str | None]]]  # obtainable, by template type
    p_class: np.ndarray  # (n_classes,)
    cdfs: list[np.ndarray]  # per class, (n_grid,)
    z_grid: np.ndarray  # (n_grid,)
    mu_grid: np.ndarray  # (n_grid,)
    pointings: dict[str, np.ndarray]
    edges: np.ndarray  # (2, n_bands): the bandpasses' wavelength ranges
    peak_band: str  # sncosmo bandpass of the peak_mjd label


@dataclass(frozen=True)
class _Draws:
    """Candidate objects drawn at once, each ``(size,)``; ``passes``: those that survive the
    cuts known before any flux (an available template, a peak absolute magnitude that could
    reach ``limit_mag + 0.5`` at its distance, a field with >= 10 visits)."""

    cls: np.ndarray
    subtype: np.ndarray
    template: np.ndarray
    z: np.ndarray
    x1: np.ndarray
    c: np.ndarray
    m_abs: np.ndarray
    dm: np.ndarray  # sncosmo's distance modulus (:func:`_distmod`), NaN where not passes
    field: np.ndarray
    t_peak: np.ndarray
    passes: np.ndarray


def _draw(plan: _Plan, rng: np.random.Generator, size: int) -> _Draws:
    """Draw ``size`` candidates: class by rate x visible volume, redshift from its CDF,
    subtype by share, a template uniformly, SALT2 ``x1, c`` (:func:`_draw_salt2`; used by
    SNe Ia), ``M_B`` from the subtype's Gaussian (Tripp-shifted for SNe Ia), a field, and a
    peak time uniform over the field's span."""
    cls = rng.choice(len(plan.classes), size=size, p=plan.p_class)
    u_z, u_sub, u_tpl, u_t = rng.random((4, size))
    x1 = np.clip(rng.normal(0.0, 1.0, size), -3, 3)
    c = np.clip(rng.normal(0.0, 0.1, size), -0.3, 0.3)
    eps = rng.normal(0.0, 1.0, size)
    field = rng.integers(len(plan.pointings["field_start"]) - 1, size=size)
    z, subtype = np.zeros(size), np.zeros(size, np.int64)
    mean, sigma, ia, n_tpl = (np.zeros(size) for _ in range(4))
    for k, sim_class in enumerate(plan.classes):
        mine = cls == k
        z[mine] = np.interp(u_z[mine], plan.cdfs[k], plan.z_grid)
        shares = np.cumsum([s[1] for s in sim_class.subtypes])
        sub = np.minimum(np.searchsorted(shares / shares[-1], u_sub[mine], side="right"),
                         len(shares) - 1)
        subtype[mine] = sub
        table = np.array([(m, s, kind == "SN Ia", len(plan.templates.get(kind, ())))
                          for kind, _, m, s in sim_class.subtypes])
        mean[mine], sigma[mine], ia[mine], n_tpl[mine] = table[sub].T
    m_abs = mean + sigma * eps + ia * (-0.14 * x1 + 3.1 * c)
    start = plan.pointings["field_start"][field]
    n_visits = plan.pointings["field_start"][field + 1] - start
    mjd = plan.pointings["mjd"]  # (a field without visits fails, whatever its times)
    first = mjd[np.minimum(start, len(mjd) - 1)]
    last = mjd[np.clip(start + n_visits - 1, 0, len(mjd) - 1)]
    mu = np.interp(z, plan.z_grid, plan.mu_grid)
    passes = (n_tpl > 0) & (m_abs + mu <= plan.config.limit_mag + 0.5) & (n_visits >= 10)
    dm = np.full(size, np.nan)
    dm[passes] = _distmod(z[passes])
    template = np.minimum((u_tpl * n_tpl).astype(np.int64), np.maximum(n_tpl - 1, 0))
    return _Draws(cls, subtype, template.astype(np.int64), z, x1, c, m_abs, dm, field,
                  first + u_t * (last - first), passes)


def _too_faint(peak_flux: float, limit_mag: float) -> bool:
    """Whether a light curve peaking at ``peak_flux`` (FLUXCAL) fails ``limit_mag``."""
    return 27.5 - 2.5 * np.log10(max(peak_flux, _FLUX_FLOOR)) > limit_mag


def _window(model, visits: dict[str, np.ndarray], t_peak: float, config: SimulateConfig,
            edges: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """The visits an object is observed at (``model``'s redshift set; its amplitude not
    needed): from ``history`` days before the template starts to ``after`` days past the
    peak (``span="survey"``: every visit), in the bands not redder than the template.

    Bands the template does not cover: redder ones are not kept (the source is bright
    there, and unknown), bluer ones get no source flux (rest-frame far UV, far under any
    visit's depth).  ``edges`` (2, n_bands): the survey's bandpass wavelength ranges.

    Returns
    -------
    tuple of ndarray or None
        ``time, band, depth, inside`` (``inside``: within the template's phases and
        wavelengths), or None when the object fails the cuts whatever its brightness: fewer
        than 2 visits, or none inside (no flux: fainter than any ``limit_mag``).
    """
    mjd, band, depth = visits["mjd"], visits["band"], visits["depth"]
    lo, hi = model.mintime(), model.maxtime()
    covered = (edges[0] >= model.minwave()) & (edges[1] <= model.maxwave())
    redder = edges[1] > model.maxwave()
    sel = (band >= 0) & ~redder[band]
    if config.span == "template":
        sel &= (mjd >= t_peak + lo - config.history) & (mjd <= t_peak + min(hi, config.after))
    if sel.sum() < 2:
        return None
    t, b = mjd[sel], band[sel]
    inside = (t - t_peak > lo) & (t - t_peak < hi) & covered[b]
    if not inside.any() and _too_faint(0.0, config.limit_mag):
        return None
    return t, b, depth[sel], inside


def _observe(model, seen: tuple[np.ndarray, ...], t_peak: float, sim: SimSurvey,
             config: SimulateConfig, rng: np.random.Generator) -> tuple[np.ndarray, ...] | None:
    """One object's fluxes at the visits of :func:`_window` (``seen``), with noise.

    Returns
    -------
    tuple of ndarray or None
        ``time, flux, flux_err, band, detected`` of the kept points, or None when the
        object fails the cuts (fewer than 2 detections, peak fainter than ``limit_mag``).
    """
    t, b, depth, inside = seen
    true = np.zeros(len(t))
    if inside.any():
        bp = np.array(sim.bandpasses)[b[inside]]
        true[inside] = np.maximum(model.bandflux(bp, t[inside] - t_peak, zp=27.5,
                                                 zpsys="ab"), 0.0)
    if _too_faint(true.max(), config.limit_mag):
        return None
    sky = limit_to_fluxcal_err(depth)
    sigma = np.sqrt(sky ** 2 + sim.photon_noise * true)
    measured = true + rng.normal(0.0, 1.0, len(t)) * sigma
    detected = measured >= 5.0 * sigma
    if detected.sum() < 2:
        return None
    keep = (t >= t[detected].min() - config.history if config.span == "template"
            else np.ones(len(t), bool))
    if not sim.forced_photometry:  # upper limits: 0 +/- F_5sigma / 5
        measured, sigma = np.where(detected, measured, 0.0), np.where(detected, sigma, sky)
    return t[keep], measured[keep], sigma[keep], b[keep], detected[keep]


#: This process's sncosmo models by template ``(name, version)``, each with its source's
#: peak B magnitude at amplitude 1 where that holds for all its objects (None: SALT2, whose
#: depends on ``x1, c``).  Every object resets the parameters it uses (:func:`_set_model`).
_MODELS: dict[tuple[str, str | None], tuple[object, float | None]] = {}


def _model(name: str, version: str | None) -> tuple[object, float | None]:
    """This process's model of template ``name`` and its peak B magnitude at amplitude 1
    (made once, :data:`_MODELS`)."""
    if (name, version) not in _MODELS:
        import sncosmo

        model = sncosmo.Model(source=sncosmo.get_source(name, version=version))
        unit_mag = None
        if "x1" not in model.source.param_names:
            model.set(**{model.source.param_names[0]: 1.0})
            unit_mag = float(model.source.peakmag("bessellb", "ab"))
        _MODELS[name, version] = (model, unit_mag)
    return _MODELS[name, version]


def _simulate_object(plan: _Plan, draws: _Draws, i: int, rng: np.random.Generator
                     ) -> tuple[tuple[np.ndarray, ...], dict] | None:
    """Candidate ``i`` of ``draws`` observed (noise and photo-z from ``rng``): its points
    and labels, or None when it fails the cuts."""
    sim, config = plan.sim, plan.config
    sim_class = plan.classes[draws.cls[i]]
    kind = sim_class.subtypes[draws.subtype[i]][0]
    name, version = plan.templates[kind][draws.template[i]]
    model, unit_mag = _model(name, version)
    z, t_peak, field = float(draws.z[i]), float(draws.t_peak[i]), int(draws.field[i])
    s, e = plan.pointings["field_start"][field], plan.pointings["field_start"][field + 1]
    visits = {key: plan.pointings[key][s:e] for key in ("mjd", "band", "depth")}
    model.set(z=z, t0=0.0)
    seen = _window(model, visits, t_peak, config, plan.edges)
    if seen is None:
        return None
    salt2 = ((float(draws.x1[i]), float(draws.c[i]))
             if kind == "SN Ia" and config.ia_model == "salt2" else None)
    _set_model(model, z, float(draws.m_abs[i]), float(draws.dm[i]), salt2, unit_mag)
    points = _observe(model, seen, t_peak, sim, config, rng)
    if points is None:
        return None
    lo, hi = model.mintime(), model.maxtime()
    grid = t_peak + np.linspace(lo, min(hi, 100.0), 200)
    peak = grid[np.argmax(model.bandflux(plan.peak_band, grid - t_peak, zp=27.5,
                                         zpsys="ab"))]
    row = {"target": {c.name: c.code for c in CLASSES}[sim_class.name], "type": kind,
           "template": name, "redshift": z, "peak_mjd": peak}
    row.update({col: plan.pointings[col][field] for col in _FIELD_COLUMNS
                if col in plan.pointings})
    if sim.photoz_scatter is not None:  # the host's photo-z: z + N(0, s (1 + z))
        scatter = sim.photoz_scatter * (1.0 + z)
        row["hostgal_photoz"] = max(z + rng.normal(0.0, scatter), 1e-3)  # 0: galactic
        row["hostgal_photoz_err"] = scatter
    return points, row


def _simulate_chunk(plan: _Plan, chunk: int, size: int
                    ) -> list[tuple[tuple[np.ndarray, ...], dict]]:
    """``size`` kept objects of chunk ``chunk``: candidates from one stream, their noise and
    photo-z from another (both children of ``SeedSequence(seed, spawn_key=(chunk,))``)."""
    streams = np.random.SeedSequence(plan.seed, spawn_key=(chunk,)).spawn(2)
    draw_rng, noise_rng = (np.random.default_rng(s) for s in streams)
    kept: list[tuple[tuple[np.ndarray, ...], dict]] = []
    while len(kept) < size:
        draws = _draw(plan, draw_rng, _BATCH)
        for i in np.flatnonzero(draws.passes):
            obj = _simulate_object(plan, draws, int(i), noise_rng)
            if obj is not None:
                kept.append(obj)
                if len(kept) == size:
                    break
    return kept


#: The plan of the worker process (set by :func:`_start_worker`).
_WORKER_PLAN: list[_Plan] = []


def _start_worker(plan: _Plan, data_dir: str | None) -> None:
    """A worker process's start: its plan, and sncosmo's data folder.  Ctrl-C and SIGTERM
    are the parent's to handle (it stops the pool); a worker inherits neither handler."""
    import signal

    import sncosmo

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if data_dir:
        sncosmo.conf.data_dir = data_dir
    _WORKER_PLAN[:] = [plan]


def _run_chunk(task: tuple[int, int]) -> list[tuple[tuple[np.ndarray, ...], dict]]:
    """Chunk ``task = (chunk, size)`` in a worker process."""
    return _simulate_chunk(_WORKER_PLAN[0], *task)


def _run_chunks(plan: _Plan, tasks: list[tuple[int, int]], workers: int,
                data_dir: str | None) -> list[tuple[tuple[np.ndarray, ...], dict]]:
    """Every chunk's kept objects, in chunk order: in this process (``workers`` 1 or one
    chunk), else in a pool of ``workers`` processes (forked where the system can: they
    share the loaded templates and pointings)."""
    import multiprocessing

    workers = min(workers, len(tasks))
    if workers == 1:
        return [obj for task in tasks for obj in _simulate_chunk(plan, *task)]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(
            workers, initializer=_start_worker, initargs=(plan, data_dir)) as pool:
        kept = [obj for part in pool.imap(_run_chunk, tasks) for obj in part]
        pool.close()  # workers end on their own (leaving the block terminates them)
        pool.join()
    return kept


def _import_sncosmo(what: str):
    """The sncosmo module, or :class:`DataFetchError` saying that ``what`` needs it."""
    try:
        import sncosmo
    except ImportError as exc:
        raise DataFetchError(f"{what} needs sncosmo: pip install 'astrot2[train]'") from exc
    return sncosmo


def _source(name: str, version: str | None = None):
    """sncosmo's source ``name``, or :class:`DataFetchError` when it cannot be obtained."""
    import sncosmo

    try:
        return sncosmo.get_source(name, version=version)
    except Exception as exc:  # sncosmo raises several kinds when it cannot download
        raise DataFetchError(f"sncosmo could not obtain {name}"
                             f"{'' if version is None else ' ' + version}: {exc}") from exc


def _use_data_dir(data_dir: str | Path | None) -> str | Path | None:
    """Point sncosmo at its data folder: ``data_dir``, else ``ASTROT2_SNCOSMO_DIR``, else
    the cache's ``sncosmo/`` of ``astrot2 data fetch sncosmo``, else sncosmo's own (None).
    Returns the folder chosen."""
    import sncosmo

    data_dir = data_dir or os.environ.get("ASTROT2_SNCOSMO_DIR")
    if data_dir is None:
        from astrot2.data import default_data_dir

        cached = default_data_dir() / "sncosmo"  # astrot2 data fetch sncosmo
        data_dir = cached if cached.is_dir() else None
    if data_dir:
        sncosmo.conf.data_dir = str(data_dir)
    return data_dir


#: The SALT2 grid of :func:`salt2_grid`: redshifts, colours, rest-frame phases (days).
SALT2_GRID = {"z": np.geomspace(0.03, 1.3, 32), "c": np.linspace(-0.3, 0.5, 9),
              "phase": (-20.0, 1.0, 71)}


def salt2_grid(survey: str, data_dir: str | Path | None = None) -> TemplateGrid:
    """SALT2's band fluxes through ``survey``'s bandpasses on :data:`SALT2_GRID`, for
    :func:`astrot2.templates.template_features` (a few seconds; sncosmo and astropy).

    Band fluxes are sncosmo's (zero point 27.5, AB) at ``x0 = 1``: ``M0`` with ``x1 = 0``
    and ``M1`` as the difference made by ``x1 = 1``; NaN where the band does not overlap
    the model at that redshift.  Distance moduli in sncosmo's default cosmology (WMAP9).

    Raises
    ------
    DataFetchError
        sncosmo missing, or the template not obtainable (``data_dir`` as :func:`simulate`).
    """
    sncosmo = _import_sncosmo("the SALT2 grid")
    _use_data_dir(data_dir)
    name, version = IA_MODELS["salt2"]
    model = sncosmo.Model(source=_source(name, version))
    zgrid, cgrid = SALT2_GRID["z"], SALT2_GRID["c"]
    phase0, dphase, n_phases = SALT2_GRID["phase"]
    phases = phase0 + dphase * np.arange(n_phases)
    bandpasses = SIM_SURVEYS[survey].bandpasses
    table = np.full((2, len(zgrid), len(cgrid), len(bandpasses), n_phases), np.nan)
    for iz, z in enumerate(zgrid):
        for ic, c in enumerate(cgrid):
            for ib, bp in enumerate(bandpasses):
                model.set(x0=1.0, x1=0.0, c=c, z=z, t0=0.0)
                if not model.bandoverlap(bp):
                    continue
                m0 = model.bandflux(bp, phases * (1.0 + z), zp=27.5, zpsys="ab")
                model.set(x1=1.0)
                table[0, iz, ic, ib] = m0
                table[1, iz, ic, ib] = model.bandflux(bp, phases * (1.0 + z), zp=27.5,
                                                      zpsys="ab") - m0
    return TemplateGrid(table=table, zgrid=zgrid, cgrid=cgrid, distmod=_distmod(zgrid),
                        phase0=phase0, dphase=dphase, bands=SIM_SURVEYS[survey].survey.bands,
                        source=f"{name}-{version}")


#: The analytic plateau supernovae of :func:`plateau_source` (SN IIP / IIL, V band, after
#: Anderson et al. 2014's parametrisation): plateau lengths (days from explosion to the
#: drop's midpoint), plateau slopes (magnitudes per 100 days) and the phase-0 of each
#: (days after explosion; a flat plateau also seen from day 45, so that the fit's times of
#: maximum, -30 to +15 observer days from the brightest point at z = 0.3, reach a brightest
#: point up to about day 70 of the plateau).  Members ``(length, slope, zero)``.
PLATEAUS = ((70.0, 0.3, 10.0), (70.0, 0.3, 45.0), (100.0, 0.3, 10.0), (100.0, 0.3, 45.0),
            (70.0, 2.0, 10.0), (100.0, 2.0, 10.0))
#: The plateau model's physics: V-band rise e-folding (days), drop (mag) and its logistic
#: width (days), radioactive tail (mag per 100 days, 56Co); photosphere cooling from
#: ``t_hot`` to the hydrogen recombination ``t_plateau`` (K) with e-folding ``t_cool``
#: (days), ``t_tail`` after the drop; line blanketing below ``blanket_wave`` (Angstrom),
#: ``f ~ (wave / blanket_wave)^beta`` with ``beta`` rising to ``blanket_power`` with
#: e-folding ``blanket_time`` (days).
PLATEAU_PHYSICS = {"rise": 4.0, "drop": 1.8, "drop_width": 5.0, "tail": 0.98,
                   "t_hot": 20000.0, "t_plateau": 5500.0, "t_cool": 12.0, "t_tail": 5000.0,
                   "blanket_wave": 4500.0, "blanket_power": 4.0, "blanket_time": 15.0}


def plateau_source(length: float, slope: float, zero: float):
    """An analytic plateau supernova (SN IIP, or IIL for a steep ``slope``) as an sncosmo
    ``TimeSeriesSource``, rest frame, from explosion to 200 days after it.

    The V-band light curve (the flux density at 5500 A) rises as ``1 - exp(-t / rise)``
    (``t`` from half a day: the explosion's first phase is not dark), declines by ``slope``
    magnitudes per 100 days on the plateau, drops by ``drop`` magnitudes around ``length``
    days and then fades as 56Co (:data:`PLATEAU_PHYSICS`); the spectrum is a black body
    cooling from ``t_hot`` to ``t_plateau`` (``t_tail`` after the drop), suppressed in the
    blue by line blanketing that grows over the first weeks.  A physical sketch of the
    class, not a fit to any supernova's photometry, and none of PLAsTiCC's or ELAsTiCC's
    templates.

    Parameters
    ----------
    length, slope : float
        Plateau length (days) and slope (magnitudes per 100 days).
    zero : float
        Days after explosion of the source's phase 0.

    Returns
    -------
    sncosmo.TimeSeriesSource
        Flux zero before the explosion; the flux density at 5500 A is 1 at phase 0
        (``amplitude`` scales it).
    """
    sncosmo = _import_sncosmo("the plateau supernova model")
    k = PLATEAU_PHYSICS
    t = np.arange(0.0, 200.01, 1.0)
    wave = np.arange(1500.0, 25001.0, 10.0)
    drop = 1.0 / (1.0 + np.exp(-(t - length) / k["drop_width"]))
    mag_v = (-2.5 * np.log10(-np.expm1(-np.maximum(t, 0.5) / k["rise"]))
             + slope * np.minimum(t, length) / 100.0 + k["drop"] * drop
             + k["tail"] * np.maximum(t - length, 0.0) / 100.0)
    temp = (k["t_plateau"] + (k["t_hot"] - k["t_plateau"]) * np.exp(-t / k["t_cool"]))
    temp = temp * (1.0 - drop) + k["t_tail"] * drop
    beta = k["blanket_power"] * -np.expm1(-t / k["blanket_time"])
    planck = 1.0 / (wave[None, :] ** 5
                    * np.expm1(1.438777e8 / (wave[None, :] * temp[:, None])))
    shape = planck * np.minimum(wave[None, :] / k["blanket_wave"], 1.0) ** beta[:, None]
    at_v = shape[:, np.searchsorted(wave, 5500.0)]  # a point of the wavelength grid
    flux = shape / at_v[:, None] * 10.0 ** (-0.4 * mag_v)[:, None]
    flux /= np.interp(zero, t, 10.0 ** (-0.4 * mag_v))
    return sncosmo.TimeSeriesSource(t - zero, wave, flux, zero_before=True,
                                    name=f"plateau-{length:g}d-{slope:g}-from{zero:g}",
                                    version="astrot2")


#: The core-collapse grid of :func:`cc_grid`: its templates (Vincenzi et al. 2019's 18, as
#: sncosmo names them; pinned, so that the table does not depend on which of sncosmo's
#: variants a cache holds), redshifts, host E(B-V) (Cardelli et al. 1989's law, R_V = 3.1,
#: rest frame) and rest-frame phases (days from the template's phase 0).
CC_GRID = {"templates": ("v19-2009kr", "v19-2009n", "v19-2013fs", "v19-2006t", "v19-2011ei",
                         "v19-2006aa", "v19-2008fq", "v19-2009ip", "v19-2010al", "v19-2004gv",
                         "v19-2005bf", "v19-2007y", "v19-2004fe", "v19-2013ge", "v19-1998bw",
                         "v19-2006aj", "v19-2009bb", "v19-2012ap"),
           "z": np.geomspace(0.02, 1.0, 24), "ebv": (0.0, 0.3), "phase": (-50.0, 2.0, 101)}


def cc_grid(survey: str, data_dir: str | Path | None = None) -> TemplateGrid:
    """Core-collapse templates' band fluxes through ``survey``'s bandpasses on
    :data:`CC_GRID`, and the analytic plateaus of :data:`PLATEAUS` (:func:`plateau_source`,
    typed SN IIP), for :func:`astrot2.templates.cc_features` (seconds; sncosmo).

    One column per template and host E(B-V) (``kinds``: its type in sncosmo's registry, SN
    IIP for every analytic plateau, steep ones too; ``names``: its sncosmo name, or the
    plateau's own); ``M1`` zero (one amplitude).  Each redshift's column is
    scaled to a largest flux of 1 and rounded to float32 (its file stores it so).  Past a
    template's last phase its flux fades by :data:`astrot2.templates.LATE_DECAY`; before its
    first, none; NaN where the band does not overlap it at that redshift.

    Raises
    ------
    DataFetchError
        sncosmo missing, or one of the templates not obtainable (``data_dir`` as
        :func:`simulate`).
    """
    sncosmo = _import_sncosmo("the core-collapse grid")
    _use_data_dir(data_dir)
    registry = sncosmo.registry._get_registry(sncosmo.Source)
    kinds = {meta["name"]: meta.get("type") for meta in registry.get_loaders_metadata()}
    members = ([(kinds[name], name, _source(name)) for name in CC_GRID["templates"]]
               + [("SN IIP", source.name, source)
                  for source in (plateau_source(*p) for p in PLATEAUS)])
    zgrid, ebvs = CC_GRID["z"], CC_GRID["ebv"]
    phase0, dphase, n_phases = CC_GRID["phase"]
    phases = phase0 + dphase * np.arange(n_phases)
    bandpasses = SIM_SURVEYS[survey].bandpasses
    columns = [(m, ebv) for m in members for ebv in ebvs]
    table = np.full((2, len(zgrid), len(columns), len(bandpasses), n_phases), np.nan)
    table[1] = 0.0
    for ic, ((_, _, source), ebv) in enumerate(columns):
        model = sncosmo.Model(source=source,
                              effects=[sncosmo.CCM89Dust()], effect_names=["host"],
                              effect_frames=["rest"])
        last = min(model.source.maxphase(), phases[-1])
        seen = phases[phases <= last]
        fade = 10.0 ** (-0.4 * LATE_DECAY * np.maximum(phases - seen[-1], 0.0))
        for iz, z in enumerate(zgrid):
            model.set(z=z, t0=0.0, hostebv=ebv, hostr_v=3.1,
                      **{model.source.param_names[0]: 1.0})
            for ib, bp in enumerate(bandpasses):
                if model.bandoverlap(bp):
                    flux = model.bandflux(bp, seen * (1.0 + z), zp=27.5, zpsys="ab")
                    table[0, iz, ic, ib] = np.concatenate(
                        [flux, flux[-1] * fade[len(seen):]])
            peak = np.nanmax(np.abs(table[0, iz, ic]), initial=0.0)
            if peak > 0:
                table[0, iz, ic] /= peak
    table[0] = table[0].astype(np.float32)
    return TemplateGrid(table=table, zgrid=zgrid, cgrid=np.array([e for _, e in columns]),
                        distmod=_distmod(zgrid), phase0=phase0, dphase=dphase,
                        bands=SIM_SURVEYS[survey].survey.bands,
                        source=f"Vincenzi et al. 2019 core-collapse templates "
                               f"({len(CC_GRID['templates'])}) and analytic plateaus "
                               f"({len(PLATEAUS)}) x host E(B-V) "
                               f"{', '.join(str(e) for e in ebvs)}",
                        kinds=tuple(m[0] for m, _ in columns),
                        names=tuple(m[1] for m, _ in columns))


def simulate(n: int, pointings: dict[str, np.ndarray], config: SimulateConfig | None = None,
             seed: int = 0, *, data_dir: str | Path | None = None,
             workers: int | None = 1) -> LightCurveBatch:
    """Simulate ``n`` supernova light curves of ``config.survey`` (see the module docstring).

    Parameters
    ----------
    n : int
        Light curves kept (objects that fail the cuts are redrawn).
    pointings : dict
        The survey's visits by field: :func:`read_pointings` (ZTF's observing log) or
        :func:`pointings_from_light_curves` (LSST: PLAsTiCC's cadences).
    config : SimulateConfig, optional
    seed : int
        The output depends on it alone: objects come in chunks of :data:`CHUNK`, each from
        its own random streams (``SeedSequence(seed, spawn_key=(chunk,))``).
    data_dir : str or Path, optional
        sncosmo's data folder (default ``ASTROT2_SNCOSMO_DIR``, else the cache's
        ``sncosmo/`` of ``astrot2 data fetch sncosmo``, else sncosmo's own).
    workers : int or None
        Processes sharing the chunks (None: all cores); the output is the same for any.

    Returns
    -------
    LightCurveBatch
        Light curves of the survey; ``extra``: ``target`` (PLAsTiCC code), ``type``
        (template type), ``template``, ``redshift``, ``peak_mjd``, ``source`` =
        ``simulated``; LSST adds ``hostgal_specz`` (= ``redshift``), ``ddf_bool`` and
        ``cadence_id`` (the PLAsTiCC object whose visits it was observed on) and fills
        ``metadata`` (``hostgal_photoz``, ``hostgal_photoz_err``, ``mwebv`` = 0).
    """
    sncosmo = _import_sncosmo("astrot2 simulate")
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    config = config or SimulateConfig()
    sim = SIM_SURVEYS[config.survey]
    made_for = str(pointings.get("survey", [config.survey])[0])
    if made_for != config.survey:
        raise ConfigError(f"pointings of {made_for} given to a {config.survey} simulation")
    data_dir = _use_data_dir(data_dir)
    classes = tuple(c for c in CLASSES_SIMULATED if c.name in config.classes)
    bandpasses = [sncosmo.get_bandpass(name) for name in sim.bandpasses]
    p_class, cdfs, z_grid, mu_grid = _redshift_law(list(classes), sim, config)
    templates = _templates(config.classes, config.templates, config.ia_model)
    plan = _Plan(sim, config, seed, classes, _obtainable(templates),
                 p_class, cdfs, z_grid, mu_grid, pointings,
                 np.array([[bp.minwave() for bp in bandpasses],
                           [bp.maxwave() for bp in bandpasses]]),
                 sim.bandpasses[sim.survey.bands.index("r")])
    tasks = [(k, min(CHUNK, n - start)) for k, start in enumerate(range(0, n, CHUNK))]
    kept = _run_chunks(plan, tasks, workers, str(data_dir) if data_dir else None)
    ids = [f"sim{seed}_{i:07d}" for i in range(n)]
    owner = [np.full(len(points[0]), i) for i, (points, _) in enumerate(kept)]
    return _batch(sim, ids, owner, [p for p, _ in kept], [r for _, r in kept])


def _batch(sim: SimSurvey, ids: list[str], owner: list[np.ndarray],
           observed: list[tuple[np.ndarray, ...]], rows: list[dict]) -> LightCurveBatch:
    """The simulated objects as one batch (``rows``: per-object labels and metadata)."""
    def column(key, dtype=None):
        return np.array([r[key] for r in rows], dtype=dtype)

    extra = {"target": column("target", np.int64), "type": column("type", object),
             "template": column("template", object), "redshift": column("redshift"),
             "peak_mjd": column("peak_mjd"),
             "source": np.full(len(rows), "simulated", dtype=object)}
    metadata = None
    if sim.photoz_scatter is not None:
        extra["hostgal_specz"] = extra["redshift"].copy()
        metadata = {"hostgal_photoz": column("hostgal_photoz"),
                    "hostgal_photoz_err": column("hostgal_photoz_err"),
                    "mwebv": np.zeros(len(rows))}
    extra.update({col: column(col, object if col == "cadence_id" else None)
                  for col in _FIELD_COLUMNS if rows and col in rows[0]})
    time, flux, err, band, det = (np.concatenate(parts) for parts in zip(*observed,
                                                                          strict=True))
    return LightCurveBatch.from_observations(
        sim.survey, ids, ids, np.concatenate(owner), time, flux, err, band.astype(np.int8),
        det, metadata=metadata, extra=extra)
