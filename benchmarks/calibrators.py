"""Richer calibrators than one temperature, measured (not shipped).

For a model folder, the raw logits of every view of the validation and test splits
(:func:`astrot2.calibration.split_logits`: whole light curves, alert windows, survey
windows) are calibrated by maps fitted on the pooled validation views by negative
log-likelihood, then scored per test view:

- ``temperature``: ``z / T`` (what ``astrot2 calibrate`` ships);
- ``temperature+bias``: ``z / T + b`` (bias-corrected temperature scaling, Alexandari et
  al. 2020; 14 biases, L2 1e-3): the biases can undo the class weighting of training,
  i.e. move the outputs from the flat (uniform) class prior the flat log-loss scores to
  the split's own class mix;
- ``vector``: ``w * z + b`` (vector scaling, Guo et al. 2017; L2 1e-3);
- ``prior_shift``: ``z / T + log n_c``: the training's 1 / n_c class weighting undone
  analytically (n_c: validation objects per class), T fitted after it.

Per view: top-label ECE (15 bins, as ``astrot2 calibrate``), its noise floor, the flat
(class-balanced) log-loss and the plain NLL.  Writes
``benchmarks/results/calibrators-NAME.json``.

Usage: python -m benchmarks.calibrators --model lsst [--threads 1]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

from astrot2.calibration import split_logits
from astrot2.metrics import (
    ece_noise_floor,
    expected_calibration_error,
    negative_log_likelihood,
    weighted_log_loss,
)
from astrot2.runtime import resolve_model
from benchmarks.common import plasticc_objects, write_result

L2 = 1e-3


def fit_calibrator(kind: str, z: np.ndarray, y: np.ndarray):
    """Fit one calibration map by NLL on ``(z, y)``; returns ``z -> calibrated logits``."""
    k = z.shape[1]
    prior = np.log(np.maximum(np.bincount(y, minlength=k), 1.0))

    def apply(p: np.ndarray, x: np.ndarray) -> np.ndarray:
        if kind == "temperature":
            return x / np.exp(p[0])
        if kind == "temperature+bias":
            return x / np.exp(p[0]) + p[1:]
        if kind == "vector":
            return x * np.exp(p[:k]) + p[k:]
        return x / np.exp(p[0]) + prior  # prior_shift

    size = {"temperature": 1, "temperature+bias": 1 + k, "vector": 2 * k, "prior_shift": 1}
    penalised = kind in ("temperature+bias", "vector")

    def loss(p: np.ndarray) -> float:
        penalty = L2 * float(np.sum(p[1:] ** 2)) if penalised else 0.0
        return negative_log_likelihood(apply(p, z), y) + penalty

    res = minimize(loss, np.zeros(size[kind]), method="L-BFGS-B")
    return lambda x: apply(res.x, x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="lsst", help="shipped model name or folder")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    folder = resolve_model(args.model)
    batch = plasticc_objects()
    logits = {s: split_logits(folder, batch, s, args.threads) for s in ("validation", "test")}
    z_val = np.concatenate([z for z, _ in logits["validation"].values()])
    y_val = np.concatenate([y for _, y in logits["validation"].values()])
    result: dict = {"model": args.model, "fitted_on": "validation, pooled views",
                    "calibrators": {}}
    for kind in ("none", "temperature", "temperature+bias", "vector", "prior_shift"):
        cal = (lambda x: x) if kind == "none" else fit_calibrator(kind, z_val, y_val)
        views = {}
        for view, (z, y) in logits["test"].items():
            p = np.exp(log_softmax(cal(z), axis=1))
            views[view] = {"n": len(y), "ece": expected_calibration_error(p, y),
                           "ece_noise_floor": ece_noise_floor(p, n_draws=100),
                           "flat_log_loss": weighted_log_loss(y, p),
                           "nll": negative_log_likelihood(cal(z), y)}
        result["calibrators"][kind] = views
        print(kind, {v: {k: round(x, 3) for k, x in m.items()} for v, m in views.items()})
    result["command"] = f"python -m benchmarks.calibrators --model {args.model}"
    print("wrote", write_result(f"calibrators-{folder.name}", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
