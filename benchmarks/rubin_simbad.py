"""Real Rubin alerts against their SIMBAD cross-match: which class the model calls them.

The Fink export of ``rubin/fink-tutorials-2026-03-27`` (107 real LSSTCam alerts of 73
objects, 2026-03-10) carries each object's SIMBAD type (``xm.simbad_otype``).  SIMBAD
types map to the model's classes where one exists (:data:`SIMBAD_CLASSES`: QSO, Seyfert,
AGN -> AGN; eclipsing binaries -> EB; RR Lyrae -> RRL); per SIMBAD type, the share of
alerts whose top class is the mapped one.  The alerts are read as ``astrot2 classify``
reads them (forced photometry included).  No host photo-z: the alerts carry none.
Writes ``benchmarks/results/rubin_simbad[-NAME].json``.

Usage: python -m benchmarks.rubin_simbad [--model lsst] [--name LABEL]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import numpy as np
import pyarrow.parquet as pq

from astrot2.classes import CLASSES
from astrot2.io import read_alerts
from astrot2.runtime import Classifier
from benchmarks.common import data_dir, write_result

#: SIMBAD object types -> the model's class (types without a counterpart are reported
#: but not scored).
SIMBAD_CLASSES = {"QSO": "AGN", "Sy1": "AGN", "Sy2": "AGN", "Seyfert": "AGN", "AGN": "AGN",
                  "AG?": "AGN", "LIN": "AGN", "Bla": "AGN", "BLL": "AGN", "EB*": "EB",
                  "RR*": "RRL", "Mi*": "Mira"}


def simbad_types(folder) -> dict[str, str]:
    """``diaSourceId`` (as text) -> SIMBAD type of every alert of the export's files."""
    out: dict[str, str] = {}
    for file in sorted(folder.glob("*.parquet")):
        table = pq.read_table(file, columns=["diaSourceId", "xm"]).to_pylist()
        for row in table:
            otype = (row["xm"] or {}).get("simbad_otype")
            out[str(row["diaSourceId"])] = otype or "none"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lsst", help="model name or folder")
    parser.add_argument("--name", default=None, help="write rubin_simbad-NAME.json")
    args = parser.parse_args(argv)
    root = data_dir()
    if root is None:
        raise SystemExit("needs ASTROT2_DATA")
    folder = root / "rubin" / "fink-tutorials-2026-03-27"
    batch = read_alerts([folder])
    otype = simbad_types(folder)
    types = np.array([otype.get(str(a), "none") for a in batch.alert_id])
    clf = Classifier.load(args.model)
    pred = clf.predict(batch)
    names = np.array([c.name for c in CLASSES])
    top = np.where(pred.status == "ok", names[pred.probabilities.argmax(axis=1)], "rejected")
    out: dict = {"model": clf.name, "alerts": len(batch),
                 "median_points": float(np.median(batch.n_points)), "types": {}}
    for t in sorted(set(types), key=lambda s: -int((types == s).sum())):
        sel = types == t
        counts = Counter(top[sel].tolist())
        entry = {"alerts": int(sel.sum()), "top_classes": dict(counts.most_common())}
        if t in SIMBAD_CLASSES:
            entry["expected"] = SIMBAD_CLASSES[t]
            entry["correct"] = int((top[sel] == SIMBAD_CLASSES[t]).sum())
        out["types"][t] = entry
    agn = np.isin(types, ("QSO", "Sy1", "Sy2", "Seyfert"))
    out["qso_seyfert_alerts"] = int(agn.sum())
    out["qso_seyfert_called_agn"] = int((top[agn] == "AGN").sum())
    out["qso_seyfert_agn_share"] = float((top[agn] == "AGN").mean()) if agn.any() else None
    print(f"{clf.name}: QSO/Seyfert alerts called AGN {out['qso_seyfert_called_agn']} of "
          f"{out['qso_seyfert_alerts']}", file=sys.stderr)
    write_result(f"rubin_simbad{'-' + args.name if args.name else ''}", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
