"""Which model a user named: a :class:`ModelRef`, parsed once where the name enters.

A model is named by a user as a string (CLI ``--model``, a Spark column, the Python API):
a shipped model's name (``astrot2 models``), a path to a model folder (or its
``manifest.json``), either followed by ``+companion`` to run the network with its feature
companion.  :meth:`ModelRef.parse` turns that string into a folder, a companion flag and
the rule that took it, once; everything below it passes the :class:`ModelRef` on.
:func:`default_model` is the one rule for the model used when none is named.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from astrot2.errors import Astrot2Error, ModelError

__all__ = ["COMPANION_SUFFIX", "DEFAULT_MODELS", "ModelRef", "default_model",
           "resolve_model", "shipped_models"]

#: Appended to a model's name or folder (``lsst-plasticc+companion``): use its feature companion.
COMPANION_SUFFIX = "+companion"

#: The shipped model run on a survey's alerts when no model is named.
DEFAULT_MODELS = {"ztf": "ztf", "lsst": "lsst"}

#: The survey of each input format (:data:`astrot2.io.FORMATS`).
_FORMAT_SURVEY = {"ztf": "ztf", "rubin": "lsst", "elasticc": "lsst", "plasticc": "lsst"}


def shipped_models() -> dict[str, Path]:
    """Models installed with astrot2: name -> folder (``astrot2/models/NAME``)."""
    from importlib import resources

    root = Path(str(resources.files("astrot2") / "models"))
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "manifest.json").is_file()}


@dataclass(frozen=True)
class ModelRef:
    """A model as the user named it, resolved to its folder.

    Attributes
    ----------
    folder : Path
        The model folder (holding ``manifest.json``).
    companion : bool
        Run the network with the model's feature companion (``NAME+companion``).
    name : str
        What the user wrote, without ``+companion``.
    rule : {"shipped", "path", "default"}
        Which rule took the folder: a shipped model's name, a path, or
        :func:`default_model` (nothing was named).
    """

    folder: Path
    companion: bool = False
    name: str = ""
    rule: Literal["shipped", "path", "default"] = "path"

    @classmethod
    def parse(cls, model: str | Path | ModelRef, *, companion: bool | None = None
              ) -> ModelRef:
        """The model a user's string names.

        One rule: a shipped model's name (``astrot2 models``) is that shipped model, even
        when a folder of the same name sits in the current directory; anything else is a
        path, taken when it holds a ``manifest.json`` (or is one).  A trailing
        ``+companion`` (:data:`COMPANION_SUFFIX`) asks for the feature companion.

        Parameters
        ----------
        model : str, Path or ModelRef
            A ModelRef is returned as it is (with ``companion`` applied).
        companion : bool, optional
            Overrides the ``+companion`` suffix when given (``--companion``).

        Raises
        ------
        ModelError
            Neither a shipped name nor a path holding a model manifest.
        """
        if isinstance(model, ModelRef):
            return model if companion is None else replace(model, companion=companion)
        text = str(model)
        suffixed = text.endswith(COMPANION_SUFFIX)
        if suffixed:
            text = text[:-len(COMPANION_SUFFIX)]
        companion = suffixed if companion is None else companion
        shipped = shipped_models()
        if isinstance(model, str) and text in shipped:
            return cls(shipped[text], companion, text, "shipped")
        path = Path(text)
        if path.is_file() and path.name == "manifest.json":
            return cls(path.parent, companion, text, "path")
        if (path / "manifest.json").is_file():
            return cls(path, companion, text, "path")
        if path.exists():
            where = path if path.name == "manifest.json" else path / "manifest.json"
            raise ModelError(f"no model manifest at {where}: {path} is not a model folder, "
                             f"nor a shipped model's name (shipped: {sorted(shipped) or 'none'})")
        raise ModelError(f"no model folder {path} and no shipped model called {text!r} "
                         f"(shipped: {sorted(shipped) or 'none'})")

    @property
    def key(self) -> str:
        """The absolute folder, with ``+companion`` when asked: equal for every way of
        naming the same model run the same way (a cache key)."""
        return str(self.folder.resolve()) + (COMPANION_SUFFIX if self.companion else "")

    def __str__(self) -> str:
        return self.name + (COMPANION_SUFFIX if self.companion else "")


def resolve_model(model: str | Path | ModelRef) -> Path:
    """The model folder of a shipped model's name or a path (see :meth:`ModelRef.parse`)."""
    return ModelRef.parse(model).folder


def default_model(inputs: Iterable[str | Path] = (), format: str | None = None, *,
                  companion: bool = False) -> ModelRef:
    """The model run when none is named: the shipped model of the alerts' survey.

    The survey is that of ``format`` when given, else of the first input file whose format
    can be told (unreadable files are passed over here; reading them fails or skips them
    later); ZTF when neither tells (:data:`DEFAULT_MODELS`).
    """
    from astrot2.io import detect_format, expand_inputs

    fmt = format
    for path in expand_inputs(inputs) if fmt is None else []:
        try:
            fmt = detect_format(path)
        except Astrot2Error:
            continue
        break
    name = DEFAULT_MODELS[_FORMAT_SURVEY.get(fmt or "ztf", "ztf")]
    return replace(ModelRef.parse(name, companion=companion), rule="default")
