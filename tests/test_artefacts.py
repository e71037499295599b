"""Artefact safety: no pickle anywhere in the code, and a model folder loads only when its
manifest, checksum and ONNX graph agree (``ModelError`` otherwise, naming what is wrong).

``tests/test_runtime.py`` already covers a flipped byte in the ONNX file under an unchanged
manifest, unknown manifest settings and a missing model folder.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from astrot2.errors import ModelError
from astrot2.runtime import Classifier, shipped_models
from astrot2.utils import sha256_file

REPO = Path(__file__).resolve().parent.parent

#: Code that unpickles (or can unpickle) data: (pattern, what it is).
UNSAFE = [
    (r"^\s*(import|from)\s+(c?pickle|dill|cloudpickle|joblib|shelve)\b", "pickle-based module"),
    (r"\b(c?pickle|dill|cloudpickle|joblib)\.(load|loads|Unpickler)\b", "unpickling call"),
    (r"\bread_pickle\s*\(", "pandas read_pickle"),
    (r"\ballow_pickle\s*=\s*True", "np.load(..., allow_pickle=True)"),
    (r"\btorch\.load\s*\((?![^)]*weights_only\s*=\s*True)", "torch.load without "
     "weights_only=True"),
]


def unsafe_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, what)`` for every line of ``text`` that uses pickle."""
    hits = []
    for number, line in enumerate(text.splitlines(), start=1):
        for pattern, what in UNSAFE:
            if re.search(pattern, line):
                hits.append((number, what))
    return hits


def test_the_scanner_finds_pickle_use():
    """Positive controls, so that the source scan below can fail."""
    bad = ["import pickle", "from joblib import load", "x = pickle.loads(b)",
           "np.load(path, allow_pickle=True)", "torch.load(path)",
           "torch.load(path, map_location='cpu')", "df = pd.read_pickle(p)", "import dill"]
    assert [len(unsafe_lines(line)) >= 1 for line in bad] == [True] * len(bad)
    fine = ["torch.load(path, weights_only=True)", "np.load(path, allow_pickle=False)",
            "# nothing here is unpickled", "np.load(path)"]
    assert [unsafe_lines(line) for line in fine] == [[]] * len(fine)


def test_no_pickle_in_the_source_tree():
    files = sorted((REPO / "src").rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py"))
    assert len(files) > 20
    found = [f"{path.relative_to(REPO)}:{n}: {what}" for path in files
             for n, what in unsafe_lines(path.read_text(encoding="utf-8"))]
    assert found == []


# ----------------------------------------------------------------- model folders
@pytest.fixture(params=["shipped", "parent"])
def model_copy(request, tmp_path) -> Path:
    """A writable copy of the shipped lsst-plasticc model folder (its model file is the
    compact ``.t2c`` artefact), or of its ONNX parent kept beside it."""
    if "lsst-plasticc" not in shipped_models():
        pytest.skip("no shipped lsst-plasticc model")
    src = shipped_models()["lsst-plasticc"]
    if request.param == "parent":
        src = src / "parent"
        if not (src / "manifest.json").is_file():
            pytest.skip("the shipped lsst model has no parent folder")
    return Path(shutil.copytree(src, tmp_path / "lsst", ignore=shutil.ignore_patterns(
        "parent")))


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _model_file(folder: Path) -> Path:
    """The model file the manifest names (``model.onnx``, ``model.t2c``...)."""
    return folder / _manifest(folder)["onnx"]["file"]


def _edit_manifest(folder: Path, edit) -> None:
    doc = _manifest(folder)
    edit(doc)
    (folder / "manifest.json").write_text(json.dumps(doc))


def _reseal(folder: Path) -> None:
    """Record the model file's current sha256 in the manifest (a consistent forgery)."""
    sha = sha256_file(_model_file(folder))
    _edit_manifest(folder, lambda d: d["onnx"].update(sha256=sha))


def test_the_copy_loads(model_copy):
    doc = _manifest(model_copy)
    assert Classifier.load(model_copy).name == f"{doc['name']}@{doc['version']}"


def test_wrong_sha256_in_the_manifest(model_copy):
    _edit_manifest(model_copy, lambda d: d["onnx"].update(sha256="0" * 64))
    with pytest.raises(ModelError, match=r"sha256 [0-9a-f]{64} does not match the manifest"):
        Classifier.load(model_copy)


@pytest.mark.parametrize("where", [0.0, 0.5, 0.999])
def test_bit_flipped_model_file(model_copy, where):
    file = _model_file(model_copy)
    data = bytearray(file.read_bytes())
    data[int(len(data) * where)] ^= 0x10
    file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=re.escape(f"{file.name}: sha256")) as info:
        Classifier.load(model_copy)
    assert "re-install or re-train" in str(info.value)


