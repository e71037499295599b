"""Small shared helpers: atomic file output, hashing."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["atomic_path", "balanced_ranges", "check_writable", "run_ranges", "sha256_file"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    An interrupted writer leaves no file at ``path`` (nor a partial one): readers see the
    old file or the complete new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual mode
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def check_writable(path: str | Path, what: str = "output") -> Path:
    """Check, before any work, that :func:`atomic_path` will be able to write ``path``.

    The folder must exist and take a new file (tried: a temporary file is created there
    and removed), and ``path`` must not be a folder.

    Parameters
    ----------
    path : str or Path
        The file to be written.
    what : str
        How the error names it (``-o``, ``--errors-file``, ``output``).

    Raises
    ------
    ConfigError
        Saying what is wrong with ``path`` and how to fix it.
    """
    from astrot2.errors import ConfigError

    path = Path(path)
    folder = path.parent
    if path.is_dir():
        problem = "is a folder; give a file name"
    elif not folder.is_dir():
        problem = (f"{folder} is not a folder" if folder.exists() else
                   f"folder {folder} does not exist; create it first")
    else:
        try:
            fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
        except OSError as exc:
            problem = f"cannot write in folder {folder} ({exc.strerror})"
        else:
            os.close(fd)
            os.unlink(probe)
            return path
    raise ConfigError(f"{what} {path}: {problem}")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def balanced_ranges(cost: np.ndarray, n_threads: int | None) -> list[tuple[int, int]]:
    """Split items of the given ``cost`` into contiguous ranges of similar total cost,
    about 8 per worker thread (default: all cores), for :func:`run_ranges`."""
    n = len(cost)
    workers = n_threads or os.cpu_count() or 1
    pieces = min(n, 8 * workers)
    if pieces <= 1:
        return [(0, n)]
    total = np.cumsum(cost)
    cuts = np.searchsorted(total, total[-1] * np.arange(1, pieces) / pieces)
    bounds = np.unique(np.concatenate([[0], cuts, [n]]))
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def run_ranges(run, ranges: list[tuple[int, int]], n_threads: int | None) -> None:
    """Run ``run`` on every range, in threads (for C cores that release the GIL)."""
    workers = min(n_threads or os.cpu_count() or 1, len(ranges))
    if workers <= 1:
        for r in ranges:
            run(r)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, ranges))
