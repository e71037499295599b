"""`lsst` models on real supernovae: ZTF BTS light curves read as LSST g, r.

No labelled Rubin light curves exist yet; the real ZTF Bright Transient Survey objects of the
data folder (``ztf-labelled/bts-antares``) are the only real supernovae the project has.  Read
through LSST's g and r (ZTF g, r: same FLUXCAL zero point, bandpasses close), without host
photo-z (the BTS redshift is a label, never an input) and with ``mwebv`` 0, they are a real-sky
check of what an `lsst` model learned about SNe Ia and SNe II: bright, nearby, two bands and
detections only, so far from Rubin's depth, but real light curves where every other check of
the `lsst` model is a simulation.  The objects of the real-sky split of ``ztf``
(``realsky.split_objects``, seed 0): ``--split validation`` for choices, ``test`` once per
shipped model.  Per model and view (whole light curves and the ZTF alert cuts of
``realsky.CUTS``, 30 days of history): SN Ia vs SN II ROC AUC of ``p(SN Ia)``, with a paired
bootstrap interval (2,000 draws of the objects) of each model's difference from the first.
Writes ``benchmarks/results/real_sn_lsst[-NAME].json``.

Usage: python -m benchmarks.real_sn_lsst [--models lsst lsst+companion] [--split validation]
       [--name LABEL]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from astrot2.classes import CLASSES
from astrot2.io.labelled import read_labelled
from astrot2.lightcurves import LightCurveBatch
from astrot2.realsky import CUTS, RealSkyConfig, evaluation_cut, labels_of, split_objects
from astrot2.runtime import Classifier
from astrot2.surveys import LSST, ZTF
from benchmarks.common import data_dir, write_result

NAMES = [c.name for c in CLASSES]


def as_lsst_bands(batch: LightCurveBatch) -> LightCurveBatch:
    """A ZTF batch of g, r light curves as LSST g, r (``band`` 0, 1 -> 1, 2), photo-z
    unknown, ``mwebv`` 0.  ZTF i (rare in BTS alerts) is refused: LSST's i is not it."""
    if batch.survey.name != ZTF.name or (batch.band > 1).any():
        raise ValueError("as_lsst_bands reads ZTF g, r light curves only")
    meta = {**batch.metadata, "mwebv": np.zeros(len(batch)),
            "hostgal_photoz": np.full(len(batch), np.nan),
            "hostgal_photoz_err": np.full(len(batch), np.nan)}
    return replace(batch, survey=LSST, band=(batch.band + 1).astype(batch.band.dtype),
                   metadata=meta)


def paired_interval(y: np.ndarray, a: np.ndarray, b: np.ndarray, n: int = 2000,
                    seed: int = 0) -> list[float]:
    """95 % bootstrap interval of ``AUC(b) - AUC(a)`` over the same resampled objects."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(n):
        k = rng.integers(len(y), size=len(y))
        if y[k].all() or not y[k].any():
            continue
        gains.append(roc_auc_score(y[k], b[k]) - roc_auc_score(y[k], a[k]))
    return [round(float(v), 4) for v in np.percentile(gains, [2.5, 97.5])]


def main(argv: list[str] | None = None) -> int:
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lsst", "lsst+companion"])
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    root = data_dir()
    if root is None:
        raise SystemExit("needs ASTROT2_DATA (the real labelled ZTF light curves)")
    real = read_labelled(root / "ztf-labelled" / "bts-antares").batch
    y_all = labels_of(real)
    part = split_objects(y_all, RealSkyConfig())[args.split]
    ia, ii = NAMES.index("SNIa"), NAMES.index("SNII")
    keep = part[np.isin(y_all[part], [ia, ii])]
    batch, is_ia = real.take(keep), y_all[keep] == ia
    views = {"whole": batch, **{cut: evaluation_cut(batch, cut) for cut in CUTS}}
    out: dict = {"data": "ztf-labelled/bts-antares, ZTF g, r read as LSST g, r, no photo-z",
                 "split": args.split, "snia": int(is_ia.sum()), "snii": int((~is_ia).sum()),
                 "models": {}}
    scores: dict[str, dict[str, np.ndarray]] = {}
    for model in args.models:
        clf = Classifier.load(model, threads=2)
        res, scores[model] = {"name": clf.name}, {}
        for view, b in views.items():
            pred = clf.predict(as_lsst_bands(b))
            ok = pred.status == "ok"
            p = np.where(ok, pred.probabilities[:, ia], 0.0)  # a failed fit ranks last
            scores[model][view] = p
            res[view] = {"classified": int(ok.sum()),
                         "snia_vs_snii_auc": round(float(roc_auc_score(is_ia, p)), 4)}
            if model != args.models[0]:
                res[view]["minus_first_interval"] = paired_interval(
                    is_ia, scores[args.models[0]][view], p)
        out["models"][model] = res
        print(model, {v: res[v]["snia_vs_snii_auc"] for v in views})
    print("wrote", write_result(f"real_sn_lsst{'-' + args.name if args.name else ''}", out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
