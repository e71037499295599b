"""Obtain and verify the data sets astrot2 trains and tests on.

``astrot2 data fetch plasticc`` gets the PLAsTiCC training set (7,848 simulated LSST
objects, 1,421,705 observations, 14 classes) from, in order (``source="auto"``):

1. ``local``: a folder named by ``$ASTROT2_DATA`` holding ``plasticc/training_set.csv.gz``
   and ``plasticc/training_set_metadata.csv`` (how CI and development machines run);
2. ``zenodo``: the official release (``plasticc_train_lightcurves.csv.gz``,
   ``plasticc_train_metadata.csv.gz`` of Zenodo record 2539456), over HTTPS with a short
   timeout;
3. ``pypi``: the wheel of ``snmachine==2.0.0.post3``, downloaded with
   ``pip download --no-deps --only-binary=:all:``; it ships the same files, uncompressed,
   as ``snmachine/example_data/plasticc_train_{lightcurves,metadata}.csv``.

Every file is verified by the sha256 of its *uncompressed* content
(:data:`PLASTICC_FILES`), so the same constant holds whether a source ships it gzipped or
not: the wheel's two files were checked to have exactly the content of the
``$ASTROT2_DATA`` copies.  The Zenodo files could not be checked from the build machine;
a Zenodo copy whose content differs is refused and ``auto`` moves on to PyPI.  The cache
(``$ASTROT2_CACHE`` or ``~/.cache/astrot2``, subfolder ``plasticc/``) always stores both
files gzip-compressed, written atomically (temporary file + rename); a cache that already
verifies is used as is, without any download.

Attribution
-----------
PLAsTiCC data: The PLAsTiCC team, "Unblinded Data for PLAsTiCC Classification Challenge",
Zenodo record 2539456 (doi:10.5281/zenodo.2539456), licence CC-BY 4.0; see also Kessler et
al. 2019, PASP 131, 094501.  The PyPI copy comes from snmachine (Lochner et al.;
https://github.com/LSSTDESC/snmachine), BSD-3-Clause licence,
"Copyright (c) 2016-2021, snmachine contributors".  astrot2 redistributes neither: it
fetches them on the user's request.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from astrot2.errors import ConfigError, DataFetchError
from astrot2.utils import atomic_path

__all__ = [
    "PLASTICC_FILES",
    "SOURCES",
    "PlasticcFiles",
    "content_sha256",
    "default_data_dir",
    "fetch_dataset",
    "fetch_plasticc",
]

ZENODO_URL = "https://zenodo.org/records/2539456/files/{name}?download=1"
ZENODO_TIMEOUT_S = 10.0
SNMACHINE = "snmachine==2.0.0.post3"
_READ_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class _Remote:
    """One file of the data set: cache name, content checksum, names at each source."""

    cache_name: str
    sha256: str  # of the uncompressed content
    local_name: str  # under $ASTROT2_DATA/plasticc/
    zenodo_name: str
    wheel_member: str


#: The two PLAsTiCC training files.  Checksums of the uncompressed content, computed from
#: the ``snmachine==2.0.0.post3`` wheel members, equal to the ``$ASTROT2_DATA`` copies.
PLASTICC_FILES = {
    "lightcurves": _Remote(
        cache_name="training_set.csv.gz",
        sha256="da0efda0c6a3c6abec42dcab166ca18814be8597ee9f998e24e9792f6ca6998c",
        local_name="training_set.csv.gz",
        zenodo_name="plasticc_train_lightcurves.csv.gz",
        wheel_member="snmachine/example_data/plasticc_train_lightcurves.csv",
    ),
    "metadata": _Remote(
        cache_name="training_set_metadata.csv.gz",
        sha256="3d7fe4298e820244677437fe371c8b56cc8e3633dc8c196a9866aff427c88ee0",
        local_name="training_set_metadata.csv",
        zenodo_name="plasticc_train_metadata.csv.gz",
        wheel_member="snmachine/example_data/plasticc_train_metadata.csv",
    ),
}


@dataclass(frozen=True)
class PlasticcFiles:
    """Paths of a verified local copy of the PLAsTiCC training set.

    Attributes
    ----------
    lightcurves, metadata : Path
        The gzipped light-curve and metadata CSVs (read them with
        :func:`astrot2.io.plasticc.read_plasticc`).
    source : str
        Where they came from this time: ``"cache"`` when nothing had to be fetched, else
        ``"local"``, ``"zenodo"`` or ``"pypi"``.
    """

    lightcurves: Path
    metadata: Path
    source: str


def default_data_dir() -> Path:
    """Cache folder: ``$ASTROT2_CACHE`` or ``~/.cache/astrot2``."""
    env = os.environ.get("ASTROT2_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "astrot2"


def content_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's content, decompressed first when it is gzip."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fetch_plasticc(
    dest: Path | None = None, *, source: str = "auto", progress: bool = True
) -> PlasticcFiles:
    """Make sure a verified copy of the PLAsTiCC training set is in ``dest/plasticc``.

    Parameters
    ----------
    dest : Path, optional
        Data folder (default :func:`default_data_dir`); the files go to its ``plasticc/``.
    source : {"auto", "local", "zenodo", "pypi"}
        Where to get the files the cache lacks; ``auto`` tries each in that order.
    progress : bool
        Say what is being downloaded (on stderr) and let pip show its progress.

    Returns
    -------
    PlasticcFiles

    Raises
    ------
    ConfigError
        ``source`` is not one of the choices.
    DataFetchError
        No source gave files with the expected checksums; the message lists what each
        source said and how to fix it.
    """
    if source != "auto" and source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; choose auto or one of {sorted(SOURCES)}")
    folder = Path(dest) if dest is not None else default_data_dir()
    folder = folder / "plasticc"
    paths = {key: folder / remote.cache_name for key, remote in PLASTICC_FILES.items()}
    missing = [r for r in PLASTICC_FILES.values() if not _verified(folder / r.cache_name,
                                                                      r.sha256)]
    if not missing:
        return PlasticcFiles(paths["lightcurves"], paths["metadata"], source="cache")
    errors = []
    for name in list(SOURCES) if source == "auto" else [source]:
        try:
            SOURCES[name](folder, missing, progress)
        except DataFetchError as exc:
            errors.append(f"{name}: {exc}")
            continue
        return PlasticcFiles(paths["lightcurves"], paths["metadata"], source=name)
    raise DataFetchError(
        "could not obtain the PLAsTiCC training set; tried " + "; ".join(errors)
        + ". Fix: set ASTROT2_DATA to a folder holding plasticc/training_set.csv.gz and "
        "plasticc/training_set_metadata.csv, or allow access to Zenodo (zenodo.org) or "
        "PyPI (pip download snmachine==2.0.0.post3), then run "
        "`astrot2 data fetch plasticc` again."
    )


# ------------------------------------------------------------------ checks and storage
def _verified(path: Path, sha256: str) -> bool:
    """True when ``path`` exists and its content has the checksum ``sha256``."""
    try:
        return path.is_file() and content_sha256(path) == sha256
    except _READ_ERRORS:
        return False


def _store(src: Path, dest: Path, sha256: str) -> None:
    """Check the content of ``src`` and write it gzip-compressed to ``dest``, atomically."""
    try:
        got = content_sha256(src)
    except _READ_ERRORS as exc:
        raise DataFetchError(f"{src} is unreadable or truncated ({exc})") from exc
    if got != sha256:
        raise DataFetchError(f"{src}: content checksum {got} is not the expected {sha256}")
    with open(src, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    with atomic_path(dest) as tmp:
        if gz:
            shutil.copyfile(src, tmp)
        else:
            with open(src, "rb") as fin, gzip.open(tmp, "wb", compresslevel=6) as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr)


# ------------------------------------------------------------------ sources
def _from_local(folder: Path, remotes: Sequence[_Remote], progress: bool) -> None:
    """Copy from ``$ASTROT2_DATA/plasticc/``."""
    root = os.environ.get("ASTROT2_DATA")
    if not root:
        raise DataFetchError("ASTROT2_DATA is not set")
    for remote in remotes:
        src = Path(root) / "plasticc" / remote.local_name
        if not src.is_file():
            raise DataFetchError(f"{src} does not exist")
        _say(progress, f"copying {src}")
        _store(src, folder / remote.cache_name, remote.sha256)


def _from_zenodo(folder: Path, remotes: Sequence[_Remote], progress: bool) -> None:
    """Download from the official release on Zenodo."""
    import urllib.request

    with tempfile.TemporaryDirectory() as tmp:
        for remote in remotes:
            url = ZENODO_URL.format(name=remote.zenodo_name)
            part = Path(tmp) / remote.zenodo_name
            _say(progress, f"downloading {url}")
            try:
                with urllib.request.urlopen(url, timeout=ZENODO_TIMEOUT_S) as resp, \
                        open(part, "wb") as out:
                    shutil.copyfileobj(resp, out, 1 << 20)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                raise DataFetchError(f"cannot download {url}: {exc}") from exc
            _store(part, folder / remote.cache_name, remote.sha256)


def _from_pypi(folder: Path, remotes: Sequence[_Remote], progress: bool) -> None:
    """Download the snmachine wheel with pip and extract the data files from it."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _pip_download_wheel(Path(tmp), progress)
        try:
            with zipfile.ZipFile(wheel) as zf:
                for remote in remotes:
                    part = Path(tmp) / Path(remote.wheel_member).name
                    with zf.open(remote.wheel_member) as fin, open(part, "wb") as fout:
                        shutil.copyfileobj(fin, fout, 1 << 20)
                    _store(part, folder / remote.cache_name, remote.sha256)
        except (zipfile.BadZipFile, KeyError, *_READ_ERRORS) as exc:
            raise DataFetchError(f"{wheel.name} lacks a readable data file ({exc})") from exc


