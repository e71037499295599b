"""The distributions: ``python -m build`` gives an sdist and a wheel (built from the
sdist, so the sdist is complete); the wheel holds every shipped model file (the
compression parents included) and the demo data; installed without extras into a fresh
venv (no system site-packages), it classifies a bundled file and passes the runtime
tests, with no torch, scikit-learn, matplotlib or pyspark there."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "astrot2"
#: What the core install must not bring (the extras' packages).
EXTRAS_ONLY = ("torch", "sklearn", "matplotlib", "pyspark")


def _tracked(folder: str) -> set[str]:
    """Files of ``src/astrot2/FOLDER`` as paths inside the package (``astrot2/...``)."""
    root = PACKAGE / folder
    return {f"astrot2/{p.relative_to(PACKAGE).as_posix()}" for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def _clean_env() -> dict[str, str]:
    """This process's environment without the venv and path settings of its Python."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> dict[str, Path]:
    """``python -m build`` of a clean copy of this checkout: ``{"sdist": ..., "wheel": ...}``
    (the build backend's requirements come from pip's configured index, as for any user)."""
    if importlib.util.find_spec("build") is None:
        pytest.skip("`python -m build` needs the build package: pip install -e '.[dev]'")
    out = tmp_path_factory.mktemp("dist")
    # A clean copy: an in-tree build would reuse a stale build/ folder's files.
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.so", ".*_cache",
        "out"))
    run = subprocess.run([sys.executable, "-m", "build", str(source), "-o", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    (sdist,) = out.glob("astrot2-*.tar.gz")
    (wheel,) = out.glob("astrot2-*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="session")
def wheel(dists) -> Path:
    return dists["wheel"]


@pytest.fixture(scope="session")
def fresh_venv(wheel, tmp_path_factory) -> Path:
    """A new venv (no system site-packages) holding the wheel, installed without extras
    (its dependencies from pip's configured index), and this pytest: its ``python``."""
    import pytest as this_pytest

    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300,
                   env=_clean_env())
    python = venv / "bin" / "python"
    run = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel),
                          f"pytest=={this_pytest.__version__}"],
                         capture_output=True, text=True, timeout=600, env=_clean_env())
    assert run.returncode == 0, run.stderr[-3000:]
    return python


@pytest.mark.slow
def test_wheel_holds_every_model_file_and_the_demo_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _tracked("models") | _tracked("demo_data")
    assert any("/parent/" in n for n in expected)  # the case that was missing
    assert sorted(expected - names) == []
    assert any(n.startswith("astrot2/_gpcore") for n in names)
    assert any(n.startswith("astrot2/_templatecore") for n in names)


@pytest.mark.slow
def test_sdist_holds_the_sources_the_models_and_the_demo_data(dists):
    with tarfile.open(dists["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    expected = {f"src/{n}" for n in _tracked("models") | _tracked("demo_data")}
    expected |= {"setup.py", "pyproject.toml", "README.md", "src/astrot2/_gpcore.c",
                 "src/astrot2/_templatecore.c", "src/astrot2/cli.py"}
    assert sorted(expected - names) == []


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_without_extras_classifies_a_bundled_file(fresh_venv,
                                                                         tmp_path):
    """``astrot2 classify`` of the venv on the wheel's own demo file: one row per alert, in
    the file's order; the wheel's copy ran; no extra's package is importable there."""
    import pyarrow.parquet as pq

    from astrot2.io import read_file

    bindir = fresh_venv.parent
    probe = ("import importlib.util as u, json, sys, astrot2; print(json.dumps({'file': "
             "astrot2.__file__, 'present': [m for m in sys.argv[1:] if u.find_spec(m)]}))")
    info = json.loads(subprocess.run([str(fresh_venv), "-c", probe, *EXTRAS_ONLY],
                                     capture_output=True, text=True, check=True,
                                     cwd=tmp_path, env=_clean_env()).stdout)
    assert info["present"] == []
    installed = Path(info["file"]).parent
    assert installed.is_relative_to(bindir.parent)  # the venv's copy, not the source tree
    demo = sorted((installed / "demo_data" / "ztf").glob("*.parquet"))[0]
    out = tmp_path / "out.parquet"
    run = subprocess.run([str(bindir / "astrot2"), "classify", str(demo), "-o", str(out),
                          "--quiet"], capture_output=True, text=True, cwd=tmp_path,
                         env=_clean_env(), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout)
    ids = [str(a) for a in read_file(demo).alert_id]
    table = pq.read_table(out)
    assert table.column("alert_id").to_pylist() == ids
    assert summary["alerts_in"] == summary["classified"] == table.num_rows == len(ids) > 0
    assert (installed / "models" / "lsst-plasticc" / "parent" / "manifest.json").is_file()


#: The tests of tests/test_runtime.py that need nothing beyond the core install.
TORCH_FREE_RUNTIME_TESTS = {
    "test_runtime_does_not_import_torch",
    "test_companion_inference_needs_neither_torch_nor_scikit_learn",
    "test_wrong_survey_is_refused",
    "test_tampered_model_is_refused",
    "test_a_shipped_name_is_the_shipped_model_whatever_the_current_folder",
}


@pytest.mark.slow
def test_runtime_tests_pass_in_the_fresh_venv_without_torch(fresh_venv, tmp_path):
    """tests/test_runtime.py run by the venv's pytest against the installed wheel: the
    torch-free tests pass; only the trained-model tests (torch) and the real-data one
    (ASTROT2_DATA) may skip, for those reasons."""
    report = tmp_path / "report.xml"
    run = subprocess.run([str(fresh_venv), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"--junitxml={report}", str(ROOT / "tests" / "test_runtime.py")],
                         capture_output=True, text=True, cwd=tmp_path, env=_clean_env(),
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
    passed, skipped = set(), {}
    for case in ET.parse(report).getroot().iter("testcase"):
        assert case.find("failure") is None and case.find("error") is None
        skip = case.find("skipped")
        if skip is None:
            passed.add(case.get("name"))
        else:
            skipped[case.get("name")] = skip.get("message", "")
    assert sorted(TORCH_FREE_RUNTIME_TESTS - passed) == []
    for name, reason in skipped.items():
        assert "torch" in reason or "ASTROT2_DATA" in reason, (name, reason)
    assert any("torch" in reason for reason in skipped.values())  # torch is absent there
