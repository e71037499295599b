"""Real-sky check of the ``ztf`` model: spectroscopically typed ZTF supernovae as alerts.

- The 2,289 Bright Transient Survey SNe Ia of ``ztf-labelled/light-curve-test-data/SNIa``
  (light curves from the ANTARES broker: ``time, mag, magerr, band``, detections only);
- ALeRCE's 30 labelled SNe (``ztf-labelled/alerce-lc_classifier/data_examples``: 19 Ia,
  8 Ibc, 2 SLSN, 1 II), detections and non-detections (``diffmaglim`` upper limits become
  0 +/- limit/5 points, as the ZTF alert reader does).

Each light curve is cut as an alert: an alert time drawn uniformly between 3 and 30 days
after the first detection (seeded), keeping at most 30 days of history, as a ZTF alert
does.  The model classifies them; the share of each predicted class per true type is the
confusion.  Writes ``benchmarks/results/real_sky.json``.

Usage: python -m benchmarks.real_sky [--model ztf] [--seed 0] [--name LABEL]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from pyarrow import csv

from astrot2.classes import CLASSES
from astrot2.lightcurves import LightCurveBatch
from astrot2.photometry import contradicted_limits, limit_to_fluxcal_err, mag_to_fluxcal
from astrot2.runtime import Classifier
from astrot2.surveys import ZTF
from benchmarks.common import data_dir, write_result

BANDS = {"g": 0, "r": 1, "R": 1, "i": 2, "I": 2}


def bts_alerts(folder: Path, seed: int) -> LightCurveBatch:
    """The BTS SN Ia light curves, each cut as an alert (<= 30 days of history)."""
    rng = np.random.default_rng(seed)
    ids, owner, time, mag, err, band = [], [], [], [], [], []
    for k, path in enumerate(sorted(folder.glob("*.csv"))):
        t = csv.read_csv(path)
        tt = t.column("time").to_numpy()
        first = tt.min()
        cut = first + rng.uniform(3.0, 30.0)
        keep = (tt <= cut) & (tt >= cut - 30.0)
        ids.append(path.stem)
        owner.append(np.full(keep.sum(), k))
        time.append(tt[keep])
        mag.append(t.column("mag").to_numpy()[keep])
        err.append(t.column("magerr").to_numpy()[keep])
        band.append(np.array([BANDS.get(b, -1) for b in t.column("band").to_pylist()])[keep])
    flux, flux_err = mag_to_fluxcal(np.concatenate(mag), np.concatenate(err))
    n_obs = len(flux)
    return LightCurveBatch.from_observations(
        ZTF, ids, ids, np.concatenate(owner), np.concatenate(time), flux, flux_err,
        np.concatenate(band), np.ones(n_obs, bool))


#: ALeRCE labels -> astrot2 class names.
ALERCE_CLASSES = {"SNIa": "SNIa", "SNIbc": "SNIbc", "SNII": "SNII", "SLSN": "SLSN-I"}


def _cut(time: np.ndarray, detected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Points an alert 3-30 days after the first detection carries (<= 30 days of history)."""
    cut = time[detected].min() + rng.uniform(3.0, 30.0)
    return (time <= cut) & (time >= cut - 30.0)


