"""Model manifests: everything needed to reproduce a model's input, with checksums.

A model is a folder holding ``manifest.json`` and the ONNX file it names.  The manifest
records the survey (bands, wavelengths), the classes in output order, the GP and feature
settings (the preprocessing seam), the network sizes, the training data checksums and
the held-out metrics, and the sha256 of the ONNX file, which loading verifies.  JSON only:
nothing in a model folder is executed or unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from astrot2.classes import CLASSES
from astrot2.errors import ConfigError, ModelError
from astrot2.features import FeatureConfig
from astrot2.gp import GPConfig
from astrot2.surveys import Survey, get_survey
from astrot2.utils import atomic_path, sha256_file

__all__ = ["FORMAT", "Manifest", "dataclass_from", "read_manifest", "rewrite_manifest",
           "settings_from", "write_manifest"]

FORMAT = "astrot2-model/1"

T = TypeVar("T")


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated model manifest."""

    name: str
    version: str
    survey: Survey
    gp: GPConfig
    features: FeatureConfig
    model_file: Path
    sha256: str
    n_extra: int
    raw: dict[str, Any]

    @property
    def slug_columns(self) -> list[str]:
        """Output probability column names, ``p_<slug>``, in output order."""
        return [f"p_{c['slug']}" for c in self.raw["classes"]]


