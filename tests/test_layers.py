"""Imports point one way: no import cycle in the package; the torch-free inference layer
(the runtime and everything it imports, lazily or not) reaches nothing of fitting,
evaluation, compression, plots or Spark; the job above it (``astrot2 classify``) reaches
only that layer and training's light-curve perturbation."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "astrot2"

#: Third-party packages the inference layer must never import (their submodules neither).
FORBIDDEN_PACKAGES = ("torch", "sklearn", "matplotlib", "onnx", "pyspark", "sncosmo")
#: astrot2 modules above the inference layer: fitting, evaluation, compression, plots, entry
#: points (docs/architecture.md).
FORBIDDEN_MODULES = ("astrot2.model", "astrot2.train", "astrot2.train_real",
                     "astrot2.representative", "astrot2.train_representative",
                     "astrot2.augment", "astrot2.realsky", "astrot2.simulate",
                     "astrot2.data", "astrot2.metrics", "astrot2.recipe",
                     "astrot2.evaluate", "astrot2.calibration", "astrot2.companion_fit",
                     "astrot2.compress.pipeline", "astrot2.compress.finetune",
                     "astrot2.compress.features", "astrot2.compress.convert",
                     "astrot2.compress.artefact", "astrot2.compress.measure",
                     "astrot2.explain", "astrot2.plotting", "astrot2.classify",
                     "astrot2.uncertainty", "astrot2.spark", "astrot2.cli", "astrot2.demo")
#: The bottom of the inference layer's entry points (what a broker imports).
INFERENCE = ("astrot2.runtime", "astrot2.modelref", "astrot2.sessions", "astrot2.compact")
#: The job (layer 1): ``astrot2 classify`` and its opt-in uncertainty columns.
JOB = ("astrot2.classify", "astrot2.uncertainty")
#: What the job may reach above the inference layer: itself, and the NumPy perturbation of
#: test-time augmentation (``augment.augment``, training's own, imported lazily).
JOB_ALLOWED = (*JOB, "astrot2.augment")


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        rel = f.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = f
    return out


def _imports(name: str, file: Path, modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(astrot2 modules, third-party roots) ``name`` imports anywhere in its file."""
    inner, outer = set(), set()
    for node in ast.walk(ast.parse(file.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if file.name == "__init__.py" else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] if base in modules else [base]
        for t in targets:
            if t.split(".")[0] != "astrot2":
                outer.add(t.split(".")[0])
                continue
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                inner.add(t)
    return inner, outer


def _graph():
    modules = _modules()
    edges, external = {}, {}
    for name, file in modules.items():
        edges[name], external[name] = _imports(name, file, modules)
    return edges, external


def _reach(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), list(edges[start])
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo += edges[v]
    return seen


def test_no_import_cycle():
    edges, _ = _graph()
    loops = sorted(m for m in edges if m in _reach(edges, m))
    assert loops == [], f"modules in an import cycle: {loops}"


def _violations(edges: dict[str, set[str]], external: dict[str, set[str]],
                starts: tuple[str, ...]) -> list[str]:
    """Forbidden modules and packages imported by ``starts`` or anything they reach."""
    layer = set(starts).union(*(_reach(edges, s) for s in starts))
    used = layer | {e for m in layer for e in external[m]}
    return sorted(m for m in used if m in FORBIDDEN_MODULES or m in FORBIDDEN_PACKAGES)


def test_the_runtime_imports_nothing_above_it():
    edges, external = _graph()
    assert set(FORBIDDEN_MODULES) <= set(edges), "a listed module no longer exists"
    bad = _violations(edges, external, INFERENCE)
    assert bad == [], f"the inference layer imports {bad}"


def test_the_job_imports_the_inference_layer_and_the_tta_perturbation_only():
    edges, external = _graph()
    bad = [m for m in _violations(edges, external, JOB) if m not in JOB_ALLOWED]
    assert bad == [], f"astrot2 classify imports {bad}"


def test_the_check_sees_an_upward_import():
    """The layer check fails on an upper module or package reached at any depth."""
    edges = {"astrot2.runtime": {"astrot2.features"}, "astrot2.features": {"astrot2.gp"},
             "astrot2.gp": {"astrot2.calibration"}, "astrot2.calibration": set()}
    external = {m: set() for m in edges}
    assert _violations(edges, external, ("astrot2.runtime",)) == ["astrot2.calibration"]
    edges["astrot2.gp"] = set()
    external["astrot2.gp"] = {"numpy", "torch"}
    assert _violations(edges, external, ("astrot2.runtime",)) == ["torch"]


def test_the_check_sees_a_cycle(tmp_path):
    """The cycle finder finds one when there is one (a check that can fail)."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(m for m in edges if m in _reach(edges, m)) == ["a", "b", "c"]
