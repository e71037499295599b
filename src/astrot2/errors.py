"""The astrot2 exception hierarchy.

Every error raised on purpose by astrot2 derives from :class:`Astrot2Error`, so a broker
can catch one type.  Messages name the file, field and value at fault and, where there is
one, the fix.
"""

from __future__ import annotations

__all__ = [
    "AlertFormatError",
    "Astrot2Error",
    "ConfigError",
    "DataFetchError",
    "MissingExtraError",
    "ModelError",
    "require",
]


class Astrot2Error(Exception):
    """Base class of all errors raised by astrot2."""


class ConfigError(Astrot2Error, ValueError):
    """A setting (CLI flag, config field, survey name) has an invalid value."""


class AlertFormatError(Astrot2Error, ValueError):
    """An input file cannot be read as alerts: unknown format, truncated, missing fields.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    path : str, optional
        The file at fault.
    field : str, optional
        The column or Avro field at fault.
    """

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None):
        self.path = path
        self.field = field
        where = []
        if path is not None:
            where.append(f"file {path!s}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)


class DataFetchError(Astrot2Error, OSError):
    """A data set could not be obtained or failed its checksum."""


class ModelError(Astrot2Error):
    """A model artefact is missing, tampered with, or does not match the data."""


class MissingExtraError(Astrot2Error, ImportError):
    """A command needs an optional dependency (a pip extra) that is not installed."""


def require(extra: str, *modules: str) -> None:
    """Check, before any work, that the modules a command imports later are installed.

    Parameters
    ----------
    extra : str
        The pip extra of astrot2 that installs them (``train``, ``spark``, ...).
    *modules : str
        Top-level module names, e.g. ``"torch"``, ``"sklearn"``.

    Raises
    ------
    MissingExtraError
        Naming the missing modules, the extra and the pip command that installs it.
    """
    import importlib.util

    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package missing, or a stub module
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise MissingExtraError(
            f"{', '.join(missing)} not installed: this command needs astrot2's {extra} "
            f"extra; install it with pip install 'astrot2[{extra}]'")
