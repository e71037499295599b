"""Small shared helpers: atomic file output, hashing."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "check_writable", "sha256_file"]


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
