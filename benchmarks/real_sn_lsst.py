"""`lsst` models on real supernovae: ZTF BTS light curves read as LSST g, r.

No labelled Rubin light curves exist yet; the real ZTF Bright Transient Survey objects of the
data folder (``ztf-labelled/bts-antares``) are the only real supernovae the project has.  Read
through LSST's g and r (ZTF g, r: same FLUXCAL zero point, bandpasses close), without host
photo-z (the BTS redshift is a label, never an input) and with ``mwebv`` 0, they are a real-sky
check of what an `lsst` model learned about SNe Ia and SNe II: bright, nearby, two bands and
detections only, so far from Rubin's depth, but real light curves where every other check of
the `lsst` model is a simulation.  Its control (``control_plasticc_whole``): the `lsst`
model's own PLAsTiCC validation SNe Ia and II reduced to what a BTS source has (g, r,
detections only, no photo-z): what the same reduction does to objects like those it
learned from (``control_plasticc_unreduced``: the same objects with all their bands and
forced photometry, without photo-z).

``--transplant K`` adds K copies of each object moved to LSST (``augment.transplanted``: the
object's 2D GP moved to a redshift 0.1-1.0, observed at every visit of a PLAsTiCC LSST field
with that visit's depth, forced photometry, only the LSST bands whose source-frame wavelength
the two ZTF bands cover; the BTS redshift moves the object and is never an input), scored
whole and at the same cuts with 12 months of history (``lsst_depth_*`` views); the control
copies (``control_plasticc_lsst_depth_*``) are moved the same way, so that real and
simulated supernovae are compared on equal terms.

The objects of the real-sky split of ``ztf`` (``realsky.split_objects``, seed 0):
``--split validation`` for choices, ``test`` once per shipped model.  Per model and view
(whole light curves and the ZTF alert cuts of ``realsky.CUTS``, 30 days of history): SN Ia
vs SN II ROC AUC of ``p(SN Ia)``, with a paired bootstrap interval (2,000 draws of the
objects, each with all its copies) of each model's difference from the first.
Writes ``benchmarks/results/real_sn_lsst[-NAME].json``.

Usage: python -m benchmarks.real_sn_lsst [--models lsst lsst+companion] [--split validation]
       [--transplant K] [--name LABEL]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from astrot2.augment import without_redshift
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


def paired_interval(y: np.ndarray, a: np.ndarray, b: np.ndarray, groups: np.ndarray,
                    n: int = 2000, seed: int = 0) -> list[float]:
    """95 % bootstrap interval of ``AUC(b) - AUC(a)`` over the same resampled objects
    (``groups``: the object of each row; an object's rows are drawn together)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    objects, inverse = np.unique(groups, return_inverse=True)
    rows = [np.flatnonzero(inverse == j) for j in range(len(objects))]
    gains = []
    for _ in range(n):
        k = np.concatenate([rows[j] for j in rng.integers(len(objects), size=len(objects))])
        if y[k].all() or not y[k].any():
            continue
        gains.append(roc_auc_score(y[k], b[k]) - roc_auc_score(y[k], a[k]))
    return [round(float(v), 4) for v in np.percentile(gains, [2.5, 97.5])]


def transplanted_views(batch: LightCurveBatch, is_ia: np.ndarray, copies: int, prefix: str
                       ) -> dict[str, tuple[LightCurveBatch, np.ndarray, np.ndarray]]:
    """``copies`` LSST copies of each object of ``batch`` (``extra["redshift"]``; seeds
    0..copies-1, one GP fit, the shipped `lsst` GP settings), whole and at
    :data:`astrot2.realsky.CUTS` with 365 days of history, pooled: each view with the
    labels and the object index of every copy that was detected."""
    from astrot2.augment import TransplantConfig, transplanted
    from astrot2.gp import fit_gp
    from astrot2.simulate import SIM_SURVEYS, pointings_from_light_curves
    from benchmarks.common import plasticc_objects

    gp = Classifier.load("lsst").manifest.gp
    fit = fit_gp(batch, gp)
    pointings = pointings_from_light_curves(plasticc_objects())
    config = TransplantConfig(photon_noise=SIM_SURVEYS["lsst"].photon_noise)
    parts = [transplanted(batch, fit.amplitude, fit.length_scale, pointings, LSST, config,
                          seed, gp.wavelength_scale) for seed in range(copies)]
    obj = np.concatenate([np.flatnonzero(p.ok) for p in parts])
    pooled = LightCurveBatch.concat([p.take(np.flatnonzero(p.ok)) for p in parts])
    return {f"{prefix}_whole": (pooled, is_ia[obj], obj),
            **{f"{prefix}_{cut}": (evaluation_cut(pooled, cut, 365.0), is_ia[obj], obj)
               for cut in CUTS}}


def plasticc_sources(ia: int, ii: int) -> tuple[LightCurveBatch, LightCurveBatch, np.ndarray]:
    """The control: the `lsst` model's PLAsTiCC validation SNe Ia and II as they are, and
    reduced to what a BTS source has (g and r, detections only) with their spectroscopic
    redshift to move them; and which are SNe Ia."""
    from astrot2.classes import class_index
    from astrot2.modelref import resolve_model
    from astrot2.recipe import split_indices
    from benchmarks.common import plasticc_objects

    batch = plasticc_objects()
    val = batch.take(split_indices(batch, resolve_model("lsst"), "validation"))
    y = class_index(val.extra["target"])
    val = val.take(np.flatnonzero(np.isin(y, [ia, ii])))
    gr = np.isin(val.band, LSST.band_index(np.array(["g", "r"])))
    source = val.keep_points(gr & val.detected)
    source = replace(source, extra={**val.extra, "redshift": val.extra["hostgal_specz"]})
    return val, source, class_index(val.extra["target"]) == ia


def main(argv: list[str] | None = None) -> int:
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lsst", "lsst+companion"])
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    parser.add_argument("--transplant", type=int, default=0,
                        help="also K copies of each object moved to LSST depth and cadence, "
                        "and of the PLAsTiCC validation SNe as a control")
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
    rows = np.arange(len(batch))
    views = {"whole": (as_lsst_bands(batch), is_ia, rows),
             **{cut: (as_lsst_bands(evaluation_cut(batch, cut)), is_ia, rows) for cut in CUTS}}
    full, source, source_ia = plasticc_sources(ia, ii)
    controls = np.arange(len(source))
    views["control_plasticc_unreduced"] = (without_redshift(full), source_ia, controls)
    views["control_plasticc_whole"] = (without_redshift(source), source_ia, controls)
    if args.transplant:
        views.update(transplanted_views(batch, is_ia, args.transplant, "lsst_depth"))
        views.update(transplanted_views(source, source_ia, args.transplant,
                                        "control_plasticc_lsst_depth"))
    out: dict = {"data": "ztf-labelled/bts-antares, ZTF g, r read as LSST g, r, no photo-z",
                 "split": args.split, "snia": int(is_ia.sum()), "snii": int((~is_ia).sum()),
                 "transplant_copies": args.transplant, "models": {}}
    scores: dict[str, dict[str, np.ndarray]] = {}
    for model in args.models:
        clf = Classifier.load(model, threads=2)
        res, scores[model] = {"name": clf.name}, {}
        for view, (b, y, obj) in views.items():
            pred = clf.predict(b)
            ok = pred.status == "ok"
            scores[model][view] = p = np.where(ok, pred.probabilities[:, ia], 0.0)  # failed: last
            res[view] = {"rows": len(p), "classified": int(ok.sum()),
                         "snia_vs_snii_auc": round(float(roc_auc_score(y, p)), 4)}
            if model != args.models[0]:
                res[view]["minus_first_interval"] = paired_interval(
                    y, scores[args.models[0]][view], p, obj)
        out["models"][model] = res
        print(model, {v: res[v]["snia_vs_snii_auc"] for v in views})
    print("wrote", write_result(f"real_sn_lsst{'-' + args.name if args.name else ''}", out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
