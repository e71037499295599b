"""The wheel: it holds every shipped model file (the compression parents included) and the
demo data, and the installed wheel classifies a bundled file without the source tree."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "astrot2"


def _tracked(folder: str) -> set[str]:
    """Files of ``src/astrot2/FOLDER`` as paths inside the package (``astrot2/...``)."""
    root = PACKAGE / folder
    return {f"astrot2/{p.relative_to(PACKAGE).as_posix()}" for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from this checkout (offline: the venv's setuptools, no isolation)."""
    if importlib.util.find_spec("setuptools") is None:  # (>= 70.1 builds wheels itself)
        pytest.skip("building the wheel offline needs setuptools in this environment")
    out = tmp_path_factory.mktemp("wheel")
    # A clean copy: an in-tree build would reuse a stale build/ folder's files.
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "*.so", ".*_cache", "out"))
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                          "--no-build-isolation", "-q", "-w", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    (path,) = out.glob("astrot2-*.whl")
    return path


@pytest.mark.slow
def test_wheel_holds_every_model_file_and_the_demo_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _tracked("models") | _tracked("demo_data")
    assert any("/parent/" in n for n in expected)  # the case that was missing
    assert sorted(expected - names) == []
    assert any(n.startswith("astrot2/_gpcore") for n in names)


@pytest.mark.slow
def test_installed_wheel_classifies_a_bundled_file(wheel, tmp_path):
    """Unpacked apart from the source tree (dependencies from this environment)."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", "--target", str(target), str(wheel)], check=True,
                   timeout=300)
    demo = next((target / "astrot2" / "demo_data" / "ztf").glob("*.parquet"))
    out = tmp_path / "out.parquet"
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import astrot2, sys; from astrot2.cli import main; "
            "print(astrot2.__file__, file=sys.stderr); sys.exit(main(sys.argv[1:]))")
    run = subprocess.run([sys.executable, "-c", code, "classify", str(demo), "-o", str(out),
                          "--quiet"], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert str(target) in run.stderr  # the wheel's copy ran, not the source tree
    summary = json.loads(run.stdout)
    assert summary["alerts_in"] == summary["classified"] > 0
    assert (target / "astrot2" / "models" / "lsst-plasticc" / "parent" / "manifest.json").is_file()
