"""Class priors: re-weight a model's probabilities to the class mix a broker expects.

A model trained with the flat class-weighted loss (every class counts the same, as the
PLAsTiCC metric wants) returns probabilities for a flat prior over its classes.  A broker
that sees a known mix, e.g. the Bright Transient Survey's (about 3 in 4 transients
brighter than 18.5 mag are SNe Ia), gets better-calibrated probabilities for that mix by
Bayes' rule::

    p'(c | x) = p(c | x) * prior(c) / train_prior(c), renormalised over the classes.

``train_prior`` is the mix the model's loss saw (the manifest's ``training.class_prior``;
flat over the 14 classes when absent).  Torch-free, NumPy only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from astrot2.classes import CLASSES
from astrot2.errors import ConfigError

__all__ = ["PRIORS", "as_prior", "load_prior", "reweight", "training_prior"]

#: Shares of the Bright Transient Survey's spectroscopic classes (Perley et al. 2020;
#: REFERENCE: SN Ia ~72 %, SN II ~18 %, SN Ibc ~6 %, SLSN ~1.5 %, TDE < 1 %), split between
#: the SN Ia sub-types as in the real BTS labels (Iax, 91bg ~0.3 % each); every other class
#: (variable stars, AGN, microlensing, kilonovae) gets 0.1 %: a BTS-like transient sample
#: still holds a few of them.
_BTS = {"SNIa": 0.72, "SNII": 0.18, "SNIbc": 0.06, "SLSN-I": 0.015, "TDE": 0.005,
        "SNIax": 0.003, "SNIa-91bg": 0.003}
_FLOOR = 0.001

#: Named priors of ``astrot2 classify --prior``: ``flat`` (every class alike: what the
#: PLAsTiCC metric scores), ``bts`` and ``model`` (None: the mix the model was trained with,
#: its probabilities unchanged; the same as ``flat`` for a model trained flat).
PRIORS: dict[str, dict[str, float] | None] = {
    "flat": {c.name: 1.0 for c in CLASSES},
    "bts": {c.name: _BTS.get(c.name, _FLOOR) for c in CLASSES},
    "model": None,
}


def as_prior(weights: dict[str, float]) -> np.ndarray:
    """A prior vector in the model's class order from ``{class name: weight}``.

    The named weights are normalised to sum to 1 - 0.001 x (classes not named); each class
    not named gets 0.001: no class is made impossible, so every row still sums to 1.

    Raises
    ------
    ConfigError
        For an unknown class name, or a weight that is not a finite number > 0.
    """
    names = [c.name for c in CLASSES]
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ConfigError(f"prior names unknown classes {unknown}; the classes are {names}")
    given = np.array([n in weights for n in names])
    try:
        vec = np.array([float(weights.get(n, 1.0)) for n in names])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"prior weights must be numbers, got {weights}") from exc
    if not np.isfinite(vec).all() or (vec <= 0).any():
        raise ConfigError(f"prior weights must be finite numbers > 0, got {weights}")
    share = 1.0 - _FLOOR * (~given).sum()
    return np.where(given, vec / vec[given].sum() * share, _FLOOR)


def load_prior(spec: str | Path) -> np.ndarray | None:
    """The prior named ``spec`` (:data:`PRIORS`) or read from a JSON file of
    ``{class name: weight}``; None for ``model`` (the model's own probabilities).

    Raises
    ------
    ConfigError
        If ``spec`` is neither a known name nor a readable JSON object of class weights.
    """
    if str(spec) in PRIORS:
        weights = PRIORS[str(spec)]
        return None if weights is None else as_prior(weights)
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--prior {spec}: not one of {sorted(PRIORS)} and no such file")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--prior {spec}: not a JSON file ({exc})") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"--prior {spec}: expected a JSON object of class name -> weight")
    return as_prior(doc)


def training_prior(manifest: dict) -> np.ndarray | None:
    """The class mix a model's training loss saw (``training.class_prior`` of its
    manifest, ``{class name: share}``), in class order; None (flat) when not recorded."""
    shares = (manifest.get("training") or {}).get("class_prior")
    if shares is None:
        return None
    vec = np.array([float(shares.get(c.name, 0.0)) for c in CLASSES])
    return vec / vec.sum()


def reweight(prob: np.ndarray, prior: np.ndarray | None,
             train_prior: np.ndarray | None = None) -> np.ndarray:
    """Probabilities for ``prior`` from probabilities for ``train_prior`` (Bayes' rule).

    Parameters
    ----------
    prob : ndarray of shape (n_alerts, n_classes)
        Rows summing to 1 (rows of zeros, rejected alerts, stay zeros).
    prior : ndarray of shape (n_classes,) or None
        The target mix; None returns ``prob`` unchanged.
    train_prior : ndarray of shape (n_classes,), optional
        The mix ``prob`` is for (default flat).  Classes it gives 0 keep probability 0.

    Returns
    -------
    ndarray of shape (n_alerts, n_classes), same dtype as ``prob``
    """
    base = np.full(prob.shape[1], 1.0 / prob.shape[1]) if train_prior is None else train_prior
    if prior is None or np.allclose(prior, base, rtol=0.0, atol=1e-12):
        return prob  # nothing to re-weight: the same numbers, bit for bit
    ratio = np.divide(prior, base, out=np.zeros_like(prior, dtype=np.float64),
                      where=base > 0)
    out = prob.astype(np.float64) * ratio
    total = out.sum(axis=1, keepdims=True)
    out = np.divide(out, total, out=np.zeros_like(out), where=total > 0)
    return out.astype(prob.dtype)
