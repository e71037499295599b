"""Regenerate the labelled real ZTF light-curve fixtures under ``tests/data/labelled/``.

``ASTROT2_DATA=/path/to/data python tests/data/make_fixtures_labelled.py``: a few objects of
each layout of ``ztf-labelled/`` (files copied verbatim; catalogue and ALeRCE tables cut to
those objects' rows, columns unchanged).  Reruns give identical bytes.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent / "labelled"
#: BTS objects kept: the first of each of these types in catalogue order (sorted ids).
BTS_TYPES = ("SN Ia", "SN Ia", "SN Ia", "SN II", "SN IIP", "SN IIn", "SN Ic", "SN Ib",
             "SLSN-I", "nova")


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, list(reader)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def bts(src: Path) -> None:
    header, rows = _rows(src / "labels.csv")
    col = header.index("type")
    rows = sorted(rows, key=lambda r: r[0])
    wanted, kept = list(BTS_TYPES), []
    for row in rows:
        if row[col] in wanted and (src / "light-curves" / f"{row[0]}.csv").is_file():
            wanted.remove(row[col])
            kept.append(row)
    out = HERE / "bts"
    _write(out / "labels.csv", header, kept)
    for row in kept:
        (out / "light-curves").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / "light-curves" / f"{row[0]}.csv",
                        out / "light-curves" / f"{row[0]}.csv")


def lcdata(src: Path, n: int = 3) -> None:
    header, rows = _rows(src / "bts.csv")
    have = sorted(p.stem for p in (src / "light-curves").glob("*.csv"))[:n]
    out = HERE / "lcdata"
    _write(out / "bts.csv", header, [r for r in rows if r[0] in have])
    (out / "light-curves").mkdir(parents=True, exist_ok=True)
    for oid in have:
        shutil.copyfile(src / "light-curves" / f"{oid}.csv", out / "light-curves" / f"{oid}.csv")


def alerce(src: Path, n: int = 4) -> None:
    header, rows = _rows(src / "30_sne_labels.csv")
    by_class: dict[str, list[str]] = {}
    for oid, label in sorted(rows):
        by_class.setdefault(label, []).append(oid)
    keep = sorted({ids[0] for ids in by_class.values()})[:n]
    out = HERE / "alerce"
    _write(out / "4_sne_labels.csv", header, [r for r in rows if r[0] in keep])
    for name in ("detections_corr", "non_detections"):
        h, r = _rows(src / f"30_sne_{name}.csv")
        _write(out / f"4_sne_{name}.csv", h, [x for x in r if x[0] in keep])


if __name__ == "__main__":
    root = Path(os.environ["ASTROT2_DATA"]) / "ztf-labelled"
    bts(root / "bts-antares")
    lcdata(root / "light-curve-test-data" / "SNIa")
    alerce(root / "alerce-lc_classifier" / "data_examples")
    print("wrote", HERE)
