"""GP benchmark: astrot2's batched GP vs the per-object george + scipy reference.

For real ZTF alert light curves and PLAsTiCC training objects, on the same points (the
default window [first detection - 50 d, last detection + 50 d]):

- throughput of ``astrot2.gp.fit_gp`` (fit + 100-step grid for every band), 1 and 2
  threads, median of repeated runs;
- throughput of the reference, one object at a time the way avocado/t2 ran it: george
  Matern-3/2 kernel over (time, wavelength), wavelength scale frozen at 6000 A, scipy
  L-BFGS-B with george's analytic gradient from avocado's initial guess, then
  ``gp.predict`` on the same grid;
- optimum parity: our log marginal likelihood minus the reference's, per object;
- prediction parity: george's posterior mean/std at *our* hyperparameters vs ours.

Writes ``benchmarks/results/gp.json``.  Needs ``pip install george`` (the reference only).

Usage: python -m benchmarks.gp [--ztf-copies 40] [--plasticc 2000] [--ref-ztf 300]
[--ref-plasticc 150] [--repeats 3]
"""

from __future__ import annotations

import argparse

import numpy as np

from astrot2.gp import STATUS_NAMES, GPConfig, _select_points, fit_gp
from astrot2.lightcurves import LightCurveBatch
from benchmarks.common import median_time, plasticc_objects, real_ztf_alerts, write_result


def reference_fit(t, lam, y, err, grid_t, grid_lam, config: GPConfig,
                  return_grid: bool = False):
    """One light curve the avocado way: george + scipy L-BFGS-B, then the grid.

    Returns the optimum's log likelihood, or with ``return_grid`` the posterior mean and
    std on the grid, shape (n_steps, n_bands).
    """
    import george
    from scipy.optimize import minimize

    snr = np.abs(y) / np.sqrt(err**2 + (1e-2 * np.max(y)) ** 2)
    scale = np.abs(y[np.argmax(snr)])
    kernel = (0.5 * scale) ** 2 * george.kernels.Matern32Kernel(
        [config.initial_length_scale**2, config.wavelength_scale**2], ndim=2
    )
    kernel.freeze_parameter("k2:metric:log_M_1_1")
    gp = george.GP(kernel)
    gp.compute(np.column_stack([t, lam]), err)

    def nll(p):
        gp.set_parameter_vector(p)
        v = -gp.log_likelihood(y, quiet=True)
        return v if np.isfinite(v) else 1e25

    def grad(p):
        gp.set_parameter_vector(p)
        return -gp.grad_log_likelihood(y, quiet=True)

    lo, hi = config.length_scale_bounds
    bounds = [(None, None), (np.log(lo**2), np.log(hi**2))]
    res = minimize(nll, gp.get_parameter_vector(), jac=grad, method="L-BFGS-B", bounds=bounds)
    gp.set_parameter_vector(res.x)
    xg = np.column_stack([np.repeat(grid_t, len(grid_lam)), np.tile(grid_lam, len(grid_t))])
    mu, var = gp.predict(y, xg, return_var=True)
    if return_grid:
        shape = (len(grid_t), len(grid_lam))
        return mu.reshape(shape), np.sqrt(np.maximum(var, 0)).reshape(shape)
    return -res.fun


def george_predict(t, lam, y, err, amplitude, length_scale, grid_t, grid_lam, config):
    """george's posterior mean and std at given hyperparameters, shape (n_steps, n_bands)."""
    import george

    kernel = amplitude**2 * george.kernels.Matern32Kernel(
        [length_scale**2, config.wavelength_scale**2], ndim=2
    )
    gp = george.GP(kernel)
    gp.compute(np.column_stack([t, lam]), err)
    xg = np.column_stack([np.repeat(grid_t, len(grid_lam)), np.tile(grid_lam, len(grid_t))])
    mu, var = gp.predict(y, xg, return_var=True)
    shape = (len(grid_t), len(grid_lam))
    return mu.reshape(shape), np.sqrt(np.maximum(var, 0)).reshape(shape)


def fitted_points(batch: LightCurveBatch, config: GPConfig, i: int):
    """The points of light curve ``i`` that the GP uses (same selection as fit_gp)."""
    keep, *_ = _select_points(batch, config)
    sl = slice(batch.offsets[i], batch.offsets[i + 1])
    m = keep[sl]
    lam = batch.survey.wavelength_array[batch.band[sl][m]]
    return batch.time[sl][m], lam, batch.flux[sl][m], batch.flux_err[sl][m]


