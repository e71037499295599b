"""Regenerate the PLAsTiCC test fixtures from the real training set.

Usage: ASTROT2_DATA=/path/to/data python tests/data/make_fixtures_plasticc.py

Reads ``$ASTROT2_DATA/plasticc/training_set.csv.gz`` and ``training_set_metadata.csv``
(the PLAsTiCC training set, The PLAsTiCC team, CC-BY 4.0, Zenodo record 2539456, as
shipped in the ``snmachine==2.0.0.post3`` wheel, BSD-3) and keeps the
:data:`N_PER_CLASS` smallest object ids of each of the 14 classes.  Lines are copied
verbatim (header included), so the metadata sample keeps every column of the original,
the ``true_*`` simulation truth too: the tests check that the reader never loads them.
The gzip header carries no time stamp, so reruns give identical bytes.
"""

from __future__ import annotations

import gzip
import os
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
N_PER_CLASS = 7
LC_NAME = "plasticc_lc_sample.csv.gz"
META_NAME = "plasticc_meta_sample.csv"


def pick_objects(meta_lines: list[str], n_per_class: int = N_PER_CLASS) -> set[int]:
    """The ``n_per_class`` smallest object ids of every ``target`` class."""
    header = [c.strip() for c in meta_lines[0].split(",")]
    i_id, i_target = header.index("object_id"), header.index("target")
    by_class: dict[int, list[int]] = defaultdict(list)
    for line in meta_lines[1:]:
        fields = line.split(",")
        by_class[int(fields[i_target])].append(int(fields[i_id]))
    return {i for ids in by_class.values() for i in sorted(ids)[:n_per_class]}


def write_sample(src: Path, out: Path, n_per_class: int = N_PER_CLASS) -> set[int]:
    """Write the metadata and light-curve samples of ``src/plasticc`` into ``out``."""
    meta_lines = (src / "plasticc" / "training_set_metadata.csv").read_text().splitlines(True)
    keep = pick_objects(meta_lines, n_per_class)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / META_NAME, "w") as fh:
        fh.write(meta_lines[0])
        fh.writelines(line for line in meta_lines[1:] if int(line.split(",", 1)[0]) in keep)
    with gzip.open(src / "plasticc" / "training_set.csv.gz", "rt") as fin, \
            open(out / LC_NAME, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(fin.readline().encode())
        for line in fin:
            if int(line.split(",", 1)[0]) in keep:
                gz.write(line.encode())
    return keep


def main() -> None:
    keep = write_sample(Path(os.environ["ASTROT2_DATA"]), HERE / "plasticc")
    print(f"wrote {len(keep)} PLAsTiCC objects to {HERE / 'plasticc'}")


if __name__ == "__main__":
    main()