def alerce_alerts(folder: Path, seed: int) -> tuple[LightCurveBatch, list[str]]:
    """ALeRCE's 30 labelled SNe cut as alerts, with their non-detections; and the labels."""
    rng = np.random.default_rng(seed)
    det = csv.read_csv(folder / "30_sne_detections_corr.csv").to_pydict()
    lim = csv.read_csv(folder / "30_sne_non_detections.csv").to_pydict()
    labels = dict(zip(*csv.read_csv(folder / "30_sne_labels.csv").to_pydict().values(),
                      strict=True))
    ids = sorted(labels)
    d_oid, l_oid = np.array(det["objectId"]), np.array(lim["objectId"])
    d_flux, d_err = mag_to_fluxcal(np.array(det["magpsf"], float), np.array(det["sigmapsf"],
                                                                           float))
    d_flux *= np.where(np.array(det["isdiffpos"], float) > 0, 1.0, -1.0)
    l_err = limit_to_fluxcal_err(np.array(lim["diffmaglim"], float))
    cols: list[list[np.ndarray]] = [[], [], [], [], [], []]
    for k, oid in enumerate(ids):
        a, b = d_oid == oid, l_oid == oid
        time = np.r_[np.array(det["mjd"])[a], np.array(lim["jd"])[b] - 2400000.5]
        flux = np.r_[d_flux[a], np.zeros(b.sum())]
        err = np.r_[d_err[a], l_err[b]]
        band = np.r_[np.array(det["fid"])[a], np.array(lim["fid"])[b]] - 1
        detected = np.r_[np.ones(a.sum(), bool), np.zeros(b.sum(), bool)]
        keep = _cut(time, detected, rng)
        for col, values in zip(cols, (np.full(len(time), k), time, flux, err, band, detected),
                               strict=True):
            col.append(values[keep])
    owner, time, flux, err, band, detected = (np.concatenate(c) for c in cols)
    # as the ZTF reader: limits a same-night detection outshines are dropped (counted)
    flux = np.where(contradicted_limits(owner, time, band, flux, err, detected), np.nan, flux)
    batch = LightCurveBatch.from_observations(ZTF, ids, ids, owner, time, flux, err,
                                              band.astype(np.int8), detected)
    return batch, [ALERCE_CLASSES[labels[i]] for i in ids]


def confusion(clf: Classifier, batch: LightCurveBatch, labels: list[str]) -> dict:
    """Per true type: count and the share of each predicted (top) class."""
    pred = clf.predict(batch)
    names = np.array([c.name for c in CLASSES])
    top = np.where(pred.status == "ok", names[pred.probabilities.argmax(axis=1)], "rejected")
    out = {}
    for label in sorted(set(labels)):
        sel = np.array(labels) == label
        share = {c: float(np.mean(top[sel] == c)) for c in np.unique(top[sel])}
        out[label] = {"n": int(sel.sum()),
                      "top_class_share": dict(sorted(share.items(), key=lambda kv: -kv[1]))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ztf")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None,
                        help="write real_sky-NAME.json (default: real_sky.json)")
    args = parser.parse_args()
    root = data_dir()
    if root is None:
        raise SystemExit("needs ASTROT2_DATA")
    batch = bts_alerts(root / "ztf-labelled" / "light-curve-test-data" / "SNIa" / "light-curves",
                       args.seed)
    clf = Classifier.load(args.model)
    pred = clf.predict(batch)
    ok = pred.status == "ok"
    top = pred.probabilities[ok].argmax(axis=1)
    share = {c.name: float(np.mean(top == j)) for j, c in enumerate(CLASSES)}
    mean_p = {c.name: float(pred.probabilities[ok, j].mean()) for j, c in enumerate(CLASSES)}
    out = {"model": clf.name, "alerts": len(batch), "classified": int(ok.sum()),
           "median_points": float(np.median(batch.n_points)),
           "top_class_share": dict(sorted(share.items(), key=lambda kv: -kv[1])),
           "mean_probability": mean_p}
    print({k: (round(v, 3) if isinstance(v, float) else v)
           for k, v in list(out["top_class_share"].items())[:6]})
    alerce, labels = alerce_alerts(root / "ztf-labelled" / "alerce-lc_classifier" /
                                   "data_examples", args.seed)
    out["alerce_30_sne"] = {"median_points": float(np.median(alerce.n_points)),
                            "confusion": confusion(clf, alerce, labels)}
    for label, row in out["alerce_30_sne"]["confusion"].items():
        print(label, row["n"], {k: round(v, 2) for k, v in
                                list(row["top_class_share"].items())[:3]})
    print("wrote", write_result(f"real_sky-{args.name}" if args.name else "real_sky", out))


if __name__ == "__main__":
    main()
