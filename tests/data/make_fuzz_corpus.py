"""Write the reader fuzz corpus ``tests/data/fuzz`` from the real fixtures of ``tests/data``.

Each source is a small real alert file (a few alerts cut from a committed fixture, written
back with fastavro / pyarrow / gzip); each corpus file is that source truncated, bit-flipped
or with a run of bytes zeroed, at seeded positions.  ``tests/data/fuzz/MANIFEST.json``
records, for every corpus file, its source, the damage done and the number of alerts of the
undamaged source.  ``tests/test_fuzz.py`` reads every file: each must give a typed
``AlertFormatError`` naming it, or one light curve per alert it still holds.

Usage: python tests/data/make_fuzz_corpus.py   (rewrites tests/data/fuzz; seeded)
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path

import fastavro
import numpy as np
import pyarrow.parquet as pq

from astrot2.io.rubin import AVRO_SPEC as RUBIN_SPEC
from astrot2.io.ztf import AVRO_SPEC as ZTF_SPEC

HERE = Path(__file__).resolve().parent
OUT = HERE / "fuzz"
#: Truncation points, as fractions of the file size.
FRACTIONS = (0.01, 0.1, 0.33, 0.5, 0.75, 0.9, 0.99)
N_RANDOM_FLIPS = 8


def _avro_head(src: Path, n: int) -> bytes:
    """The first ``n`` records of an Avro file, rewritten with its own schema and codec."""
    with open(src, "rb") as fh:
        reader = fastavro.reader(fh)
        schema, codec = reader.writer_schema, reader.codec
        records = [rec for _, rec in zip(range(n), reader, strict=False)]
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), records, codec=codec,
                    sync_marker=b"astrot2-fuzzsync")
    return buf.getvalue()


def _parquet_head(src: Path, n: int, columns: list[str]) -> bytes:
    """The first ``n`` rows of the alert ``columns`` of a Parquet file, rewritten by pyarrow.

    Written without statistics nor the Arrow schema, zstd-compressed: the nested alert
    schemas otherwise make a footer of ~60 kB, times every corpus file.
    """
    table = pq.read_table(src)
    table = table.select([c for c in columns if c in table.column_names]).slice(0, n)
    buf = io.BytesIO()
    pq.write_table(table, buf, write_statistics=False, compression="zstd", store_schema=False,
                   use_dictionary=False)
    return buf.getvalue()


def _csv_head(src: Path, n_lines: int) -> bytes:
    """The first ``n_lines`` lines (header included) of a gzipped CSV, uncompressed."""
    with gzip.open(src, "rb") as fh:
        return b"".join(fh.readline() for _ in range(n_lines))


def sources() -> dict[str, tuple[str, bytes, int]]:
    """Corpus sources: name -> (survey folder, bytes, number of alerts in it)."""
    elasticc_gz = (HERE / "elasticc" / "elasticc_single.avro.gz").read_bytes()
    csv = _csv_head(HERE / "plasticc" / "plasticc_lc_sample.csv.gz", 400)
    n_csv_objects = len({line.split(b",")[0] for line in csv.splitlines()[1:]})
    return {
        "ztf_transfer_2.avro": ("ztf", _avro_head(
            HERE / "ztf" / "fink_transfer_4.02_4.avro", 2), 2),
        "ztf_fink_3.parquet": ("ztf", _parquet_head(
            HERE / "ztf" / "fink_4.02_10.parquet", 3, list(ZTF_SPEC)), 3),
        "elasticc_single.avro.gz": ("lsst", elasticc_gz, 1),
        "rubin_raw_3.parquet": ("lsst", _parquet_head(
            HERE / "rubin" / "rubin_raw_5.parquet", 3, list(RUBIN_SPEC)), 3),
        "plasticc_lc.csv": ("lsst", csv, n_csv_objects),
        "plasticc_lc.csv.gz": ("lsst", gzip.compress(csv, mtime=0), n_csv_objects),
    }


def _flip(data: bytes, positions: np.ndarray, bits: np.ndarray) -> bytes:
    buf = bytearray(data)
    for pos, bit in zip(positions, bits, strict=True):
        buf[int(pos)] ^= 1 << int(bit)
    return bytes(buf)


def damages(data: bytes, rng: np.random.Generator) -> dict[str, tuple[str, bytes]]:
    """Damaged copies of ``data``: tag -> (description, bytes)."""
    n = len(data)
    out: dict[str, tuple[str, bytes]] = {}
    for f in FRACTIONS:
        cut = max(1, int(n * f))
        out[f"trunc{int(f * 100):02d}"] = (f"truncated to {cut} of {n} bytes", data[:cut])
    out["trunc_last"] = (f"truncated to {n - 1} of {n} bytes", data[:-1])
    for k in range(N_RANDOM_FLIPS):
        m = 1 + k % 4
        pos, bits = rng.integers(0, n, m), rng.integers(0, 8, m)
        out[f"flip{k}"] = (f"bits flipped at bytes {sorted(pos.tolist())}", _flip(data, pos, bits))
    for where, lo, hi in (("head", 0, max(2, n // 20)), ("tail", n - max(2, n // 20), n)):
        for k in range(2):
            pos, bits = rng.integers(lo, hi, 3), rng.integers(0, 8, 3)
            out[f"flip_{where}{k}"] = (f"bits flipped at bytes {sorted(pos.tolist())}",
                                       _flip(data, pos, bits))
    for k in range(2):
        start = int(rng.integers(0, max(1, n - 64)))
        buf = bytearray(data)
        buf[start:start + 64] = bytes(len(buf[start:start + 64]))
        out[f"zeros{k}"] = (f"bytes {start}..{start + 63} zeroed", bytes(buf))
    return out


def _inner_damages(gz: bytes, rng: np.random.Generator) -> dict[str, tuple[str, bytes]]:
    """Damage inside a gzipped file's content, recompressed (the gzip layer stays valid)."""
    raw = gzip.decompress(gz)
    chosen = ("trunc50", "flip1", "flip2", "flip3", "flip_tail0", "zeros0")
    return {f"inner_{tag}": (f"content {what}, recompressed", gzip.compress(damaged, mtime=0))
            for tag, (what, damaged) in damages(raw, rng).items() if tag in chosen}


def _stem_and_ext(name: str) -> tuple[str, str]:
    for ext in (".avro.gz", ".csv.gz", ".avro", ".parquet", ".csv"):
        if name.endswith(ext):
            return name[: -len(ext)], ext
    raise ValueError(name)


def main() -> None:
    """Rewrite ``tests/data/fuzz`` and its ``MANIFEST.json``."""
    shutil.rmtree(OUT, ignore_errors=True)
    manifest = {}
    for index, (name, (survey, data, n_alerts)) in enumerate(sorted(sources().items())):
        rng = np.random.default_rng(1000 + index)
        variants = damages(data, rng)
        if name.endswith(".gz"):
            variants.update(_inner_damages(data, rng))
        stem, ext = _stem_and_ext(name)
        folder = OUT / survey
        folder.mkdir(parents=True, exist_ok=True)
        for tag, (what, damaged) in sorted(variants.items()):
            path = folder / f"{stem}.{tag}{ext}"
            path.write_bytes(damaged)
            manifest[f"{survey}/{path.name}"] = {"source": name, "damage": what,
                                                 "source_alerts": n_alerts}
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"{len(manifest)} files in {OUT}")


if __name__ == "__main__":
    main()
