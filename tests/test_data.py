"""Data fetching: local source, checksums, cache reuse, clear failures."""

from __future__ import annotations

import gzip
import shutil

import pytest

from astrot2.data import PLASTICC_FILES, content_sha256, fetch_plasticc
from astrot2.errors import ConfigError, DataFetchError


def test_content_checksum_ignores_compression(tmp_path):
    plain = tmp_path / "a.csv"
    plain.write_bytes(b"object_id,mjd\n1,2\n")
    packed = tmp_path / "a.csv.gz"
    with gzip.open(packed, "wb") as fh:
        fh.write(plain.read_bytes())
    assert content_sha256(plain) == content_sha256(packed)


def test_wrong_files_are_refused(tmp_path, monkeypatch, fixtures):
    fake = tmp_path / "data" / "plasticc"
    fake.mkdir(parents=True)
    shutil.copy(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz", fake / "training_set.csv.gz")
    shutil.copy(fixtures / "plasticc" / "plasticc_meta_sample.csv",
                fake / "training_set_metadata.csv")
    monkeypatch.setenv("ASTROT2_DATA", str(tmp_path / "data"))
    with pytest.raises(DataFetchError, match="checksum"):
        fetch_plasticc(tmp_path / "cache", source="local")
    assert not (tmp_path / "cache" / "plasticc" / "training_set.csv.gz").exists()


def test_missing_source_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("ASTROT2_DATA", raising=False)
    with pytest.raises(DataFetchError, match="ASTROT2_DATA"):
        fetch_plasticc(tmp_path, source="local")
    with pytest.raises(ConfigError):
        fetch_plasticc(tmp_path, source="ftp")


@pytest.mark.shared
def test_local_fetch_then_cache(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROT2_DATA", str(shared_data))
    first = fetch_plasticc(tmp_path, source="local")
    assert first.source == "local"
    for key, remote in PLASTICC_FILES.items():
        assert content_sha256(getattr(first, key)) == remote.sha256
    mtime = first.lightcurves.stat().st_mtime_ns
    monkeypatch.delenv("ASTROT2_DATA")
    second = fetch_plasticc(tmp_path)  # nothing to fetch: verified cache
    assert second.source == "cache" and second.lightcurves.stat().st_mtime_ns == mtime