def dataclass_from(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Build a config dataclass from a manifest section holding every one of its fields.

    A missing setting is refused, not filled with today's default: the default may have
    changed since the model was trained, and the model would silently get other inputs.
    Only the settings a dataclass names in its ``OPTIONAL`` mapping (added after the first
    manifests) may be absent; they take the value given there, which keeps an older model
    behaving as it was trained.  Lists become tuples.
    """
    names = [f.name for f in fields(cls)]
    unknown = set(data) - set(names)
    if unknown:
        raise ModelError(f"{where}: unknown settings {sorted(unknown)}")
    optional = getattr(cls, "OPTIONAL", {})  # settings added later, absent = this value
    missing = [n for n in names if n not in data and n not in optional]
    if missing:
        raise ModelError(f"{where}: missing settings {missing}; the manifest must record "
                         "every setting its model was trained with (add them with the "
                         "values used in training)")
    values = {**{k: v for k, v in optional.items() if k not in data},
              **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}}
    return cls(**values)


def settings_from(items: Sequence[str], cls: type) -> dict[str, int | float | bool]:
    """``KEY=VALUE`` strings (a command's ``--set``) as keyword values of the config
    dataclass ``cls``: its ``int``, ``float`` and ``bool`` fields (``true`` / ``false``).

    Raises
    ------
    ConfigError
        An item without ``=``, a key that is not such a field, or a value of the wrong type.
    """
    kinds = {f.name: f.type if isinstance(f.type, str) else f.type.__name__
             for f in fields(cls)}
    settable = [k for k, t in kinds.items() if t in ("int", "float", "bool")]
    values: dict[str, int | float | bool] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in settable:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with KEY among {settable}")
        kind = kinds[key]
        try:
            if kind == "bool":
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                values[key] = text.lower() == "true"
            else:
                values[key] = int(text) if kind == "int" else float(text)
        except ValueError:
            raise ConfigError(f"--set {item!r}: {key} takes a{'n' if kind == 'int' else ''} "
                              f"{kind}") from None
    return values


def with_settings(config: T, items: Sequence[str]) -> T:
    """``config`` (a dataclass) with a command's ``--set KEY=VALUE`` items applied
    (:func:`settings_from`); a dotted ``KEY`` reaches into a nested config dataclass, e.g.
    ``representative.redshift.bandwidth=false``.

    Raises
    ------
    ConfigError
        As :func:`settings_from`, at whichever level the key is wrong.
    """
    nested: dict[str, list[str]] = {}
    own = []
    for item in items:
        key, sep, text = item.partition("=")
        head, dot, rest = key.partition(".")
        if sep and dot and is_dataclass(getattr(config, head, None)):
            nested.setdefault(head, []).append(f"{rest}={text}")
        else:
            own.append(item)
    values: dict[str, Any] = dict(settings_from(own, type(config)))
    values.update({head: with_settings(getattr(config, head), sub)
                   for head, sub in nested.items()})
    return replace(config, **values)


def write_manifest(folder: Path, *, name: str, version: str, survey: Survey, gp: GPConfig,
                   features: FeatureConfig, model: dict[str, Any], model_file: str,
                   training: dict[str, Any], metrics: dict[str, Any]) -> Path:
    """Write ``folder/manifest.json`` for the ONNX file ``folder/model_file``."""
    path = folder / model_file
    doc = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "survey": {"name": survey.name, "bands": list(survey.bands),
                   "wavelengths": list(survey.wavelengths)},
        "classes": [{"code": c.code, "name": c.name, "slug": c.slug} for c in CLASSES],
        "gp": {f.name: getattr(gp, f.name) for f in fields(gp)},
        "features": features.to_dict(),
        "model": model,
        "onnx": {"file": model_file, "sha256": sha256_file(path),
                 "bytes": path.stat().st_size},
        "training": training,
        "metrics": metrics,
    }
    out = folder / "manifest.json"
    out.write_text(json.dumps(doc, indent=2, default=list) + "\n")
    return out


def read_manifest(path: Path) -> Manifest:
    """Parse and check a manifest (a folder or its ``manifest.json``).

    Raises
    ------
    ModelError
        Missing file, wrong format, unknown survey, unknown or missing GP / feature
        settings (every field of :class:`GPConfig` and :class:`FeatureConfig` must be
        there), a missing ``model.n_extra``, classes that differ from
        :data:`astrot2.classes.CLASSES`, or an ONNX file whose sha256 does not match.
    """
    path = Path(path)
    file = path / "manifest.json" if path.is_dir() else path
    if not file.is_file():
        raise ModelError(f"no model manifest at {file}")
    try:
        doc = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{file}: unreadable manifest ({exc})") from exc
    if doc.get("format") != FORMAT:
        raise ModelError(f"{file}: format {doc.get('format')!r}, expected {FORMAT!r}")
    try:
        survey = get_survey(doc["survey"]["name"])
        if list(survey.bands) != doc["survey"]["bands"]:
            raise ModelError(f"{file}: band order {doc['survey']['bands']} differs from "
                             f"the {survey.name} survey's {list(survey.bands)}")
        expected = [{"code": c.code, "name": c.name, "slug": c.slug} for c in CLASSES]
        if doc["classes"] != expected:
            raise ModelError(f"{file}: classes differ from astrot2's 14 PLAsTiCC classes")
        gp = dataclass_from(GPConfig, doc["gp"], f"{file} [gp]")
        features = dataclass_from(FeatureConfig, doc["features"], f"{file} [features]")
        model_file = file.parent / doc["onnx"]["file"]
        sha = doc["onnx"]["sha256"]
        n_extra = int(doc["model"]["n_extra"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{file}: malformed manifest ({exc})") from exc
    if not model_file.is_file():
        raise ModelError(f"{file}: model file {model_file} is missing")
    got = sha256_file(model_file)
    if got != sha:
        raise ModelError(f"{model_file}: sha256 {got} does not match the manifest ({sha}); "
                         "the file was modified or corrupted: re-install or re-train it")
    return Manifest(name=doc["name"], version=doc["version"], survey=survey, gp=gp,
                    features=features, model_file=model_file, sha256=sha, n_extra=n_extra,
                    raw=doc)


def rewrite_manifest(path: Path, update: Callable[[dict], None]) -> Path:
    """Change a model's manifest.json in place: ``update`` edits the parsed document.

    The new document is written atomically and re-read with :func:`read_manifest` (the old
    file is restored if it no longer validates).  Model files are not touched.

    Returns
    -------
    Path
        The manifest file.
    """
    path = Path(path)
    file = path / "manifest.json" if path.is_dir() else path
    old = file.read_text()
    doc = json.loads(old)
    update(doc)
    with atomic_path(file) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    try:
        read_manifest(file)
    except ModelError:
        with atomic_path(file) as tmp:
            tmp.write_text(old)
        raise
    return file