def run_dataset(name: str, batch: LightCurveBatch, copies: int, n_ref: int, repeats: int):
    """Throughput and parity for one data set."""
    config = GPConfig()
    big = LightCurveBatch.concat([batch] * copies) if copies > 1 else batch
    fit_gp(batch.take(np.arange(min(50, len(batch)))), config)  # warm-up
    out: dict[str, object] = {"light_curves": len(big), "distinct_light_curves": len(batch)}
    for threads in (1, 2):
        t_med, times = median_time(lambda th=threads: fit_gp(big, config, n_threads=th), repeats)
        out[f"ours_{threads}_thread_objects_per_s"] = len(big) / t_med
        out[f"ours_{threads}_thread_times_s"] = times
    t_fit, _ = median_time(
        lambda: fit_gp(big, GPConfig(n_steps=2), n_threads=1), repeats
    )
    out["ours_1_thread_share_grid_evaluation"] = 1 - t_fit / (
        len(big) / out["ours_1_thread_objects_per_s"]
    )

    res = fit_gp(batch, config)
    out["points_per_light_curve"] = {
        "median": float(np.median(res.n_points)), "mean": float(res.n_points.mean()),
        "p95": float(np.percentile(res.n_points, 95)), "max": int(res.n_points.max()),
    }
    out["status_counts"] = {STATUS_NAMES[int(k)]: int(v) for k, v in
                            zip(*np.unique(res.status, return_counts=True), strict=True)}
    out["newton_iterations_median"] = float(np.median(res.n_iter))

    rng = np.random.default_rng(1)
    subset = np.sort(rng.choice(len(batch), min(n_ref, len(batch)), replace=False))
    grid_lam = batch.survey.wavelength_array
    points = [fitted_points(batch, config, int(i)) for i in subset]
    pairs = [(int(i), p) for i, p in zip(subset, points, strict=True) if len(p[0])]

    def reference_pass() -> list[float]:
        return [reference_fit(*p, res.times[i], grid_lam, config) for i, p in pairs]

    ref_time, _ = median_time(reference_pass, max(1, min(repeats, 3)))
    ref_ll = reference_pass()
    diffs, mean_err, std_err = [], [], []
    for (i, (t, lam, y, err)), ll in zip(pairs, ref_ll, strict=True):
        diffs.append(res.log_likelihood[i] - ll)
        mu, sd = george_predict(t, lam, y, err, res.amplitude[i], res.length_scale[i],
                                res.times[i], grid_lam, config)
        norm = max(res.amplitude[i], np.abs(y).max())
        mean_err.append(np.max(np.abs(mu - res.mean[i])) / norm)
        std_err.append(np.max(np.abs(sd - res.std[i])) / norm)
    diffs = np.array(diffs)
    out["reference_objects"] = len(diffs)
    out["reference_objects_per_s_per_core"] = len(diffs) / ref_time  # median of passes
    out["speedup_per_core"] = out["ours_1_thread_objects_per_s"] / out[
        "reference_objects_per_s_per_core"]
    out["loglike_ours_minus_reference"] = {
        "min": float(diffs.min()), "p1": float(np.percentile(diffs, 1)),
        "median": float(np.median(diffs)), "max": float(diffs.max()),
        "fraction_at_least_reference_minus_1e-3": float(np.mean(diffs >= -1e-3)),
        "fraction_better_by_more_than_1e-3": float(np.mean(diffs > 1e-3)),
    }
    out["grid_parity_vs_george_at_our_hyperparameters"] = {
        "max_abs_mean_diff_over_scale": float(np.max(mean_err)),
        "max_abs_std_diff_over_scale": float(np.max(std_err)),
    }
    # The original pipeline fitted whole light curves (no window, no point cap).
    full = GPConfig(fit_window_only=False, max_points=10**6)
    whole = [(i, fitted_points(batch, full, i)) for i, _ in pairs[: max(1, len(pairs) // 2)]]
    t_whole, _ = median_time(
        lambda: [reference_fit(*p, res.times[i], grid_lam, full) for i, p in whole], 1)
    out["reference_whole_light_curves_objects_per_s_per_core"] = len(whole) / t_whole
    out["speedup_per_core_vs_reference_on_whole_light_curves"] = (
        out["ours_1_thread_objects_per_s"]
        / out["reference_whole_light_curves_objects_per_s_per_core"])
    print(name, {k: v for k, v in out.items() if not k.endswith("times_s")})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ztf-copies", type=int, default=40)
    parser.add_argument("--plasticc", type=int, default=2000)
    parser.add_argument("--ref-ztf", type=int, default=300)
    parser.add_argument("--ref-plasticc", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {
        "config": GPConfig().__dict__,
        "command": "python -m benchmarks.gp " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "ztf": run_dataset("ztf", real_ztf_alerts(), args.ztf_copies, args.ref_ztf,
                           args.repeats),
    }
    if args.plasticc > 0:
        results["plasticc"] = run_dataset("plasticc", plasticc_objects(args.plasticc), 1,
                                          args.ref_plasticc, args.repeats)
    print("wrote", write_result("gp", results))


if __name__ == "__main__":
    main()
