"""Data fetching: sources, checksums, cache reuse, atomic writes, clear failures.

The checksum constants are those of the full PLAsTiCC files; tests that run without them
swap in the checksums of the committed fixture (``PLASTICC_FILES`` is patched), so the
cache and source logic is exercised on every run.  Nothing here touches the network
unless ``ASTROT2_NETWORK_TESTS=1``.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

import astrot2.data as data
from astrot2.data import PLASTICC_FILES, content_sha256, default_data_dir, fetch_plasticc
from astrot2.errors import ConfigError, DataFetchError
from astrot2.io.plasticc import read_plasticc

N_FIXTURE_OBJECTS = 98


@pytest.fixture
def local_source(tmp_path, monkeypatch, fixtures) -> Path:
    """An ``$ASTROT2_DATA`` folder holding the fixture, with checksums patched to match."""
    folder = tmp_path / "data" / "plasticc"
    folder.mkdir(parents=True)
    lc = fixtures / "plasticc" / "plasticc_lc_sample.csv.gz"
    meta = fixtures / "plasticc" / "plasticc_meta_sample.csv"
    shutil.copy(lc, folder / "training_set.csv.gz")
    shutil.copy(meta, folder / "training_set_metadata.csv")
    for key, path in (("lightcurves", lc), ("metadata", meta)):
        patched = dataclasses.replace(PLASTICC_FILES[key], sha256=content_sha256(path))
        monkeypatch.setitem(PLASTICC_FILES, key, patched)
    monkeypatch.setenv("ASTROT2_DATA", str(tmp_path / "data"))
    return folder


def fake_wheel(path: Path, fixtures: Path) -> None:
    """A zip laid out like the snmachine wheel, holding the (uncompressed) fixture."""
    lc = gzip.decompress((fixtures / "plasticc" / "plasticc_lc_sample.csv.gz").read_bytes())
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(PLASTICC_FILES["lightcurves"].wheel_member, lc)
        zf.write(fixtures / "plasticc" / "plasticc_meta_sample.csv",
                 PLASTICC_FILES["metadata"].wheel_member)


def test_content_checksum_ignores_compression(tmp_path):
    plain = tmp_path / "a.csv"
    plain.write_bytes(b"object_id,mjd\n1,2\n")
    packed = tmp_path / "a.csv.gz"
    with gzip.open(packed, "wb") as fh:
        fh.write(plain.read_bytes())
    assert content_sha256(plain) == content_sha256(packed)


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ASTROT2_CACHE", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("ASTROT2_CACHE")
    assert default_data_dir() == Path.home() / ".cache" / "astrot2"


def test_local_fetch_then_cache(local_source, tmp_path, monkeypatch):
    first = fetch_plasticc(tmp_path / "cache", source="local", progress=False)
    assert first.source == "local"
    assert first.lightcurves.parent == tmp_path / "cache" / "plasticc"
    for key, remote in PLASTICC_FILES.items():
        path = getattr(first, key)
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # the cache stores gzip
        assert content_sha256(path) == remote.sha256
    assert len(read_plasticc(first.lightcurves, first.metadata)) == N_FIXTURE_OBJECTS
    assert not list(first.lightcurves.parent.glob("*.part"))  # no temporary left behind

    stamps = [p.stat().st_mtime_ns for p in (first.lightcurves, first.metadata)]
    monkeypatch.delenv("ASTROT2_DATA")  # a second call must not need any source
    second = fetch_plasticc(tmp_path / "cache", progress=False)
    assert second == dataclasses.replace(first, source="cache")
    assert [p.stat().st_mtime_ns for p in (second.lightcurves, second.metadata)] == stamps


def test_damaged_cache_is_fetched_again(local_source, tmp_path):
    first = fetch_plasticc(tmp_path / "cache", source="local", progress=False)
    data_bytes = first.metadata.read_bytes()
    first.metadata.write_bytes(data_bytes[: len(data_bytes) // 2])  # truncated gzip
    again = fetch_plasticc(tmp_path / "cache", source="local", progress=False)
    assert again.source == "local"
    assert content_sha256(again.metadata) == PLASTICC_FILES["metadata"].sha256


def test_wrong_files_are_refused(local_source, tmp_path, monkeypatch):
    for key, remote in list(PLASTICC_FILES.items()):
        monkeypatch.setitem(PLASTICC_FILES, key, dataclasses.replace(remote, sha256="0" * 64))
    with pytest.raises(DataFetchError, match="checksum"):
        fetch_plasticc(tmp_path / "cache", source="local", progress=False)
    assert not (tmp_path / "cache" / "plasticc" / "training_set.csv.gz").exists()


def test_truncated_source_is_a_fetch_error(local_source, tmp_path):
    lc = local_source / "training_set.csv.gz"
    lc.write_bytes(lc.read_bytes()[:5000])
    with pytest.raises(DataFetchError, match="truncated"):
        fetch_plasticc(tmp_path / "cache", source="local", progress=False)


def test_missing_source_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("ASTROT2_DATA", raising=False)
    with pytest.raises(DataFetchError, match="ASTROT2_DATA"):
        fetch_plasticc(tmp_path, source="local", progress=False)
    with pytest.raises(ConfigError, match="ftp"):
        fetch_plasticc(tmp_path, source="ftp")


def test_zenodo_failure_is_a_fetch_error(tmp_path, monkeypatch):
    def offline(url, timeout):
        assert timeout <= 30
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataFetchError, match=r"zenodo: cannot download https://zenodo\.org"):
        fetch_plasticc(tmp_path, source="zenodo", progress=False)


def test_auto_tries_every_source_in_order(tmp_path, monkeypatch):
    calls = []

    def failing(name):
        def source(folder, remotes, progress):
            calls.append((name, [r.cache_name for r in remotes]))
            raise DataFetchError(f"{name} is down")
        return source

    for name in ("local", "zenodo", "pypi"):
        monkeypatch.setitem(data.SOURCES, name, failing(name))
    with pytest.raises(DataFetchError) as info:
        fetch_plasticc(tmp_path, progress=False)
    assert [c[0] for c in calls] == ["local", "zenodo", "pypi"]
    assert calls[0][1] == ["training_set.csv.gz", "training_set_metadata.csv.gz"]
    message = str(info.value)
    assert all(f"{n} is down" in message for n in ("local", "zenodo", "pypi"))
    assert "Fix:" in message


def test_pypi_wheel_is_extracted_and_gzipped(local_source, tmp_path, monkeypatch, fixtures):
    """The wheel route without the network: pip is replaced by a fake that drops a wheel."""
    monkeypatch.delenv("ASTROT2_DATA")
    commands = []

    def fake_pip(cmd, **kwargs):
        commands.append(cmd)
        fake_wheel(Path(cmd[cmd.index("-d") + 1]) / "snmachine-2.0.0.post3-py3-none-any.whl",
                   fixtures)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    got = fetch_plasticc(tmp_path / "cache", source="pypi", progress=False)
    assert got.source == "pypi"
    assert "snmachine==2.0.0.post3" in commands[0] and "--no-deps" in commands[0]
    for key, remote in PLASTICC_FILES.items():
        path = getattr(got, key)
        assert path.read_bytes()[:2] == b"\x1f\x8b"
        assert content_sha256(path) == remote.sha256
    assert len(read_plasticc(got.lightcurves, got.metadata)) == N_FIXTURE_OBJECTS


def test_pip_failure_is_a_fetch_error(tmp_path, monkeypatch):
    def failing_pip(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(DataFetchError, match="No matching distribution"):
        fetch_plasticc(tmp_path, source="pypi", progress=False)


def test_source_hard_codes_no_data_folder():
    """The shared development copy must be reached through ASTROT2_DATA only."""
    text = Path(data.__file__).read_text()
    assert "shared/data" not in text and "../shared" not in text


@pytest.mark.shared
def test_local_fetch_of_the_real_files(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROT2_DATA", str(shared_data))
    first = fetch_plasticc(tmp_path, source="local", progress=False)
    assert first.source == "local"
    for key, remote in PLASTICC_FILES.items():
        assert content_sha256(getattr(first, key)) == remote.sha256
    mtime = first.lightcurves.stat().st_mtime_ns
    monkeypatch.delenv("ASTROT2_DATA")
    second = fetch_plasticc(tmp_path, progress=False)  # nothing to fetch: verified cache
    assert second.source == "cache" and second.lightcurves.stat().st_mtime_ns == mtime


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("ASTROT2_NETWORK_TESTS") != "1",
                    reason="downloads the 82 MB snmachine wheel; set ASTROT2_NETWORK_TESTS=1")
def test_pypi_fetch_of_the_real_files(tmp_path):
    got = fetch_plasticc(tmp_path, source="pypi", progress=False)
    assert got.source == "pypi"
    for key, remote in PLASTICC_FILES.items():
        assert content_sha256(getattr(got, key)) == remote.sha256


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("ASTROT2_NETWORK_TESTS") != "1",
                    reason="downloads the 91 MB redback wheel; set ASTROT2_NETWORK_TESTS=1")
def test_pypi_fetch_of_the_ztf_observing_log(tmp_path):
    from astrot2.data import POINTINGS_SHA256, fetch_dataset

    got = fetch_dataset("ztf-pointings", tmp_path, source="remote", progress=False)
    assert content_sha256(got) == POINTINGS_SHA256


def test_local_observing_log_matches_the_published_checksum(shared_data):
    from astrot2.data import POINTINGS_SHA256

    assert content_sha256(shared_data / "surveys" / "ztf_pointings.csv.gz") == POINTINGS_SHA256
