"""Representative views of the ``lsst`` data: redshift augmentation upward (physics,
bounds, trigger, determinism) and the split they are built from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import curve_fit

from astrot2.augment import (
    AugmentConfig,
    RedshiftConfig,
    TransplantConfig,
    distance_modulus,
    redshifted,
    transplanted,
)
from astrot2.gp import GPConfig, fit_gp
from astrot2.io import read_file
from astrot2.lightcurves import LightCurveBatch
from astrot2.representative import (
    REPRESENTATIVE_FILE,
    RepresentativeConfig,
    folder_config,
    representative_training,
    representative_views,
)
from astrot2.runtime import resolve_model
from astrot2.surveys import LSST, ZTF

DATA = Path(__file__).resolve().parent / "data" / "plasticc"


def _smooth_object(z: float, width: float = 12.0) -> LightCurveBatch:
    """A Gaussian light curve, the same in all six LSST bands, densely sampled with tiny
    errors, and quiet points (non-detections) before and after it."""
    t = np.arange(-40.0, 160.0, 1.0)
    time = np.concatenate([t + 0.05 * b for b in range(6)])
    band = np.repeat(np.arange(6), len(t)).astype(np.int8)
    flux = 20000.0 * np.exp(-0.5 * ((time - 50.0) / width) ** 2)
    err = np.full(len(time), 0.2)
    return LightCurveBatch.from_observations(
        LSST, ["a"], ["a"], np.zeros(len(time), np.int64), 60000.0 + time, flux, err, band,
        flux >= 5 * err,
        metadata={"hostgal_photoz": np.array([z + 0.01]),
                  "hostgal_photoz_err": np.array([0.02]), "mwebv": np.array([0.0])},
        extra={"hostgal_specz": np.array([z])})


def _fit(src: LightCurveBatch):
    return fit_gp(src, GPConfig(max_points=2048, fit_window_only=False))


def test_redshifted_dims_by_distance_modulus_and_dilates_time():
    src = _smooth_object(0.1)
    gp = _fit(src)
    cfg = RedshiftConfig(max_z=0.3)
    for seed in range(3):
        out = redshifted(src, gp.amplitude, gp.length_scale, cfg, seed)
        z_new = out.extra["hostgal_specz"][0]
        assert 0.1 < z_new <= 0.3 + 1e-9
        stretch = (1 + z_new) / 1.1
        # the distance modulus and the flux density's (1+z')/(1+z) (matched-band K-correction)
        dim = stretch * 10 ** (-0.4 * (distance_modulus(np.array([z_new]))[0]
                                       - distance_modulus(np.array([0.1]))[0]))
        lc = out[0]
        red = lc.band == 5
        # a Gaussian fitted to the new y-band points (the GP's own uncertainty between
        # the source bands is part of the noise drawn): peak dimmed, width dilated
        (peak, _, width), _ = curve_fit(
            lambda t, a, t0, s: a * np.exp(-0.5 * ((t - t0) / s) ** 2),
            lc.time[red] - 60000.0, lc.flux[red], p0=(10000.0, 50.0, 12.0))
        assert peak == pytest.approx(20000.0 * dim, rel=0.03)
        assert abs(width) == pytest.approx(12.0 * stretch, rel=0.03)
        # the host photo-z moves with the object, its error grows as 1 + z
        assert out.metadata["hostgal_photoz"][0] == pytest.approx(z_new + 0.01 * stretch)
        assert out.metadata["hostgal_photoz_err"][0] == pytest.approx(0.02 * stretch)
        # observer-frame visits only: no new times
        assert set(np.round(lc.time, 6)) <= set(np.round(src.time, 6))


def test_dimming_factor_and_runs_recorded_before_the_bandwidth_term():
    """Moving z -> z' multiplies an AB flux density by (1+z')/(1+z) 10^(-0.4 dmu); runs
    recorded before the term (the shipped lsst) read back without it, so they reproduce."""
    from astrot2.augment import dimming_factor
    from astrot2.representative import folder_config

    dmu = np.diff(distance_modulus(np.array([0.1, 0.5])))[0]
    assert dimming_factor(0.1, 0.5) == pytest.approx(1.5 / 1.1 * 10 ** (-0.4 * dmu))
    assert dimming_factor(0.1, 0.5, bandwidth=False) == pytest.approx(10 ** (-0.4 * dmu))
    assert folder_config(resolve_model("lsst")).redshift.bandwidth is False
    assert RedshiftConfig().bandwidth is True
    from astrot2.augment import FainterConfig
    from astrot2.train_real import read_finetune_config

    assert read_finetune_config(resolve_model("ztf")).real.fainter.bandwidth is False
    assert FainterConfig().bandwidth is True


def test_redshifted_never_extrapolates_bluer_than_measured():
    src = _smooth_object(0.05)
    gp = _fit(src)
    lam = LSST.wavelength_array
    seen_drop = False
    for seed in range(6):
        out = redshifted(src, gp.amplitude, gp.length_scale, RedshiftConfig(), seed)
        stretch = (1 + out.extra["hostgal_specz"][0]) / 1.05
        lc = out[0]
        assert (lam[lc.band] / stretch >= lam.min() - 1e-9).all()
        seen_drop |= stretch > lam[1] / lam[0] and not (lc.band <= 1).any()
    assert seen_drop  # at some draw u and g are gone, not extrapolated


def test_redshifted_trigger_galactic_and_determinism():
    src = _smooth_object(0.1)
    gp = _fit(src)
    seen = redshifted(src, gp.amplitude, gp.length_scale, RedshiftConfig(), 0)
    assert seen.ok[0]
    unseen = redshifted(src, gp.amplitude, gp.length_scale,
                        RedshiftConfig(min_detections=10_000), 0)
    assert unseen.reject[0] == "not_detected"
    galactic = _smooth_object(0.0)
    gp = _fit(galactic)
    same = redshifted(galactic, gp.amplitude, gp.length_scale, RedshiftConfig(), 0)
    np.testing.assert_array_equal(same.flux, galactic.flux)
    a, b, c = (redshifted(src, gp.amplitude, gp.length_scale, RedshiftConfig(), s)
               for s in (4, 4, 5))
    np.testing.assert_array_equal(a.flux, b.flux)
    assert not np.array_equal(a.flux, c.flux)


def test_transplanted_moves_a_ztf_object_onto_lsst_visits():
    """A smooth g, r ZTF object at z = 0.05 moved to z' = 0.29 onto a daily LSST field:
    dimmed by the distance modulus difference, slower by (1+z')/(1+z), observed only in
    the LSST bands its g, r cover at that stretch (r and i), deterministic per seed."""
    t = np.arange(-40.0, 160.0, 1.0)
    time = np.concatenate([t, t + 0.3])
    band = np.repeat([0, 1], len(t)).astype(np.int8)
    flux = 20000.0 * np.exp(-0.5 * ((time - 50.0) / 12.0) ** 2)
    n = len(time)
    src = LightCurveBatch.from_observations(  # "b": the same light curve, no redshift
        ZTF, ["a", "b"], ["a", "b"], np.repeat([0, 1], n), 60000.0 + np.tile(time, 2),
        np.tile(flux, 2), np.full(2 * n, 0.2), np.tile(band, 2), np.ones(2 * n, bool),
        extra={"redshift": np.array([0.05, 0.0])})
    gp = _fit(src)
    days = np.arange(0.0, 400.0, 1.0)
    pointings = {"mjd": np.repeat(61000.0 + days, 6),
                 "band": np.tile(np.arange(6), len(days)),
                 "depth": np.full(6 * len(days), 35.0),
                 "field_start": np.array([0, 6 * len(days)])}
    config = TransplantConfig(min_z=0.29, max_z=0.29 + 1e-9, photon_noise=0.0)
    out = transplanted(src, gp.amplitude, gp.length_scale, pointings, LSST, config, 0)
    stretch = 1.29 / 1.05
    dim = stretch * 10 ** (-0.4 * np.diff(distance_modulus(np.array([0.05, 0.29])))[0])
    lc = out[0]
    assert set(lc.band) == {2, 3}  # r, i: g would need bluer than ZTF g, z redder than r
    lam = LSST.wavelength_array[lc.band] / stretch
    assert lam.min() >= ZTF.wavelength_array[0] and lam.max() <= ZTF.wavelength_array[1]
    r = lc.band == 2
    (peak, t0, width), _ = curve_fit(
        lambda x, a, m, w: a * np.exp(-0.5 * ((x - m) / w) ** 2), lc.time[r], lc.flux[r],
        p0=(20000.0 * dim, lc.time[r][np.argmax(lc.flux[r])], 15.0))
    assert peak == pytest.approx(20000.0 * dim, rel=0.03)
    assert abs(width) == pytest.approx(12.0 * stretch, rel=0.03)
    assert t0 == pytest.approx(out.extra["peak_mjd"][0], abs=1.0)
    assert out.extra["redshift"][0] == pytest.approx(0.29)
    assert np.isnan(out.metadata["hostgal_photoz"]).all()
    assert out.reject[1] == "no_source_fit"  # no redshift to move it from
    # only visits whose source-frame time lies near a source point (here: within its span)
    t_src = 60050.0 + (lc.time - out.extra["peak_mjd"][0]) / stretch
    assert (t_src >= 60000.0 - 40.0 - config.max_gap - 1e-6).all()
    assert (t_src <= 60000.0 + 160.3 + config.max_gap + 1e-6).all()
    unseen = transplanted(src, gp.amplitude, gp.length_scale, pointings, LSST,
                          TransplantConfig(min_detections=10_000), 0)
    assert unseen.reject[0] == "not_detected"
    again = transplanted(src, gp.amplitude, gp.length_scale, pointings, LSST, config, 0)
    other = transplanted(src, gp.amplitude, gp.length_scale, pointings, LSST, config, 1)
    np.testing.assert_array_equal(out.flux, again.flux)
    assert not np.array_equal(out.time, other.time)


def test_representative_views_hold_only_their_split():
    batch = read_file(DATA / "plasticc_lc_sample.csv.gz", format="plasticc",
                      metadata=DATA / "plasticc_meta_sample.csv")
    half = len(batch) // 2
    train, val = batch.take(np.arange(half)), batch.take(np.arange(half, len(batch)))
    gp = GPConfig()
    cfg = RepresentativeConfig(n_train=1, n_validation=1)
    views = representative_training(train, gp, AugmentConfig(), cfg)
    for v in views:
        assert set(v.object_id) == set(train.object_id)
    for v, y in representative_views(val, gp, AugmentConfig(), cfg).values():
        assert set(v.object_id) == set(val.object_id) and len(y) == len(v)
    again = representative_views(val, gp, AugmentConfig(), cfg)
    for (v, _), (w, _) in zip(representative_views(val, gp, AugmentConfig(), cfg).values(),
                              again.values(), strict=True):
        np.testing.assert_array_equal(v.flux, w.flux)


def test_shipped_lsst_split_is_disjoint():
    split = json.loads((resolve_model("lsst") / "split.json").read_text())
    parts = [set(map(str, split[k])) for k in ("train", "validation", "test")]
    assert all(parts)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_folder_config_reads_the_run_settings(tmp_path):
    """A representative run's folder says how its views were made (the companion fit
    rebuilds them from it); a folder without the file has none."""
    shipped = resolve_model("lsst")
    config = folder_config(shipped)
    doc = json.loads((shipped / REPRESENTATIVE_FILE).read_text())["representative"]
    assert config is not None and config.n_train == doc["n_train"]
    # recorded before the bandwidth term: read back without it
    assert config.redshift == RedshiftConfig(**doc["redshift"], bandwidth=False)
    assert folder_config(tmp_path) is None
