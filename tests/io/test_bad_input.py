"""Bad input: every failure is an AlertFormatError naming the file (or field), never a raw
exception and never a hang; bad points and bad alerts are counted, not silently lost."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astrot2.errors import AlertFormatError, Astrot2Error
from astrot2.io import expand_inputs, read_alerts, read_file
from astrot2.io.rubin import rubin_from_table

AVRO_FIXTURES = ["ztf/ztf_3.2_single.avro", "ztf/fink_multi_3.avro",
                 "ztf/fink_transfer_4.02_4.avro", "rubin/rubin_transfer_2.avro"]
PARQUET_FIXTURES = ["ztf/fink_4.02_10.parquet", "rubin/rubin_raw_5.parquet",
                    "elasticc/elasticc_snia_20.parquet"]


def _refused(path: Path, match: str | None = None) -> AlertFormatError:
    with pytest.raises(AlertFormatError) as info:
        read_file(path)
    assert path.name in str(info.value) and info.value.path == str(path)
    if match is not None:
        assert re.search(match, str(info.value)), str(info.value)
    return info.value


# ---------------------------------------------------------------- not alerts at all
@pytest.mark.parametrize("content", [
    np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    b"\x00\x01garbage" * 10,
    b"Obj\x01" + b"\x00" * 50,            # Avro magic, no header
    b"PAR1" + b"\x00" * 50 + b"PAR1",     # Parquet magic, no footer
    b"\x1f\x8b\x08\x00" + b"\x00" * 30,   # gzip magic, corrupt stream
])
def test_unknown_bytes_name_the_file(tmp_path, content):
    path = tmp_path / "mystery.bin"
    path.write_bytes(content)
    _refused(path)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.avro"
    empty.write_bytes(b"")
    _refused(empty, "empty")
    with pytest.raises(AlertFormatError, match=re.escape("nowhere.avro")):
        read_file(tmp_path / "nowhere.avro")
    with pytest.raises(AlertFormatError, match="nowhere"):
        expand_inputs(tmp_path / "nowhere")


def test_csv_without_plasticc_columns(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b,c\n1,2,3\n")
    _refused(path)


def test_unrelated_parquet_is_refused(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2], "y": ["a", "b"]}), path)
    _refused(path, "cannot tell the alert format")


def test_unrelated_avro_is_refused(tmp_path):
    path = tmp_path / "other.avro"
    schema = {"type": "record", "name": "r", "fields": [{"name": "x", "type": "long"}]}
    with open(path, "wb") as fh:
        fastavro.writer(fh, schema, [{"x": 1}])
    _refused(path, "cannot tell the alert format")


# ---------------------------------------------------------------- damaged real files
@pytest.mark.parametrize("name", AVRO_FIXTURES + PARQUET_FIXTURES
                         + ["elasticc/elasticc_single.avro.gz"])
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.98])
def test_truncated_files_name_the_file(fixtures, tmp_path, name, fraction):
    data = (fixtures / name).read_bytes()
    path = tmp_path / Path(name).name
    path.write_bytes(data[: int(len(data) * fraction)])
    _refused(path)


@pytest.mark.parametrize("name", AVRO_FIXTURES)
def test_corrupt_avro_names_the_file(fixtures, tmp_path, name):
    data = (fixtures / name).read_bytes()
    sync = bytearray(data)
    sync[-1] ^= 0xFF  # the sync marker closing the last block
    path = tmp_path / Path(name).name
    path.write_bytes(bytes(sync))
    _refused(path, "corrupt Avro")
    header = bytearray(data)
    header[data.find(b'"fields"') + 2] ^= 0xFF  # the schema text in the header
    path.write_bytes(bytes(header))
    _refused(path, "Avro header")


def test_corrupt_gzip_avro_names_the_file(fixtures, tmp_path):
    data = bytearray((fixtures / "elasticc" / "elasticc_single.avro.gz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "flipped.avro.gz"
    path.write_bytes(bytes(data))
    _refused(path)


@pytest.mark.parametrize("name", PARQUET_FIXTURES)
def test_bit_flipped_parquet_names_the_file(fixtures, tmp_path, name):
    data = bytearray((fixtures / name).read_bytes())
    for pos in range(100, len(data) - 100, 997):
        data[pos] ^= 0xFF
    path = tmp_path / Path(name).name
    path.write_bytes(bytes(data))
    _refused(path)


_SWEEP = """
import json, sys
from pathlib import Path
import numpy as np
from astrot2.errors import AlertFormatError
from astrot2.io import read_file
out = {}
for name, n_alerts in json.loads(sys.argv[1]).items():
    src = Path(name)
    data = src.read_bytes()
    rng = np.random.default_rng(0)
    tmp = Path(sys.argv[2]) / ("flip_" + src.name)
    seen = {"refused": 0, "read": 0}
    for trial in range(30):
        buf = bytearray(data)
        for pos in rng.integers(0, len(buf), size=1 + trial % 4):
            buf[pos] ^= 1 << int(rng.integers(0, 8))
        tmp.write_bytes(bytes(buf))
        try:
            batch = read_file(tmp)
        except AlertFormatError as exc:
            assert tmp.name in str(exc), exc
            seen["refused"] += 1
        else:  # a flip inside a value: still one light curve per alert
            assert len(batch) == n_alerts, (name, len(batch))
            seen["read"] += 1
    out[src.name] = seen
