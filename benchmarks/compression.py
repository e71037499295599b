"""Compression methods of a model, measured: size, load latency, model-only latency and
throughput, held-out accuracy (``astrot2 compress`` + timing).

Every variant folder is made by :func:`astrot2.compress.pipeline.compress_model` (reused
when it already exists under ``--out``); timings are model-only (the ONNX Runtime session
on precomputed validation inputs, no GP), medians of ``--rounds`` round-robin rounds,
each a median of repeated calls.  Writes ``benchmarks/results/compression-NAME.json`` and
the table between the ``<!-- table:NAME -->`` markers of ``docs/compression.md``.

Usage: python -m benchmarks.compression --model lsst [--out out/compress-lsst]
       [--methods ...] [--threads 1] [--rounds 3] [--ship-to src/astrot2/models/lsst]
       [--name lsst] [--teachers DIR ...] [--set sparsity=0.35 clusters=24 ...]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from astrot2.compress.pipeline import METHODS, config_from, markdown_table, run, ship_to
from benchmarks.common import REPO, plasticc_objects, write_result

DOC = REPO / "docs" / "compression.md"


def update_doc(name: str, table: str, path: Path = DOC) -> None:
    """Replace the table between ``<!-- table:NAME -->`` and ``<!-- /table -->``."""
    text = path.read_text() if path.is_file() else ""
    block = f"<!-- table:{name} -->\n{table}<!-- /table -->"
    pattern = re.compile(rf"<!-- table:{re.escape(name)} -->.*?<!-- /table -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else \
        text + f"\n{block}\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lsst")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ship-to", type=Path, default=None,
                        help="install the variant chosen by the shipping rule there")
    parser.add_argument("--name", default=None,
                        help="results and docs table name (default: the model folder's)")
    parser.add_argument("--teachers", nargs="+", default=[],
                        help="more teacher model folders for the students (an ensemble)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="CompressConfig settings, e.g. sparsity=0.35 clusters=24")
    args = parser.parse_args(argv)
    name = args.name or Path(args.model).name
    out = args.out or REPO / "out" / f"compress-{name}"
    load_before = os.getloadavg()
    results = run(args.model, out, plasticc_objects(), methods=args.methods,
                  threads=args.threads, rounds=args.rounds,
                  config=config_from(args.set, teachers=tuple(args.teachers)))
    results["load_average_1_5_15_min"] = {"before": load_before, "after": os.getloadavg()}
    table = markdown_table(results["variants"])
    path = write_result(f"compression-{name}", {
        "command": "python -m benchmarks.compression " + " ".join(sys.argv[1:] if argv is None
                                                                 else argv),
        **results})
    update_doc(name, table)
    if args.ship_to is not None:
        ship_to(results, args.ship_to)
    print(table)
    print(f"ship: {results['ship']}; written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