@pytest.mark.parametrize("keep", [0.33, 0.9])
def test_truncated_model_file_with_a_matching_checksum(model_copy, keep):
    """Past the checksum (a forged manifest), a model file that does not decode or that
    ONNX Runtime refuses is a ModelError naming it too."""
    file = _model_file(model_copy)
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])
    _reseal(model_copy)
    with pytest.raises(ModelError, match=re.escape(file.name)):
        Classifier.load(model_copy)


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["features"].update(bands=["g", "r"]), "ONNX input 'x' has shape"),
    (lambda d: d["features"].update(use_std=False), "ONNX input 'x' has shape"),
    (lambda d: d["gp"].update(n_steps=50), "ONNX input 'x' has shape"),
    (lambda d: d["features"].update(use_redshift=False), "ONNX input 'extra' has shape"),
    (lambda d: d["features"].update(use_redshift=False, use_brightness=False),
     r"takes inputs \['extra', 'x'\], the manifest's settings give \['x'\]"),
    (lambda d: d["model"].update(n_extra=3), "model.n_extra 3 differs"),
    (lambda d: d.update(survey={"name": "ztf", "bands": ["g", "r", "i"],
                                "wavelengths": [4746.48, 6366.38, 7829.03]}),
     r"feature bands \['u', 'z', 'y'\] are not bands of the ztf survey"),
])
def test_manifest_that_does_not_match_the_graph(model_copy, edit, match):
    """Settings the checksum cannot see (the ONNX file is intact) but the graph contradicts."""
    file = _model_file(model_copy)
    _edit_manifest(model_copy, edit)
    with pytest.raises(ModelError, match=match) as info:
        Classifier.load(model_copy)
    assert file.name in str(info.value)


@pytest.mark.parametrize("section, key", [("features", "use_brightness"),
                                          ("features", "statistics_center"),
                                          ("gp", "max_points")])
def test_a_manifest_lacking_a_setting_is_refused_naming_it(model_copy, section, key):
    """No setting is filled with today's default (it may differ from the trained one)."""
    _edit_manifest(model_copy, lambda d: d[section].pop(key))
    with pytest.raises(ModelError, match=rf"\[{section}\]: missing settings \['{key}'\]"):
        Classifier.load(model_copy)


def test_a_setting_added_later_reads_as_its_old_meaning(model_copy):
    """``features.gp_statistics`` came after the shipped manifests: absent, it is off."""
    _edit_manifest(model_copy, lambda d: d["features"].pop("gp_statistics", None))
    assert Classifier.load(model_copy).manifest.features.gp_statistics is False


def test_the_network_sizes_are_refused_without_n_tokens():
    """``model.n_tokens`` (the encoder's tokens; ``gp.n_steps`` is the grid) must be there:
    a manifest still naming it ``n_steps`` is refused, not read as 100 tokens."""
    pytest.importorskip("torch")
    from astrot2.model import T2Config

    section = {**T2Config(n_tokens=25).to_dict(), "architecture": "PatchT2", "patch": 4}
    assert T2Config.from_dict(section) == T2Config(n_tokens=25)
    old = {("n_steps" if k == "n_tokens" else k): v for k, v in section.items()}
    with pytest.raises(ModelError, match=r"missing settings \['n_tokens'\]"):
        T2Config.from_dict(old)


def test_survey_band_order_is_checked(model_copy):
    _edit_manifest(model_copy, lambda d: d["survey"].update(bands=["g", "u", "r", "i", "z",
                                                                   "y"]))
    with pytest.raises(ModelError, match="band order"):
        Classifier.load(model_copy)


@pytest.mark.parametrize("missing, match", [("model", "model file .* is missing"),
                                            ("manifest.json", "no model manifest")])
def test_missing_file(model_copy, missing, match):
    (_model_file(model_copy) if missing == "model" else model_copy / missing).unlink()
    with pytest.raises(ModelError, match=match):
        Classifier.load(model_copy)


def test_unreadable_manifest(model_copy):
    (model_copy / "manifest.json").write_text('{"format": "astrot2-model/1", ')
    with pytest.raises(ModelError, match="unreadable manifest"):
        Classifier.load(model_copy)
    (model_copy / "manifest.json").write_text(json.dumps({"format": "astrot2-model/1"}))
    with pytest.raises(ModelError, match="malformed manifest"):
        Classifier.load(model_copy)
