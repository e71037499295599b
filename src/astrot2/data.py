"""Obtain and verify the data sets astrot2 trains and tests on.

``astrot2 data fetch plasticc`` gets the PLAsTiCC training set (7,848 simulated LSST
objects, 14 classes; Kessler et al. 2019, The PLAsTiCC team, CC-BY 4.0, Zenodo record
2539456) from, in order (``source="auto"``):

1. ``local``: a folder named by ``$ASTROT2_DATA`` holding ``plasticc/training_set.csv.gz``
   and ``plasticc/training_set_metadata.csv`` (how CI and development machines run);
2. ``zenodo``: the official release (``plasticc_train_lightcurves.csv.gz``,
   ``plasticc_train_metadata.csv.gz``);
3. ``pypi``: the wheel of ``snmachine==2.0.0.post3`` (BSD-3; it ships the same files under
   ``snmachine/example_data/``), downloaded with pip.

Every file is verified by the sha256 of its *uncompressed* content (the copies from the
three sources are byte-identical once decompressed), stored gzip-compressed in the
cache (``$ASTROT2_CACHE`` or ``~/.cache/astrot2``), written atomically, and never fetched
again once a verified copy is there.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from astrot2.errors import ConfigError, DataFetchError
from astrot2.utils import atomic_path

__all__ = ["PLASTICC_FILES", "PlasticcFiles", "default_data_dir", "fetch_plasticc"]

ZENODO_URL = "https://zenodo.org/records/2539456/files/{name}?download=1"
SNMACHINE = "snmachine==2.0.0.post3"


@dataclass(frozen=True)
class _Remote:
    """One file of the data set: cache name, content checksum, names at each source."""

    cache_name: str
    sha256: str  # of the uncompressed content
    local_name: str
    zenodo_name: str
    wheel_member: str


PLASTICC_FILES = {
    "lightcurves": _Remote(
        "training_set.csv.gz",
        "da0efda0c6a3c6abec42dcab166ca18814be8597ee9f998e24e9792f6ca6998c",
        "training_set.csv.gz",
        "plasticc_train_lightcurves.csv.gz",
        "snmachine/example_data/plasticc_train_lightcurves.csv",
    ),
    "metadata": _Remote(
        "training_set_metadata.csv.gz",
        "3d7fe4298e820244677437fe371c8b56cc8e3633dc8c196a9866aff427c88ee0",
        "training_set_metadata.csv",
        "plasticc_train_metadata.csv.gz",
        "snmachine/example_data/plasticc_train_metadata.csv",
    ),
}


@dataclass(frozen=True)
class PlasticcFiles:
    """Paths of a verified local copy of the PLAsTiCC training set."""

    lightcurves: Path
    metadata: Path
    source: str  # "cache" when nothing had to be fetched


def default_data_dir() -> Path:
    """Cache folder: ``$ASTROT2_CACHE`` or ``~/.cache/astrot2``."""
    return Path(os.environ.get("ASTROT2_CACHE", Path.home() / ".cache" / "astrot2"))


def content_sha256(path: Path) -> str:
    """sha256 of a file's content, decompressed first when it is gzip."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, sha256: str) -> bool:
    try:
        return path.is_file() and content_sha256(path) == sha256
    except (OSError, EOFError):
        return False


def _store(src: Path, dest: Path, sha256: str) -> None:
    """Check ``src`` and write it gzip-compressed to ``dest`` atomically."""
    got = content_sha256(src)
    if got != sha256:
        raise DataFetchError(f"{src}: checksum {got} does not match the expected {sha256}")
    with open(src, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    with atomic_path(dest) as tmp:
        if gz:
            shutil.copyfile(src, tmp)
        else:
            with open(src, "rb") as fin, gzip.open(tmp, "wb", compresslevel=6) as fout:
                shutil.copyfileobj(fin, fout)


def _from_local(dest: Path, progress: bool) -> None:
    root = os.environ.get("ASTROT2_DATA")
    if not root:
        raise DataFetchError("ASTROT2_DATA is not set")
    for remote in PLASTICC_FILES.values():
        src = Path(root) / "plasticc" / remote.local_name
        if not src.is_file():
            raise DataFetchError(f"{src} does not exist")
        _store(src, dest / remote.cache_name, remote.sha256)


def _from_zenodo(dest: Path, progress: bool) -> None:
    import urllib.request

    with tempfile.TemporaryDirectory() as tmp:
        for remote in PLASTICC_FILES.values():
            url = ZENODO_URL.format(name=remote.zenodo_name)
            part = Path(tmp) / remote.zenodo_name
            try:
                with urllib.request.urlopen(url, timeout=10) as resp, open(part, "wb") as out:
                    shutil.copyfileobj(resp, out)
            except OSError as exc:
                raise DataFetchError(f"cannot download {url}: {exc}") from exc
            _store(part, dest / remote.cache_name, remote.sha256)


def _from_pypi(dest: Path, progress: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", SNMACHINE, "-d", tmp]
        if not progress:
            cmd.append("-q")
        done = subprocess.run(cmd, capture_output=not progress, text=True, check=False)
        wheels = list(Path(tmp).glob("snmachine-*.whl"))
        if done.returncode != 0 or not wheels:
            raise DataFetchError(f"pip download {SNMACHINE} failed: {done.stderr or ''}".strip())
        with zipfile.ZipFile(wheels[0]) as wheel:
            for remote in PLASTICC_FILES.values():
                part = Path(tmp) / Path(remote.wheel_member).name
                with wheel.open(remote.wheel_member) as fin, open(part, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
                _store(part, dest / remote.cache_name, remote.sha256)


SOURCES: dict[str, Callable[[Path, bool], None]] = {
    "local": _from_local,
    "zenodo": _from_zenodo,
    "pypi": _from_pypi,
}


def fetch_plasticc(
    dest: Path | None = None, *, source: str = "auto", progress: bool = True
) -> PlasticcFiles:
    """Make sure a verified copy of the PLAsTiCC training set is in ``dest/plasticc``.

    Parameters
    ----------
    dest : Path, optional
        Data folder (default :func:`default_data_dir`).
    source : {"auto", "local", "zenodo", "pypi"}
        Where to get the files when the cache lacks them; ``auto`` tries each in order.
    progress : bool
        Let pip print its progress.

    Returns
    -------
    PlasticcFiles

    Raises
    ------
    DataFetchError
        When no source gave files with the expected checksums (the message lists what
        each source said).
    """
    if source != "auto" and source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; choose auto or one of {sorted(SOURCES)}")
    folder = Path(dest or default_data_dir()) / "plasticc"
    paths = {k: folder / r.cache_name for k, r in PLASTICC_FILES.items()}
    if all(_verified(paths[k], r.sha256) for k, r in PLASTICC_FILES.items()):
        return PlasticcFiles(paths["lightcurves"], paths["metadata"], source="cache")
    order = list(SOURCES) if source == "auto" else [source]
    errors = []
    for name in order:
        try:
            SOURCES[name](folder, progress)
            return PlasticcFiles(paths["lightcurves"], paths["metadata"], source=name)
        except DataFetchError as exc:
            errors.append(f"{name}: {exc}")
    raise DataFetchError(
        "could not obtain the PLAsTiCC training set; tried " + "; ".join(errors)
        + ". Fix: set ASTROT2_DATA to a folder with plasticc/training_set.csv.gz and "
        "plasticc/training_set_metadata.csv, or allow access to PyPI or Zenodo."
    )
