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


def parquet_rows(rel: str, dest: str, rows: int) -> None:
    """The first ``rows`` alerts of a parquet file, cutout columns removed."""
    table = pq.read_table(SRC / rel)
    table = table.drop_columns([c for c in table.column_names if c.startswith("cutout")])
    (HERE / dest).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.slice(0, rows), HERE / dest, compression="zstd")


def avro_records(rel: str, dest: str, rows: int) -> None:
    """The first ``rows`` records of an Avro file, cutouts emptied, same schema."""
    with open(SRC / rel, "rb") as fh:
        reader = fastavro.reader(fh)
        schema = reader.writer_schema
        records = [r for _, r in zip(range(rows), reader, strict=False)]
    for rec in records:
        for key in list(rec):
            if key.startswith("cutout"):  # ZTF: {fileName, stampData}; Rubin: nullable bytes
                rec[key] = {**rec[key], "stampData": b""} if isinstance(rec[key], dict) else None
    with open(HERE / dest, "wb") as out:
        fastavro.writer(out, fastavro.parse_schema(schema), records)


def main() -> None:
    copy("ztf/ztf-avro-alert/2019_01_10_739260766315010006.avro", "ztf/ztf_3.2_single.avro")
    copy("ztf/ztf-avro-alert/472263571115115000.avro", "ztf/ztf_3.3_single.avro")
    copy("ztf/fink-client/avro_multi_alerts_other.avro", "ztf/fink_multi_3.avro")
    parquet_rows("ztf/fink-science/hostless_part-0-0-435829.parquet", "ztf/fink_4.02_10.parquet",
                 10)
    avro_records("ztf/fink-client/part-3-305711.avro", "ztf/fink_transfer_4.02_4.avro", 4)
    parquet_rows("rubin/fink-tutorials-2026-03-27/part-1-0-192771779.parquet",
                 "rubin/rubin_fink_4.parquet", 4)
    parquet_rows("rubin/fink-science/rubin_sample_data_10_0.parquet", "rubin/rubin_raw_5.parquet",
                 5)
    avro_records("rubin/fink-client/part-2-918301.avro", "rubin/rubin_transfer_2.avro", 2)
    copy("elasticc/fink-client/alert_mjd60674.0512_obj747_src1494043.avro.gz",
         "elasticc/elasticc_single.avro.gz")
    parquet_rows("elasticc/ftransfer_elasticc_2023-02-08_902820/classId=111/part-0-0.parquet",
                 "elasticc/elasticc_snia_20.parquet", 20)
    make_fixtures_plasticc.write_sample(SRC, HERE / "plasticc")


if __name__ == "__main__":
    main()
