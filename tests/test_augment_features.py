"""Augmentation and the feature seam on real PLAsTiCC fixtures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from astrot2.augment import AugmentConfig, augment
from astrot2.errors import ConfigError
from astrot2.features import FeatureConfig, build_inputs, select_bands
from astrot2.gp import fit_gp
from astrot2.io.plasticc import read_plasticc


@pytest.fixture(scope="module")
def sample(fixtures):
    folder = fixtures / "plasticc"
    return read_plasticc(folder / "plasticc_lc_sample.csv.gz", folder / "plasticc_meta_sample.csv")


def test_augment_is_seeded_and_keeps_every_object(sample):
    cfg = AugmentConfig(p_truncate=1.0, max_days=30.0)
    a, b = augment(sample, cfg, 7), augment(sample, cfg, 7)
    np.testing.assert_array_equal(a.time, b.time)
    assert len(a) == len(sample) and (a.n_points >= 1).all() and (a.reject == "").all()
    assert (a.n_points <= sample.n_points).all() and a.n_points.sum() < sample.n_points.sum()
    np.testing.assert_array_equal(a.extra["target"], sample.extra["target"])
    c = augment(sample, cfg, 8)
    assert not np.array_equal(a.n_points, c.n_points)


def test_truncation_and_history_limits(sample):
    cfg = AugmentConfig(p_truncate=1.0, min_days=5.0, max_days=20.0, max_history=30.0,
                        drop_fraction=(0.0, 0.0), max_shift=0.0)
    a = augment(sample, cfg, 0)
    first = sample.reduce(np.where(sample.detected, sample.time, np.nan), np.fmin)
    for i in range(len(a)):
        lc = a[i]
        assert lc.time.max() <= first[i] + 20.0 + 1e-9
        assert lc.time.max() - lc.time.min() <= 30.0 + 1e-9


def test_band_selection_and_inputs(sample):
    gr = FeatureConfig(bands=("g", "r"), use_redshift=False)
    only = select_bands(sample, gr)
    assert set(np.unique(only.band)) == {1, 2}
    x, extra = build_inputs(only, fit_gp(only), gr)
    assert x.shape == (len(sample), 100, 2) and extra.shape == (len(sample), 1)
    assert np.isfinite(x).all() and np.abs(x).max() == pytest.approx(1.0)
    full = FeatureConfig(use_std=True)
    x6, e6 = build_inputs(sample, fit_gp(sample), full)
    assert x6.shape == (len(sample), 100, 12) and e6.shape == (len(sample), 4)
    known = np.isfinite(sample.metadata["hostgal_photoz"])
    np.testing.assert_allclose(e6[known, 1], sample.metadata["hostgal_photoz"][known],
                               rtol=1e-6)
    with pytest.raises(ConfigError):
        select_bands(sample, FeatureConfig(bands=("g", "q")))


def test_inputs_without_extra_features(sample):
    cfg = FeatureConfig(bands=("g", "r"), use_brightness=False, use_redshift=False)
    assert cfg.n_extra == 0
    x, extra = build_inputs(select_bands(sample, cfg), fit_gp(select_bands(sample, cfg)), cfg)
    assert x.shape == (len(sample), 100, 2) and extra.shape == (len(sample), 0)


def test_resample_to_ztf_alerts(sample):
    """PLAsTiCC light curves re-observed as ZTF g, r alerts: one per input, physical."""
    from astrot2.augment import ResampleConfig, resample_to_survey, survey_windows
    from astrot2.gp import GPConfig
    from astrot2.surveys import ZTF

    cfg = ResampleConfig()
    a = survey_windows(sample, GPConfig(), ZTF, ("g", "r"), cfg, 3)
    b = survey_windows(sample, GPConfig(), ZTF, ("g", "r"), cfg, 3)
    np.testing.assert_array_equal(a.flux, b.flux)  # seeded
    assert a.survey is ZTF and len(a) == len(sample)
    np.testing.assert_array_equal(a.object_id, sample.object_id)
    np.testing.assert_array_equal(a.extra["target"], sample.extra["target"])
    assert set(np.unique(a.band)) <= {0, 1}  # g and r only
    assert a.ok.mean() > 0.5
    assert set(a.reject[~a.ok]) <= {"no_detection", "no_source_fit"}
    # every kept copy has a detection, detections are >= 5 sigma, non-detections are 0 +/- err
    assert (a.reduce(a.detected.astype(float), np.maximum)[a.ok] == 1).all()
    assert (a.flux[a.detected] / a.flux_err[a.detected] >= cfg.detection_snr).all()
    assert (a.flux[~a.detected] == 0).all()
    # an alert: at most max_history days of history, inside the source's time span
    span = a.reduce(a.time, np.fmax) - a.reduce(a.time, np.fmin)
    assert (span[a.ok] <= cfg.max_history).all()
    # moved closer, never farther; galactic objects stay at z = 0
    z0 = np.nan_to_num(sample.metadata["hostgal_photoz"])
    z1 = np.nan_to_num(a.metadata["hostgal_photoz"])
    assert (z1 <= z0 + 1e-12).all() and (z1[z0 == 0] == 0).all()
    assert (z1[z0 > 0.2] < z0[z0 > 0.2]).all()
    # a source without a fit is rejected, not dropped
    nan = np.full(len(sample), np.nan)
    c = resample_to_survey(sample, nan, nan, ZTF, ("g", "r"), cfg, 3)
    assert len(c) == len(sample) and (c.reject == "no_source_fit").all()


def test_without_redshift_turns_the_photoz_inputs_to_unknown(sample):
    """Same light curves, host photo-z and its error NaN: the seam's extra inputs become
    (brightness, 0, 0, known = 0), as for a real alert without a host photo-z."""
    from astrot2.augment import without_redshift
    from astrot2.features import FeatureConfig, prepare
    from astrot2.gp import GPConfig

    bare = without_redshift(sample)
    np.testing.assert_array_equal(bare.flux, sample.flux)
    assert np.isnan(bare.metadata["hostgal_photoz"]).all()
    assert np.isnan(bare.metadata["hostgal_photoz_err"]).all()
    assert np.isfinite(sample.metadata["hostgal_photoz"]).all()  # the original is kept
    config = FeatureConfig()
    _, extra, _, _ = prepare(sample, GPConfig(), config)
    _, extra_bare, _, _ = prepare(bare, GPConfig(), config)
    np.testing.assert_array_equal(extra_bare[:, 0], extra[:, 0])
    assert (extra_bare[:, 1:] == 0).all() and (extra[:, 3] == 1).all()


def test_gp_summary_features_of_a_known_shape():
    """A Gaussian pulse seen every 4 days in g and r (60 points, under the GP's cap; r
    twice as bright, both peaking at day 60, sigma 10 d) at photo-z 0.1: the GP features
    read its shape back."""
    from astrot2.features import GP_EPOCHS, gp_summary_features, gp_summary_names
    from astrot2.gp import GPConfig
    from astrot2.lightcurves import LightCurveBatch
    from astrot2.photometry import distance_modulus
    from astrot2.surveys import get_survey

    lsst = get_survey("lsst")
    t = np.arange(0.0, 120.0, 4.0)
    pulse = 1000.0 * np.exp(-0.5 * ((t - 60.0) / 10.0) ** 2)
    g, r = lsst.bands.index("g"), lsst.bands.index("r")
    flux = np.concatenate([0.5 * pulse, pulse])
    batch = LightCurveBatch.from_observations(
        lsst, ["a"], ["o"], owner=np.zeros(2 * len(t), dtype=int),
        time=np.concatenate([t, t]), flux=flux, flux_err=np.full(2 * len(t), 5.0),
        band=np.repeat(np.array([g, r], dtype=np.int8), len(t)),
        detected=flux > 25.0,
        metadata={"hostgal_photoz": np.array([0.1]), "hostgal_photoz_err": np.array([0.01]),
                  "mwebv": np.array([0.0])})
    gp = fit_gp(batch, GPConfig(n_steps=400))
    names = gp_summary_names(("g", "r"), luminosity=True)
    row = dict(zip(names, gp_summary_features(batch, gp, ("g", "r"), True)[0].astype(float),
                   strict=True))
    half = 10.0 * np.sqrt(2.0 * np.log(2.0))  # 50 % width of the pulse on each side
    assert row["gp_rise_50"] == pytest.approx(half, abs=1.0)
    assert row["gp_fall_50"] == pytest.approx(half, abs=1.0)
    assert row["gp_rise_20"] == pytest.approx(10.0 * np.sqrt(2.0 * np.log(5.0)), abs=1.0)
    assert row["r_gp_p0"] == pytest.approx(1.0) and row["g_gp_p0"] == pytest.approx(0.5, abs=0.02)
    assert row["r_gp_p20"] == pytest.approx(np.exp(-2.0), abs=0.03)  # 20 d = 2 sigma later
    assert abs(row["g_gp_peak_delay"]) < 1.0 and abs(row["r_gp_peak_delay"]) < 1.0
    assert row["gp_peak_to_last"] == pytest.approx(56.0, abs=1.0)
    mu = float(distance_modulus(np.array([0.1]))[0])
    assert row["gp_peak_absolute_mag"] == pytest.approx(27.5 - 2.5 * np.log10(1000.0) - mu,
                                                        abs=0.05)
    assert row["gp_rest_fall_50"] == pytest.approx(row["gp_fall_50"] / 1.1)
    assert len(names) == 2 * len(GP_EPOCHS) + 2 + 10
    # without a photo-z the luminosity columns are missing, not zero
    from astrot2.augment import without_redshift

    no_z = gp_summary_features(without_redshift(batch), gp, ("g", "r"), True)[0]
    assert np.isnan(no_z[-3:]).all() and np.isfinite(no_z[:-3]).all()
    # nor is an absurd one believed (it would stretch the batch's distance-modulus grid)
    absurd = replace(batch, metadata={**batch.metadata, "hostgal_photoz": np.array([1e30])})
    assert np.isnan(gp_summary_features(absurd, gp, ("g", "r"), True)[0, -3:]).all()
