"""One light curve per input alert, always: every alert file of the fixtures and, when it is
present, of the full real-data folder.

Alerts are counted without astrot2: Parquet rows from the file's footer metadata, Avro
records from fastavro's block headers; alert ids come from the raw records.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import fastavro
import numpy as np
import pyarrow.parquet as pq
import pytest

from astrot2.io import read_file

ALERT_FILES = (".avro", ".avro.gz", ".parquet")
#: Top-level alert id per survey folder.
ID_FIELD = {"ztf": "candid", "rubin": "diaSourceId", "elasticc": "alertId"}


def alert_files(root: Path) -> list[Path]:
    return sorted(p for sub in ID_FIELD for p in (root / sub).rglob("*")
                  if p.is_file() and p.name.endswith(ALERT_FILES))


def count_and_ids(path: Path, id_field: str) -> tuple[int, list[str]]:
    """(number of alerts, alert ids in file order), independently of astrot2."""
    if path.name.endswith(".parquet"):
        n = pq.ParquetFile(path).metadata.num_rows
        ids = pq.read_table(path, columns=[id_field]).column(id_field).to_pylist()
        return n, [str(i) for i in ids]
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        n = sum(block.num_records for block in fastavro.block_reader(fh))
    with opener(path, "rb") as fh:
        ids = [str(rec[id_field]) for rec in fastavro.reader(fh)]
    return n, ids


def check_file(path: Path, survey_folder: str) -> int:
    n_in, ids = count_and_ids(path, ID_FIELD[survey_folder])
    batch = read_file(path)
    assert len(batch) == n_in == len(ids), path
    assert list(batch.alert_id) == ids, path
    same_lc = np.diff(batch.owner) == 0
    assert np.all(np.diff(batch.time)[same_lc] >= 0), f"{path}: times not ascending"
    assert np.all((batch.band >= 0) & (batch.band < batch.survey.n_bands)), path
    assert np.isfinite(batch.flux).all() and (batch.flux_err > 0).all(), path
    assert (batch.offsets[1:] - batch.offsets[:-1] + batch.n_dropped >= 0).all()
    return n_in


def test_every_fixture_alert_is_read(fixtures):
    total = {sub: sum(check_file(p, sub) for p in alert_files(fixtures)
                      if p.relative_to(fixtures).parts[0] == sub) for sub in ID_FIELD}
    assert total == {"ztf": 30, "rubin": 10, "elasticc": 21}


@pytest.mark.shared
def test_every_real_alert_is_read(shared_data):
    """Light curves out == alerts in, ids in order, for every alert file of the data folder."""
    files = alert_files(shared_data)
    assert len(files) >= 70
    total = {sub: 0 for sub in ID_FIELD}
    for path in files:
        sub = path.relative_to(shared_data).parts[0]
        total[sub] += check_file(path, sub)
    # at least the alerts listed in shared/data/README.md
    assert total["ztf"] >= 67 + 57 + 51 + 74 + 72 + 31 + 4 + 11 + 3 + 2 + 9 + 3 + 11  # 395
    assert total["rubin"] >= 107 + 7 + 25
    assert total["elasticc"] >= 1505 + 1591 + 556 + 1
