"""Real-sky check of the ``ztf`` model: spectroscopically typed ZTF SNe Ia cut as alerts.

The 2,289 Bright Transient Survey SNe Ia of ``ztf-labelled/light-curve-test-data/SNIa``
(light curves from the ANTARES broker: ``time, mag, magerr, band``) are cut as alerts:
for each, an alert time drawn uniformly between 3 and 30 days after the first detection
(seeded), keeping at most 30 days of history, as a ZTF alert does.  The shipped ``ztf``
model classifies them; the share of each predicted class is the confusion row of SN Ia.
Writes ``benchmarks/results/real_sky.json``.

Usage: python -m benchmarks.real_sky [--model ztf] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from pyarrow import csv

from astrot2.classes import CLASSES
from astrot2.lightcurves import LightCurveBatch
from astrot2.photometry import mag_to_fluxcal
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ztf")
    parser.add_argument("--seed", type=int, default=0)
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
    print("wrote", write_result("real_sky", out))


if __name__ == "__main__":
    main()