print(json.dumps(out))
"""


def test_random_bit_flips_never_escape_or_hang(fixtures, tmp_path):
    """30 random flips per file: AlertFormatError or one light curve per alert, quickly.

    Runs in a child process with a wall-clock limit, so a hang fails the test instead of
    blocking the suite.
    """
    files = {str(fixtures / n): len(read_file(fixtures / n))
             for n in [*AVRO_FIXTURES, "elasticc/elasticc_single.avro.gz",
                       "ztf/fink_4.02_10.parquet"]}
    proc = subprocess.run([sys.executable, "-c", _SWEEP, json.dumps(files), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout)
    assert len(seen) == len(files)
    assert all(s["refused"] + s["read"] == 30 for s in seen.values())
    assert sum(s["refused"] for s in seen.values()) > 30  # the damage is noticed


# ---------------------------------------------------------------- missing fields
def test_rubin_parquet_without_psfflux_names_the_field(fixtures, tmp_path):
    table = pq.read_table(fixtures / "rubin" / "rubin_raw_5.parquet")
    src = table.column("diaSource").combine_chunks()
    keep = [f.name for f in src.type if f.name != "psfFlux"]
    pruned = pa.StructArray.from_arrays([src.field(k) for k in keep], names=keep)
    path = tmp_path / "no_psfflux.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("diaSource"), "diaSource",
                                    pruned), path)
    err = _refused(path, "psfFlux")
    assert err.field == "diaSource.psfFlux"


def test_table_without_diasource_names_the_field():
    with pytest.raises(AlertFormatError, match="diaSource") as info:
        rubin_from_table(pa.table({"alertId": [1]}), source="x.parquet")
    assert info.value.field == "diaSource" and "x.parquet" in str(info.value)


def test_wrong_reader_is_a_clear_error(fixtures):
    with pytest.raises(AlertFormatError, match="diaSource"):
        read_file(fixtures / "ztf" / "ztf_3.3_single.avro", format="rubin")
    with pytest.raises(AlertFormatError, match="candidate"):
        read_file(fixtures / "rubin" / "rubin_raw_5.parquet", format="ztf")


def test_mixed_surveys_are_refused(fixtures):
    with pytest.raises(AlertFormatError, match="mix surveys"):
        read_alerts([fixtures / "ztf" / "ztf_3.3_single.avro",
                     fixtures / "rubin" / "rubin_raw_5.parquet"])


def test_every_error_is_an_astrot2_error(tmp_path):
    path = tmp_path / "x.avro.gz"
    path.write_bytes(gzip.compress(b"Obj\x01 not really avro"))
    with pytest.raises(Astrot2Error):
        read_file(path)
