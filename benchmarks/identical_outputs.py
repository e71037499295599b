"""Are two folders of ``astrot2 classify`` outputs identical?  (Behaviour-unchanged checks.)

Compares every ``*.parquet`` file of folder A with the file of the same name in folder B:
same schema, same rows in the same order, every value equal (probabilities bit for bit;
NaN equals NaN).  Prints one line per file and exits 1 on any difference or missing file.

    python -m benchmarks.identical_outputs /tmp/before /tmp/after
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def differences(a: pa.Table, b: pa.Table) -> list[str]:
    """What differs between two tables (empty: identical, floats compared bit for bit)."""
    if a.schema != b.schema:
        return [f"schema {a.schema} != {b.schema}"]
    if a.num_rows != b.num_rows:
        return [f"{a.num_rows} rows != {b.num_rows}"]
    out = []
    for name in a.column_names:
        x, y = a.column(name).to_numpy(zero_copy_only=False), b.column(name).to_numpy(
            zero_copy_only=False)
        if x.dtype.kind == "f":
            same = x.view(f"u{x.itemsize}") == y.view(f"u{y.itemsize}")  # bits, NaN too
        else:
            same = np.array([u == v for u, v in zip(x, y, strict=True)], dtype=bool)
        if not same.all():
            out.append(f"{name}: {int((~same).sum())} rows differ")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    files = sorted(args.before.glob("*.parquet"))
    if not files:
        print(f"no .parquet files in {args.before}")
        return 1
    status = 0
    for file in files:
        other = args.after / file.name
        if not other.is_file():
            print(f"{file.name}: missing in {args.after}")
            status = 1
            continue
        a, b = pq.read_table(file), pq.read_table(other)
        diff = differences(a, b)
        print(f"{file.name}: {a.num_rows} rows, "
              + ("identical" if not diff else "DIFFERENT: " + "; ".join(diff)))
        status |= bool(diff)
    return status


if __name__ == "__main__":
    sys.exit(main())
