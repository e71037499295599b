"""The real-sky data recipe: split, alert cuts, fainter copies (physics), class weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

from astrot2.augment import FainterConfig, cut_at, distance_modulus, fainter, first_detection
from astrot2.gp import GPConfig, fit_gp
from astrot2.io.labelled import read_labelled
from astrot2.lightcurves import LightCurveBatch
from astrot2.realsky import (
    CUTS,
    RealSkyConfig,
    balanced_recall,
    class_weights,
    evaluation_cut,
    labels_of,
    split_objects,
    training_views,
)
from astrot2.surveys import ZTF

DATA = Path(__file__).resolve().parent / "data" / "labelled" / "bts"


def test_distance_modulus_matches_quadrature():
    for z in (0.01, 0.05, 0.1, 0.5):
        integral = quad(lambda x: 1 / np.sqrt(0.3 * (1 + x) ** 3 + 0.7), 0, z)[0]
        d_l = (1 + z) * 299792.458 / 70.0 * integral
        expected = 5 * np.log10(d_l * 1e5)
        assert distance_modulus(np.array([z]))[0] == pytest.approx(expected, abs=1e-4)


def test_split_is_deterministic_disjoint_and_stratified():
    y = np.repeat(np.arange(3), [70, 20, 10])
    a = split_objects(y, RealSkyConfig(seed=3))
    b = split_objects(y, RealSkyConfig(seed=3))
    c = split_objects(y, RealSkyConfig(seed=4))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    allidx = np.concatenate(list(a.values()))
    assert len(allidx) == len(np.unique(allidx)) == len(y)
    for cls, n in ((0, 70), (1, 20), (2, 10)):
        assert (y[a["train"]] == cls).sum() == round(0.7 * n)


def test_training_views_hold_only_train_objects():
    real = read_labelled(DATA).batch
    y = labels_of(real)
    parts = split_objects(y, RealSkyConfig(split=(0.5, 0.25, 0.25)))
    train = real.take(parts["train"])
    gp = fit_gp(train, GPConfig())
    cfg = RealSkyConfig(n_cuts=2, n_fainter=1)
    views = training_views(train, cfg, gp.amplitude, gp.length_scale)
    assert len(views) == 2 * (1 + 1)
    held_out = set(real.object_id[np.r_[parts["validation"], parts["test"]]])
    for v in views:
        assert set(v.object_id) == set(train.object_id)
        assert not set(v.object_id) & held_out
        # an alert carries at most 30 days of history
        span = v.reduce(v.time, np.fmax) - v.reduce(v.time, np.fmin)
        assert (span[v.ok] <= 30.0 + 1e-9).all()
    again = training_views(train, cfg, gp.amplitude, gp.length_scale)
    for v, w in zip(views, again, strict=True):
        np.testing.assert_array_equal(v.flux, w.flux)


def test_cut_at_keeps_history_and_rejects_empty():
    real = read_labelled(DATA).batch
    first = first_detection(real)
    cut = cut_at(real, first + 10.0, max_history=5.0)
    for i in range(len(real)):
        t = cut[i].time
        assert (t <= first[i] + 10.0).all() and (t >= first[i] + 5.0).all()
    early = cut_at(real, first - 1.0)
    assert not early.ok.any()  # nothing before the first detection: rejected


def test_evaluation_cuts_use_the_catalogue_peak():
    real = read_labelled(DATA).batch
    view = evaluation_cut(real, "peak+5")
    last = view.reduce(view.time, np.fmax)
    ok = view.ok
    assert (last[ok] <= real.extra["peak_mjd"][ok] + 5.0).all()
    assert set(CUTS) == {"first+3", "first+7", "peak", "peak+5", "peak+15"}


def _smooth_object(z: float, width: float = 12.0) -> LightCurveBatch:
    """A Gaussian light curve, the same in g and r, densely sampled with tiny errors."""
    t = np.arange(0.0, 120.0, 0.5)
    time = np.r_[t, t + 0.1]
    band = np.r_[np.zeros(len(t)), np.ones(len(t))].astype(np.int8)
    flux = 20000.0 * np.exp(-0.5 * ((time - 50.0) / width) ** 2) + 1.0
    return LightCurveBatch.from_observations(
        ZTF, ["a"], ["a"], np.zeros(len(time), np.int64), 58000.0 + time, flux,
        np.full(len(time), 5.0), band, np.ones(len(time), bool),
        extra={"redshift": np.array([z])})


def test_fainter_dims_by_distance_modulus_and_dilates_time():
    src = _smooth_object(0.02)
    gp = fit_gp(src, GPConfig(max_points=512, fit_window_only=False))
    cfg = FainterConfig(max_dz=0.03, limit_mag=(28.0, 28.0), max_peak_mag=30.0,
                        max_wavelength_shift=5000.0, p_nondetections=0.0)
    out = fainter(src, gp.amplitude, gp.length_scale, cfg, seed=1)
    z_new = out.extra["redshift"][0]
    assert 0.02 < z_new <= 0.05 + 1e-9
    stretch = (1 + z_new) / 1.02
    # the distance modulus, and the flux density's (1+z')/(1+z) (matched-band K-correction)
    dim = stretch * 10 ** (-0.4 * (distance_modulus(np.array([z_new]))[0]
                                   - distance_modulus(np.array([0.02]))[0]))
    lc = out[0]
    assert lc.flux.max() == pytest.approx(20000.0 * dim, rel=0.03)
    # second moment of the flux in time: the width grows by (1+z')/(1+z)
    w = np.clip(lc.flux, 0, None)
    mean_t = (w * lc.time).sum() / w.sum()
    width = np.sqrt((w * (lc.time - mean_t) ** 2).sum() / w.sum())
    assert width == pytest.approx(12.0 * stretch, rel=0.03)
    # the same visits (a subset, thinned by 1/stretch), no new times
    assert set(np.round(lc.time, 6)) <= set(np.round(src.time, 6))


def test_fainter_bounds_the_band_shift_and_the_depth():
    src = _smooth_object(0.05)
    gp = fit_gp(src, GPConfig(max_points=512, fit_window_only=False))
    cfg = FainterConfig(max_dz=0.5, max_wavelength_shift=300.0, max_peak_mag=30.0)
    for seed in range(5):
        z_new = fainter(src, gp.amplitude, gp.length_scale, cfg, seed).extra["redshift"][0]
        bluest = ZTF.wavelengths[0] * 1.05 / (1 + z_new)
        assert bluest >= ZTF.wavelengths[0] - 300.0 - 1e-6
    shallow = FainterConfig(max_dz=0.5, max_peak_mag=18.0, max_wavelength_shift=5000.0)
    peak_mag = 27.5 - 2.5 * np.log10(src.flux.max())
    for seed in range(5):
        z_new = fainter(src, gp.amplitude, gp.length_scale, shallow, seed).extra["redshift"][0]
        dmu = distance_modulus(np.array([z_new]))[0] - distance_modulus(np.array([0.05]))[0]
        assert peak_mag + dmu - 2.5 * np.log10((1 + z_new) / 1.05) <= 18.0 + 0.02


def test_fainter_leaves_objects_without_redshift_unchanged():
    src = _smooth_object(float("nan"))
    gp = fit_gp(src, GPConfig())
    out = fainter(src, gp.amplitude, gp.length_scale, FainterConfig(), seed=0)
    np.testing.assert_array_equal(out.flux, src.flux)


def test_class_weights_cap_tiny_classes():
    y = np.repeat([11, 3, 6, 4], [700, 170, 60, 3])
    w = class_weights(y, 0.1)
    assert w.sum() == pytest.approx(1.0)
    # classes above 10 % of the largest get 1 / n; those of 60 and 3 objects 1 / 70
    assert w[11] * 700 == pytest.approx(w[3] * 170)
    assert w[4] == pytest.approx(w[6]) and w[4] * 70 == pytest.approx(w[11] * 700)
    assert w[0] == 0.0


def test_balanced_recall():
    y = np.array([11, 11, 3, 3, 6, 6])
    top = np.array([11, 3, 3, 3, 11, -1])
    bal, rec = balanced_recall(y, top)
    assert rec == {"SNIa": 0.5, "SNII": 1.0, "SNIbc": 0.0}
    assert bal == pytest.approx(0.5)