def _pip_download_wheel(tmp: Path, progress: bool) -> Path:
    """``pip download`` the snmachine wheel into ``tmp`` and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--timeout", "30", "--retries", "1",
           SNMACHINE, "-d", str(tmp)]
    if not progress:
        cmd.append("-q")
    _say(progress, "running " + " ".join(cmd[2:]))
    try:
        done = subprocess.run(cmd, stdout=None if progress else subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
    except OSError as exc:
        raise DataFetchError(f"cannot run pip ({exc})") from exc
    wheels = sorted(tmp.glob("snmachine-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = "\n".join((done.stderr or "").strip().splitlines()[-5:])
        raise DataFetchError(f"pip download {SNMACHINE} failed (exit {done.returncode}): {tail}")
    return wheels[0]


#: Sources in the order ``auto`` tries them; each gets (folder, files to get, progress).
SOURCES: dict[str, Callable[[Path, Sequence[_Remote], bool], None]] = {
    "local": _from_local,
    "zenodo": _from_zenodo,
    "pypi": _from_pypi,
}


# ------------------------------------------------------------------ real-sky data sets
#: Public archive of the BTS light curves (HSE-LAMBDA/light_curve_approx, MIT licence):
#: ``data/ANTARES/ZTF*.csv`` and the BTS catalogue ``data/ZTF_BTS_02_02__02_04_2021.csv``.
BTS_ARCHIVE = ("https://github.com/HSE-LAMBDA/light_curve_approx/archive/"
               "05428c65f99160c80fc6bd003842bbc51d652834.tar.gz")
BTS_CATALOGUE = "data/ZTF_BTS_02_02__02_04_2021.csv"
#: The PyPI package whose wheel ships the ZTF observing log (``tables/ztf.tar.gz``).
REDBACK = "redback==1.20.0"
#: sha256 of the observing log's uncompressed CSV (760,343 exposures, 2018-06 .. 2022-09).
POINTINGS_SHA256 = "f9d65ca1681818437a35e3804dc2d6b368f1ef9a2860152b5ed848977d12a5e6"

#: ``astrot2 data fetch NAME``: folder under ``$ASTROT2_DATA`` -> name in the cache.
LABELLED = {
    "bts": "ztf-labelled/bts-antares",
    "alerce": "ztf-labelled/alerce-lc_classifier/data_examples",
    "ztf-pointings": "surveys/ztf_pointings.csv.gz",
    "sncosmo": "sncosmo",
}


def fetch_dataset(name: str, dest: Path | None = None, *, source: str = "auto",
                  progress: bool = True) -> Path:
    """Make sure a copy of a real-sky data set is in ``dest/NAME`` and return its path.

    ``bts``: real labelled BTS light curves (the ``bts`` layout of :mod:`astrot2.io.
    labelled`) from ``$ASTROT2_DATA`` or the public archive :data:`BTS_ARCHIVE`;
    ``alerce``: ALeRCE's 30 labelled SNe, from ``$ASTROT2_DATA``; ``ztf-pointings``: the
    ZTF observing log (``astrot2 simulate``), from ``$ASTROT2_DATA`` or the wheel of
    :data:`REDBACK` (used as data only); ``sncosmo``: the supernova templates in sncosmo's
    data layout, unpacked from ``$ASTROT2_DATA`` (without it sncosmo downloads them itself
    on first use).  A copy already in the cache is used as it is.

    Raises
    ------
    ConfigError
        For an unknown name or source.
    DataFetchError
        When no source gives the data; the message says what each said.
    """
    if name not in LABELLED:
        raise ConfigError(f"unknown data set {name!r}; choose one of {sorted(LABELLED)}")
    remote = {"bts": _bts_from_archive, "ztf-pointings": _pointings_from_pypi}.get(name)
    choices = ["local"] + (["remote"] if remote else [])
    if source != "auto" and source not in choices:
        raise ConfigError(f"{name}: source must be auto or one of {choices}, got {source!r}")
    target = (Path(dest) if dest is not None else default_data_dir()) / name
    if name == "ztf-pointings":
        target = target / "ztf_pointings.csv.gz"
    if target.exists():
        return target
    errors = []
    for kind in choices if source == "auto" else [source]:
        try:
            if kind == "local":
                _dataset_from_local(name, target, progress)
            else:
                remote(target, progress)  # type: ignore[misc]
            return target
        except (DataFetchError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
            errors.append(f"{kind}: {exc}")
    raise DataFetchError(f"could not obtain {name}; tried " + "; ".join(errors)
                         + f". Fix: set ASTROT2_DATA to a folder holding {LABELLED[name]}")


def _dataset_from_local(name: str, target: Path, progress: bool) -> None:
    """Copy (and for sncosmo unpack) ``$ASTROT2_DATA/<LABELLED[name]>`` to ``target``."""
    root = os.environ.get("ASTROT2_DATA")
    if not root:
        raise DataFetchError("ASTROT2_DATA is not set")
    src = Path(root) / LABELLED[name]
    if not src.exists():
        raise DataFetchError(f"{src} does not exist")
    _say(progress, f"copying {src}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        part = Path(tmp) / target.name
        if name == "ztf-pointings":  # the same check as the PyPI route
            _store(src, part, POINTINGS_SHA256)
        elif src.is_file():
            shutil.copyfile(src, part)
        else:
            shutil.copytree(src, part)
        if name == "sncosmo":
            _unpack_sncosmo(part)
        part.rename(target)


def _unpack_sncosmo(folder: Path) -> None:
    """Unpack a copy of sncosmo's data folder in place (``*.gz`` SEDs, ``*.tar.gz``)."""
    for archive in sorted(folder.rglob("*.tar.gz")):
        with tarfile.open(archive) as tf:
            tf.extractall(archive.parent, filter="data")
    for packed in sorted(folder.rglob("*.SED.gz")):
        with gzip.open(packed, "rb") as fin, open(packed.with_suffix(""), "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        packed.unlink()


def _bts_from_archive(target: Path, progress: bool) -> None:
    """Download :data:`BTS_ARCHIVE`; keep its ANTARES light curves and BTS catalogue."""
    import urllib.request

    _say(progress, f"downloading {BTS_ARCHIVE}")
    with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None
                                     ) as tmp:
        archive = Path(tmp) / "bts.tar.gz"
        try:
            with urllib.request.urlopen(BTS_ARCHIVE, timeout=60) as resp, \
                    open(archive, "wb") as out:
                shutil.copyfileobj(resp, out, 1 << 20)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise DataFetchError(f"cannot download {BTS_ARCHIVE}: {exc}") from exc
        part = Path(tmp) / "bts"
        (part / "light-curves").mkdir(parents=True)
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                inner = member.name.split("/", 1)[-1]
                if inner.startswith("data/ANTARES/") and inner.endswith(".csv"):
                    dest = part / "light-curves" / Path(inner).name
                elif inner == BTS_CATALOGUE:
                    dest = part / "labels.csv"
                else:
                    continue
                fin = tf.extractfile(member)
                if fin is not None:
                    with fin, open(dest, "wb") as fout:
                        shutil.copyfileobj(fin, fout)
        if not (part / "labels.csv").is_file():
            raise DataFetchError(f"{BTS_ARCHIVE} has no {BTS_CATALOGUE}")
        target.parent.mkdir(parents=True, exist_ok=True)
        part.rename(target)


def _pointings_from_pypi(target: Path, progress: bool) -> None:
    """``pip download`` :data:`REDBACK`; its ``tables/ztf.tar.gz`` is the log, a gzipped CSV
    (despite its name), checked by its content's sha256 (:data:`POINTINGS_SHA256`)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--timeout", "30", REDBACK, "-d", tmp, "-q"]
        _say(progress, "running " + " ".join(cmd[2:]))
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("redback-*.whl"))
        if done.returncode != 0 or not wheels:
            raise DataFetchError(f"pip download {REDBACK} failed (exit {done.returncode})")
        with zipfile.ZipFile(wheels[0]) as zf:
            member = zf.extract("redback/tables/ztf.tar.gz", tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        _store(Path(member), target, POINTINGS_SHA256)
