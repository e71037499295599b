"""Tests of the batched GP against scikit-learn, known parameters and invariances."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from astrot2.demo import demo_alerts_dir
from astrot2.errors import ConfigError
from astrot2.gp import (
    STATUS_FALLBACK,
    STATUS_MAX_ITER,
    STATUS_OK,
    STATUS_SKIPPED,
    STATUS_THINNED,
    GPConfig,
    _select_points,
    _start_grid,
    alert_status,
    classified,
    fit_gp,
    iter_fit_gp,
    log_marginal_likelihood,
)
from astrot2.io import read_alerts
from astrot2.lightcurves import LightCurveBatch
from astrot2.surveys import LSST, ZTF

sklearn_gp = pytest.importorskip("sklearn.gaussian_process")
kernels = pytest.importorskip("sklearn.gaussian_process.kernels")


@pytest.fixture(scope="module")
def ztf_batch() -> LightCurveBatch:
    """67 real ZTF alerts shipped with the package."""
    return read_alerts(demo_alerts_dir())


@pytest.fixture(scope="module")
def ztf_fit(ztf_batch):
    return fit_gp(ztf_batch)


def _points(batch: LightCurveBatch, i: int):
    keep, *_ = _select_points(batch, GPConfig())
    sl = slice(batch.offsets[i], batch.offsets[i + 1])
    m = keep[sl]
    lam = batch.survey.wavelength_array[batch.band[sl][m]]
    return batch.time[sl][m], lam, batch.flux[sl][m], batch.flux_err[sl][m]


def _sklearn(t, lam, y, err, amplitude, length_scale):
    """scikit-learn's GP with our kernel and hyperparameters (no optimisation)."""
    kernel = kernels.ConstantKernel(amplitude**2, "fixed") * kernels.Matern(
        length_scale=[length_scale, 6000.0], length_scale_bounds="fixed", nu=1.5
    )
    gp = sklearn_gp.GaussianProcessRegressor(kernel=kernel, alpha=err**2, optimizer=None)
    return gp.fit(np.column_stack([t, lam]), y)


def _sklearn_best_loglike(t, lam, y, err) -> float:
    """Best scikit-learn log likelihood from many L-BFGS-B starts (and A -> 0)."""

    def neg(x):
        return -_sklearn(t, lam, y, err, np.exp(x[0]), np.exp(x[1])).log_marginal_likelihood_value_

    scale = np.abs(y).max()
    best = -np.inf
    for a in (0.5, 100.0):
        for ls in (1.0, 3.0, 20.0, 100.0, 500.0):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = minimize(neg, [np.log(a * scale), np.log(ls)], method="L-BFGS-B",
                               bounds=[(None, None), (0.0, np.log(1000.0))])
            best = max(best, -res.fun)
    noise = -0.5 * np.sum(y**2 / err**2 + np.log(2 * np.pi * err**2))
    return max(best, noise)


def test_shapes_and_status(ztf_batch, ztf_fit):
    n = len(ztf_batch)
    assert ztf_fit.mean.shape == (n, 100, 3) == ztf_fit.std.shape
    assert ztf_fit.times.shape == (n, 100)
    assert np.all(ztf_fit.status == STATUS_OK)
    assert np.all(np.isfinite(ztf_fit.mean)) and np.all(ztf_fit.std >= 0)
    assert np.all((ztf_fit.length_scale >= 1.0) & (ztf_fit.length_scale <= 1000.0))


def test_loglike_equals_sklearn_at_our_hyperparameters(ztf_batch, ztf_fit):
    for i in range(0, len(ztf_batch), 4):
        t, lam, y, err = _points(ztf_batch, i)
        ours = ztf_fit.log_likelihood[i]
        ref = _sklearn(t, lam, y, err, ztf_fit.amplitude[i], ztf_fit.length_scale[i])
        assert ours == pytest.approx(ref.log_marginal_likelihood_value_, rel=1e-9, abs=1e-6)
        assert ours == pytest.approx(
            log_marginal_likelihood(t, lam, y, err, ztf_fit.amplitude[i],
                                    ztf_fit.length_scale[i]), rel=1e-9, abs=1e-6)


def test_grid_equals_sklearn_predict(ztf_batch, ztf_fit):
    for i in range(0, len(ztf_batch), 6):
        t, lam, y, err = _points(ztf_batch, i)
        ref = _sklearn(t, lam, y, err, ztf_fit.amplitude[i], ztf_fit.length_scale[i])
        grid = np.column_stack([np.repeat(ztf_fit.times[i], 3), np.tile(ZTF.wavelength_array, 100)])
        mean, std = ref.predict(grid, return_std=True)
        scale = max(ztf_fit.amplitude[i], np.abs(y).max())
        np.testing.assert_allclose(ztf_fit.mean[i].ravel(), mean, atol=1e-7 * scale)
        np.testing.assert_allclose(ztf_fit.std[i].ravel(), std, atol=1e-6 * scale)


