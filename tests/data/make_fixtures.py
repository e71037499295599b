"""Regenerate the committed test fixtures from the real data folder.

Usage: ASTROT2_DATA=/path/to/data python tests/data/make_fixtures.py

Every fixture is real public data (see README.md here); files are copied verbatim or cut
down (fewer alerts/objects, image cutouts removed) with pyarrow/fastavro.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import fastavro
import make_fixtures_plasticc  # same folder: run as a script
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SRC = Path(os.environ["ASTROT2_DATA"])


def copy(rel: str, dest: str) -> None:
    """Copy a file verbatim."""
    (HERE / dest).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SRC / rel, HERE / dest)


def parquet_rows(rel: str, dest: str, rows: int | list[int]) -> None:
    """Alerts of a parquet file (the first ``rows``, or those at the listed row numbers, in
    that order), cutout columns removed."""
    table = pq.read_table(SRC / rel)
    table = table.drop_columns([c for c in table.column_names if c.startswith("cutout")])
    picked = table.slice(0, rows) if isinstance(rows, int) else table.take(rows)
    (HERE / dest).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(picked, HERE / dest, compression="zstd")


def avro_records(rel: str, dest: str, rows: int | list[int]) -> None:
    """Records of an Avro file (the first ``rows``, or those at the listed record numbers),
    cutouts emptied, written with the file's own schema."""
    with open(SRC / rel, "rb") as fh:
        reader = fastavro.reader(fh)
        schema = reader.writer_schema
        codec = reader.codec
        sync = reader._header["sync"]  # reuse the source's marker: reruns give the same bytes
        every = list(reader)
    records = every[:rows] if isinstance(rows, int) else [every[i] for i in rows]
    for rec in records:
        for key in list(rec):
            if key.startswith("cutout"):  # ZTF: {fileName, stampData}; Rubin: nullable bytes
                rec[key] = {**rec[key], "stampData": b""} if isinstance(rec[key], dict) else None
    with open(HERE / dest, "wb") as out:
        fastavro.writer(out, fastavro.parse_schema(schema), records, codec=codec,
                        sync_marker=sync)


def main() -> None:
    copy("ztf/ztf-avro-alert/2019_01_10_739260766315010006.avro", "ztf/ztf_3.2_single.avro")
    copy("ztf/ztf-avro-alert/472263571115115000.avro", "ztf/ztf_3.3_single.avro")
    copy("ztf/fink-client/avro_multi_alerts_other.avro", "ztf/fink_multi_3.avro")
    # Fink's Avro with both layouts (candidate/prv_candidates and the flat c* arrays)
    avro_records("ztf/fink-client/avro_multi_alerts.avro", "ztf/fink_multi_flat_11.avro", 11)
    parquet_rows("ztf/fink-science/hostless_part-0-0-435829.parquet", "ztf/fink_4.02_10.parquet",
                 10)
    avro_records("ztf/fink-client/part-3-305711.avro", "ztf/fink_transfer_4.02_4.avro", 4)
    # rows 0-2: no history (null prvDiaSources), 42 and 1 previous sources; row 3 (1,085
    # sources) is left out to keep the file small
    parquet_rows("rubin/fink-tutorials-2026-03-27/part-1-0-192771779.parquet",
                 "rubin/rubin_fink_3.parquet", 3)
    parquet_rows("rubin/fink-science/rubin_sample_data_10_0.parquet", "rubin/rubin_raw_5.parquet",
                 5)
    # record 0: 345 previous sources and 395 forced; record 4: no history at all
    avro_records("rubin/fink-client/part-2-918301.avro", "rubin/rubin_transfer_2.avro", [0, 4])
    copy("elasticc/fink-client/alert_mjd60674.0512_obj747_src1494043.avro.gz",
         "elasticc/elasticc_single.avro.gz")
    parquet_rows("elasticc/ftransfer_elasticc_2023-02-08_902820/classId=111/part-0-0.parquet",
                 "elasticc/elasticc_snia_20.parquet", 20)
    make_fixtures_plasticc.write_sample(SRC, HERE / "plasticc")


if __name__ == "__main__":
    main()
