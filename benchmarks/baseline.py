"""Feature + gradient-boosting baseline on the same PLAsTiCC split as t2.

Per-band statistics of the raw light curve (no GP): max, min, mean, median, std of the
flux, detections, signal-to-noise of the peak, duration of detections; band peaks relative
to the overall peak; plus host photo-z and its error for the ``lsst`` variant.
scikit-learn's HistGradientBoostingClassifier with balanced class weights (the flat
metric).  Evaluated on the test split of :func:`astrot2.train.stratified_split` with
the same seed, whole light curves and alert-like windows, like t2.
Writes ``benchmarks/results/baseline.json``.

Usage: python -m benchmarks.baseline [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from astrot2.augment import alert_windows
from astrot2.classes import CLASSES, class_index
from astrot2.features import FeatureConfig, select_bands
from astrot2.lightcurves import LightCurveBatch
from astrot2.metrics import classification_report
from astrot2.train import preset, stratified_split
from benchmarks.common import plasticc_objects, write_result


def band_features(batch: LightCurveBatch, bands: tuple[str, ...], redshift: bool) -> np.ndarray:
    """Per-object feature matrix (n_objects, n_features)."""
    cols = []
    peak_all = batch.reduce(batch.flux, np.fmax)
    for name in bands:
        b = batch.survey.bands.index(name)
        sel = batch.band == b
        f = np.where(sel, batch.flux, np.nan)
        snr = np.where(sel, batch.flux / batch.flux_err, np.nan)
        det = (sel & batch.detected).astype(float)
        t_det = np.where(sel & batch.detected, batch.time, np.nan)
        n = batch.reduce(sel.astype(float), np.add, 0.0)
        mean = batch.reduce(np.nan_to_num(f), np.add, 0.0) / np.maximum(n, 1)
        sq = batch.reduce(np.nan_to_num(f) ** 2, np.add, 0.0) / np.maximum(n, 1)
        peak = batch.reduce(f, np.fmax)
        cols += [peak, batch.reduce(f, np.fmin), mean, np.sqrt(np.maximum(sq - mean**2, 0)),
                 batch.reduce(snr, np.fmax), batch.reduce(det, np.add, 0.0),
                 batch.reduce(t_det, np.fmax) - batch.reduce(t_det, np.fmin),
                 peak / np.where(peak_all != 0, peak_all, np.nan)]
    if redshift:
        cols += [batch.metadata["hostgal_photoz"], batch.metadata["hostgal_photoz_err"]]
    return np.column_stack(cols)


def run(name: str, seed: int) -> dict[str, object]:
    """Fit and evaluate the baseline variant ``name`` ('lsst' or 'ztf')."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    cfg = preset(name, seed=seed)
    batch = select_bands(plasticc_objects(), cfg.features)
    feats: FeatureConfig = cfg.features
    y = class_index(batch.extra["target"])
    tr, va, te = stratified_split(y, cfg.split, seed)
    fit_idx = np.concatenate([tr, va])  # early stopping holds out its own 15 %
    model = HistGradientBoostingClassifier(
        max_iter=1000, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20,
        l2_regularization=1.0, class_weight="balanced", early_stopping=True,
        validation_fraction=0.15, n_iter_no_change=30, random_state=seed)
    model.fit(band_features(batch.take(fit_idx), feats.bands, feats.use_redshift), y[fit_idx])
    names = [c.name for c in CLASSES]
    test = batch.take(te)
    out = {"whole": classification_report(
        y[te], model.predict_proba(band_features(test, feats.bands, feats.use_redshift)), names)}
    windows = alert_windows(test, cfg.augment, seed + 99)
    out["alert_windows"] = classification_report(
        y[te], model.predict_proba(band_features(windows, feats.bands, feats.use_redshift)),
        names)
    print(name, {k: round(v["flat_log_loss"], 4) for k, v in out.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {name: run(name, args.seed) for name in ("lsst", "ztf")}
    print("wrote", write_result("baseline", results))


if __name__ == "__main__":
    main()