def test_reaches_the_multistart_optimum(ztf_batch, ztf_fit):
    idx = np.arange(0, len(ztf_batch), 3)
    diffs = []
    for i in idx:
        t, lam, y, err = _points(ztf_batch, i)
        diffs.append(ztf_fit.log_likelihood[i] - _sklearn_best_loglike(t, lam, y, err))
    diffs = np.array(diffs)
    # Multi-modal likelihoods: a rare miss is allowed here; benchmarks/gp.py measures the
    # rate against the per-object reference on every real alert (>= 99 % required).
    assert np.mean(diffs >= -1e-3) >= 0.95, diffs


def _synthetic(amplitude, length_scale, n=160, seed=0, bands=(1, 2), sigma=0.05):
    """A light curve drawn from the GP prior, with known hyperparameters."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 200, n))
    band = rng.choice(bands, n)
    lam = LSST.wavelength_array[band]
    r = np.sqrt(((t[:, None] - t[None]) / length_scale) ** 2
                + ((lam[:, None] - lam[None]) / 6000.0) ** 2)
    k = amplitude**2 * (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r)
    err = np.full(n, sigma * amplitude)
    y = rng.multivariate_normal(np.zeros(n), k + np.diag(err**2))
    return LightCurveBatch.from_observations(
        LSST, ["syn"], ["syn"], np.zeros(n, int), t + 60000.0, y, err, band,
        np.ones(n, bool))


@pytest.mark.parametrize("length_scale", [5.0, 30.0])
def test_recovers_known_hyperparameters(length_scale):
    res = fit_gp(_synthetic(1000.0, length_scale, seed=int(length_scale)),
                 GPConfig(fit_window_only=False, max_points=512))
    assert res.status[0] == STATUS_OK
    assert res.length_scale[0] == pytest.approx(length_scale, rel=0.35)
    assert res.amplitude[0] == pytest.approx(1000.0, rel=0.5)


def test_every_size_around_the_vector_blocks():
    """Sizes 2..70 cross the 8-wide register blocks of the C core (8, 16, 24, 32, 64):
    the fitted likelihood and the grid match the unbatched references at every size."""
    sizes = np.arange(2, 71)
    batch = LightCurveBatch.concat([_synthetic(300.0, 15.0, n=int(n), seed=int(n))
                                    for n in sizes])
    config = GPConfig(fit_window_only=False, max_points=128, n_steps=7)
    res = fit_gp(batch, config)
    assert np.array_equal(res.n_points, sizes)
    for i, n in enumerate(sizes):
        sl = slice(batch.offsets[i], batch.offsets[i + 1])
        t, y, err = batch.time[sl], batch.flux[sl], batch.flux_err[sl]
        lam = LSST.wavelength_array[batch.band[sl]]
        ref = log_marginal_likelihood(t, lam, y, err, res.amplitude[i], res.length_scale[i])
        assert res.log_likelihood[i] == pytest.approx(ref, rel=1e-9, abs=1e-6), n
        gp = _sklearn(t, lam, y, err, res.amplitude[i], res.length_scale[i])
        grid = np.column_stack([np.repeat(res.times[i], 6), np.tile(LSST.wavelength_array, 7)])
        mean, std = gp.predict(grid, return_std=True)
        np.testing.assert_allclose(res.mean[i].ravel(), mean, atol=1e-7 * 300.0)
        np.testing.assert_allclose(res.std[i].ravel(), std, atol=1e-6 * 300.0)


def test_independent_of_batch_composition_and_threads(ztf_batch, ztf_fit):
    order = np.arange(len(ztf_batch))[::-1]
    sub = fit_gp(ztf_batch.take(order[:20]), n_threads=1)
    for field in ("mean", "std", "amplitude", "length_scale", "log_likelihood"):
        np.testing.assert_array_equal(getattr(sub, field), getattr(ztf_fit, field)[order[:20]])
    two = fit_gp(ztf_batch, n_threads=2)
    np.testing.assert_array_equal(two.mean, ztf_fit.mean)
    chunks = [(sl, r) for sl, r in iter_fit_gp(ztf_batch, chunk_size=10)]
    assert len(chunks) == 7
    np.testing.assert_array_equal(np.concatenate([r.std for _, r in chunks]), ztf_fit.std)


def test_scaling_flux_scales_outputs(ztf_batch, ztf_fit):
    """Multiplying fluxes and errors by c multiplies A, mean and std by c."""
    b = ztf_batch.take(np.arange(10))
    from dataclasses import replace

    scaled = fit_gp(replace(b, flux=b.flux * 7.0, flux_err=b.flux_err * 7.0))
    np.testing.assert_allclose(scaled.amplitude, ztf_fit.amplitude[:10] * 7.0, rtol=1e-5)
    np.testing.assert_allclose(scaled.mean, ztf_fit.mean[:10] * 7.0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scaled.length_scale, ztf_fit.length_scale[:10], rtol=1e-5)


def test_edge_cases():
    """One point, one band, duplicated times, negative fluxes, a rejected light curve."""
    owner = np.array([0, 1, 1, 1, 2, 2, 2, 2])
    time = np.array([60000.0, 60000, 60001, 60002, 60000, 60000, 60000, 60010])
    flux = np.array([100.0, -50, -60, -55, 10, 12, 11, 400])
    err = np.array([5.0, 5, 5, 5, 2, 2, 2, 20])
    band = np.array([0, 1, 1, 1, 0, 0, 1, 2])
    batch = LightCurveBatch.from_observations(
        ZTF, ["a", "b", "c", "d"], ["a", "b", "c", "d"], owner, time, flux, err, band,
        np.ones(8, bool), reject=["", "", "", "bad_record: test"])
    res = fit_gp(batch)
    assert list(res.status) == [STATUS_OK, STATUS_OK, STATUS_OK, STATUS_SKIPPED]
    assert np.all(np.isfinite(res.mean[:3])) and np.all(np.isnan(res.mean[3]))
    assert res.mean[1].mean() < 0  # negative fluxes stay negative
    assert list(res.n_points) == [1, 3, 4, 0]


def test_window_and_thinning(ztf_batch):
    res = fit_gp(ztf_batch, GPConfig(max_points=8))
    for i in range(len(ztf_batch)):
        lc = ztf_batch[i]
        det = lc.time[lc.detected]
        assert res.times[i, 0] == pytest.approx(det.min() - 50.0)
        assert res.times[i, -1] == pytest.approx(det.max() + 50.0)
    thinned = res.status == STATUS_THINNED
    assert thinned.any()
    assert np.all(res.n_points[thinned] == 8) and np.all(res.n_points <= 8)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_steps": 1}, {"length_scale_bounds": (10.0, 1.0)}, {"initial_length_scale": 5000.0},
     {"window_before": -1.0}, {"max_points": 1}, {"n_starts": 0}, {"n_starts": 11},
     {"n_starts": 3, "start_amplitudes": (0.5,), "start_length_scales": (20.0,)}],
)
def test_config_validation(kwargs):
    with pytest.raises(ConfigError):
        GPConfig(**kwargs)


def _one_light_curve(time, flux, err, band) -> LightCurveBatch:
    n = len(time)
    return LightCurveBatch.from_observations(ZTF, ["a"], ["a"], np.zeros(n, int), time, flux,
                                             err, band, np.ones(n, bool))


def test_fallback_when_every_start_breaks_down():
    """Three points at one time and band, errors 1e-12 of the flux: the covariance is
    singular at every start and at the initial guess; the noise-only limit is used."""
    res = fit_gp(_one_light_curve([60000.0] * 3, [100.0, 90.0, 80.0], [1e-10] * 3, [0] * 3))
    assert res.status[0] == STATUS_FALLBACK
    assert np.isfinite(res.mean).all() and np.isfinite(res.std).all()
    assert np.isfinite(res.log_likelihood[0])
    assert res.amplitude[0] == pytest.approx(1e-10 * 100.0, rel=1e-6)  # A at its lower bound


def test_max_iter_is_kept_when_the_noise_only_limit_wins():
    """An ascent stopped at max_iter stays ``max_iter`` even where the noise-only limit has
    the higher likelihood (it used to be reported ``ok``)."""
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(60000.0, 60060.0, 30))
    noise = _one_light_curve(t, rng.normal(0.0, 1.0, 30), np.ones(30), np.arange(30) % 2)
    res = fit_gp(noise, GPConfig(max_iter=0))
    scale = np.abs(noise.flux).max()
    assert res.amplitude[0] < 1e-9 * scale  # the noise-only limit won
    assert res.status[0] == STATUS_MAX_ITER
    assert fit_gp(noise).status[0] == STATUS_OK  # converged: ok


def test_max_iter_status(ztf_batch):
    res = fit_gp(ztf_batch, GPConfig(max_iter=1))
    assert (res.status == STATUS_MAX_ITER).sum() > len(ztf_batch) // 2
    assert np.isfinite(res.mean).all()
    assert not res.converged[res.status == STATUS_MAX_ITER].any()


def test_more_than_eight_starts_run(ztf_batch, ztf_fit):
    """Every start up to the screening grid's size runs (no silent cap at 8)."""
    n_all = len(_start_grid(GPConfig()))
    assert n_all == 10  # avocado's guess is one of the 2 x 5 grid points
    res8 = fit_gp(ztf_batch, GPConfig(n_starts=8))
    res_all = fit_gp(ztf_batch, GPConfig(n_starts=n_all))
    assert (res_all.n_iter >= res8.n_iter).all() and (res_all.n_iter > res8.n_iter).any()
    assert (res_all.log_likelihood >= ztf_fit.log_likelihood - 1e-6).all()


def test_alert_status():
    reject = np.array(["", "", "", "", "", "too_short"], dtype=object)
    codes = np.array([STATUS_OK, STATUS_THINNED, STATUS_MAX_ITER, STATUS_FALLBACK,
                      STATUS_SKIPPED, STATUS_OK])
    status = alert_status(reject, codes)
    assert list(status) == ["ok", "ok", "gp_max_iter", "gp_fallback",
                            "no_points_in_model_bands", "too_short"]
    assert list(classified(status)) == [True, True, True, True, False, False]
