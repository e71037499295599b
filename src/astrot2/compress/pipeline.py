"""``astrot2 compress``: every compression method applied to one model folder.

Each method writes a model folder (manifest + model file + the parent's ``split.json``
and ``train_config.json``) that :meth:`astrot2.runtime.Classifier.load` loads, evaluated
on the parent's held-out test split by :func:`astrot2.evaluate.evaluate_model` (its
manifest's metrics are its own), with a ``parent`` record (file, sha256, metrics) and a
``compression`` record (method, settings, sizes).  A folder that already exists is
reused (delete it to redo a method).

Methods (:data:`METHODS`), in the order of the talk and then beyond it:

============== =========================================================================
onnx           the parent's ONNX file, unchanged (the baseline)
ort            ORT format (FlatBuffers, optimised graph)
fp16           float16 weight storage
dynamic_int8   ONNX Runtime dynamic int8
static_int8    ONNX Runtime static int8 (QDQ), calibrated on training inputs
int8_huffman   per-tensor int8 weights, Huffman-coded in the compact artefact (no retraining)
pruned         magnitude pruning during fine-tuning (target ``sparsity``)
clustered      k-means weight sharing (``clusters``) with centroid fine-tuning
deep           pruned, then clustered, then Huffman-coded (Han et al.'s deep compression)
distilled      a smaller student (patches of time steps, fewer heads) distilled from it
               (or from the mean probabilities of it and ``teachers``: an ensemble)
distilled_deep the student pruned, clustered and Huffman-coded
distilled_ort  the student in ORT format
============== =========================================================================

The shipping rule (:func:`ship_choice`): the smallest model file among the variants whose
held-out whole-light-curve flat log-loss is within ``tolerance`` (0.01) of the parent's
(ties: the higher throughput).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from astrot2.manifest import read_manifest
from astrot2.runtime import resolve_model
from astrot2.utils import sha256_file

__all__ = ["METHODS", "CompressConfig", "compress_model", "config_from", "markdown_table",
           "run", "ship_choice", "ship_to", "source_folder", "teacher_record"]

METHODS = ("onnx", "ort", "fp16", "dynamic_int8", "static_int8", "int8_huffman", "pruned",
           "clustered", "deep", "distilled", "distilled_deep", "distilled_ort")
_SUMMARY = ("flat_log_loss", "kaggle_log_loss", "accuracy", "macro_f1")


@dataclass(frozen=True)
class CompressConfig:
    """Settings of ``astrot2 compress`` (recorded in every variant's manifest)."""

    sparsity: float = 0.5  # target fraction of zero weights (pruning)
    clusters: int = 16  # distinct values per weight matrix (clustering), zero included
    skip_layers: int = 0  # leave the first N weight matrices unclustered / unpruned
    prune_steps: int = 600  # fine-tuning steps of pruning (batches of 256)
    cluster_steps: int = 300  # centroid fine-tuning steps
    student_patch: int = 4  # time steps per student token
    student_d_model: int = 32
    student_heads: int = 4
    student_d_ff: int = 128
    distill_steps: int = 8000
    distill_augment: int = 8  # augmented copies per train object for distillation
    distill_alpha: float = 0.7  # students: weight of the teacher term (1 - it: labels)
    student_prune_steps: int = 1200
    student_cluster_steps: int = 400
    batch_size: int = 256  # fine-tuning and distillation batches
    calibration: int = 512  # training inputs for static quantisation
    seed: int = 0
    tolerance: float = 0.01  # shipping rule: max flat log-loss increase over the parent
    # more teachers for the students: model folders with the parent's split and inputs;
    # the students learn the mean of their and the parent's class probabilities
    teachers: tuple[str, ...] = ()


def config_from(settings: Sequence[str] = (), **given: object) -> CompressConfig:
    """A :class:`CompressConfig` from ``KEY=VALUE`` strings (the ``--set`` of the CLI and
    the benchmark, :func:`astrot2.manifest.settings_from`) and keyword fields.

    Raises
    ------
    ConfigError
        For an unknown key or a value of the wrong type (a ``ValueError``).
    """
    from astrot2.manifest import settings_from

    return CompressConfig(**{**given, **settings_from(settings, CompressConfig)})


class _Context:
    """What the methods share: the parent, the data, cached inputs and torch models."""

    def __init__(self, parent: Path, out: Path, batch, config: CompressConfig, cache: Path,
                 log: Callable[[str], None]) -> None:
        self.parent, self.out, self.batch, self.config, self.log = parent, out, batch, config, log
        self.cache = cache
        self.manifest = read_manifest(parent)
        self.onnx = self.manifest.model_file
        self.teachers = [self.onnx, *(_teacher_file(parent, self.manifest, Path(t))
                                      for t in config.teachers)]
        self._inputs: dict[int, object] = {}
        self._teacher_logits: dict[int, np.ndarray] = {}  # by id of a cached inputs()
        self.models: dict[str, object] = {}

    def inputs(self, n_augment: int | None = None):
        from astrot2.compress.features import training_inputs

        key = -1 if n_augment is None else n_augment
        if key not in self._inputs:
            self._inputs[key] = training_inputs(self.parent, self.batch, n_augment=n_augment,
                                                cache=self.cache, log=self.log)
        return self._inputs[key]


def _write_variant(ctx: _Context, method: str, folder: Path, file: Path,
                   model: dict | None = None, info: dict | None = None) -> Path:
    """Manifest and companion files of a variant whose model file is ``file``."""
    from astrot2.evaluate import evaluate_model

    doc = json.loads((ctx.parent / "manifest.json").read_text())
    parent = {"name": doc["name"], "version": doc["version"], "file": doc["onnx"]["file"],
              "sha256": doc["onnx"]["sha256"], "bytes": doc["onnx"]["bytes"],
              "metrics": doc.get("metrics", {})}
    doc["version"] = f"{doc['version']}+{method.replace('_', '.')}"
    doc["onnx"] = {"file": file.name, "sha256": sha256_file(file),
                   "bytes": file.stat().st_size,
                   "kind": {".onnx": "onnx", ".ort": "ort", ".t2c": "compact"}[file.suffix]}
    if model is not None:
        doc["model"] = model
    config = {**asdict(ctx.config),  # teachers by folder name, no path of this machine
              "teachers": [Path(t).name for t in ctx.config.teachers]}
    doc["compression"] = {"method": method, "config": config, **(info or {})}
    # a probability calibration (temperature) was fitted to the parent's logits: it does
    # not carry over; run ``astrot2 calibrate`` on the variant
    doc.pop("calibration", None)
    doc["parent"] = doc.get("parent") or parent
    for name in ("split.json", "train_config.json"):
        shutil.copy(ctx.parent / name, folder / name)
    (folder / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")
    report = evaluate_model(folder, ctx.batch)
    (folder / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    doc["metrics"] = {"test_split": {k: {m: report[k][m] for m in _SUMMARY}
                                     for k in ("whole", "alert_windows")}}
    (folder / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")
    ctx.log(f"{method}: {file.stat().st_size} B, test flat log-loss "
            f"{report['whole']['flat_log_loss']:.4f}")
    return folder


# --- the torch models behind the retrained variants -------------------------------------

def _t2_config(ctx: _Context):
    from astrot2.model import T2Config

    return T2Config.from_dict(ctx.manifest.raw["model"], f"{ctx.parent} [model]")


def _parent_torch(ctx: _Context):
    """A fresh torch copy of the parent (the ONNX weights are mapped once)."""
    import copy

    from astrot2.compress.finetune import t2_from_onnx

    if "parent" not in ctx.models:
        ctx.models["parent"] = t2_from_onnx(str(ctx.onnx), _t2_config(ctx))
    return copy.deepcopy(ctx.models["parent"])


def _student_config(ctx: _Context):
    from dataclasses import replace

    c, cfg = ctx.config, _t2_config(ctx)
    if cfg.n_tokens % c.student_patch:
        raise ValueError(f"student_patch {c.student_patch} does not divide n_tokens "
                         f"{cfg.n_tokens}")
    return replace(cfg, n_tokens=cfg.n_tokens // c.student_patch,
                   n_channels=cfg.n_channels * c.student_patch, d_model=c.student_d_model,
                   n_heads=c.student_heads, d_ff=c.student_d_ff)


def _student_model_section(ctx: _Context) -> dict:
    return {**_student_config(ctx).to_dict(), "architecture": "PatchT2",
            "patch": ctx.config.student_patch, "input_steps": _t2_config(ctx).n_tokens,
            "input_channels": _t2_config(ctx).n_channels}


def _torch_variant(ctx: _Context, method: str):
    """The torch model of a retrained variant (trained now, or read back from its ONNX)."""
    if method in ctx.models:
        return ctx.models[method]
    from astrot2.compress import finetune as ft
    from astrot2.model import T2, PatchT2

    c = ctx.config
    onnx_file = ctx.out / method / _float_model_name(method)
    student = method.startswith("distilled")
    if onnx_file.is_file():  # reuse a variant written by an earlier run
        model = PatchT2(_student_config(ctx), c.student_patch) if student else \
            T2(_t2_config(ctx))
        ft.load_onnx_weights(model, str(onnx_file))
    elif method == "pruned":
        model = _parent_torch(ctx)
        ft.prune(model, ctx.inputs(), sparsity=c.sparsity, steps=c.prune_steps,
                 skip=c.skip_layers, seed=c.seed, batch_size=c.batch_size,
                 log=ctx.log)
    elif method == "clustered":
        model = _parent_torch(ctx)
        ft.cluster(model, ctx.inputs(), k=c.clusters, skip=c.skip_layers,
                   steps=c.cluster_steps, seed=c.seed, batch_size=c.batch_size,
                   log=ctx.log)
    elif method == "deep":
        import copy

        model = copy.deepcopy(_torch_variant(ctx, "pruned"))
        ft.cluster(model, ctx.inputs(), k=c.clusters, skip=c.skip_layers,
                   steps=c.cluster_steps, seed=c.seed, batch_size=c.batch_size,
                   log=ctx.log)
    elif method == "distilled":
        import torch

        data, logits = _student_data(ctx)
        torch.manual_seed(c.seed)
        model = PatchT2(_student_config(ctx), c.student_patch)
        ft.distill(model, data, logits, steps=c.distill_steps,
                   alpha=c.distill_alpha, seed=c.seed, batch_size=c.batch_size, log=ctx.log)
    elif method == "distilled_deep":  # fine-tuned on the teacher's soft targets too
        import copy

        model = copy.deepcopy(_torch_variant(ctx, "distilled"))
        data, logits = _student_data(ctx)
        ft.prune(model, data, sparsity=c.sparsity, steps=c.student_prune_steps,
                 skip=c.skip_layers, seed=c.seed, batch_size=c.batch_size, teacher=logits,
                 alpha=c.distill_alpha, log=ctx.log)
        ft.cluster(model, data, k=c.clusters, skip=c.skip_layers,
                   steps=c.student_cluster_steps, seed=c.seed, batch_size=c.batch_size,
                   teacher=logits, alpha=c.distill_alpha, log=ctx.log)
    else:
        raise ValueError(f"{method} has no torch model")
    ctx.models[method] = model.eval()
    return ctx.models[method]


def teacher_record(file: Path) -> dict:
    """How a student's manifest names one of its teachers.

    The file (its folder's and its own name: no path of the machine it was made on) and
    its sha256, and, from the ``train_config.json`` beside it, the
    ``astrot2 train`` command that re-creates its configuration, or, when no command
    line does, that whole configuration.  A teacher's path is often a scratch folder;
    the command and checksum are what identify it (training is deterministic for a
    given code version: the same command retrains the same model; after changes to the
    GP or training code it trains a comparable one, docs/model.md).
    """
    from astrot2.train import train_command

    record: dict = {"file": f"{Path(file).parent.name}/{Path(file).name}",
                    "sha256": sha256_file(file)}
    config = Path(file).parent / "train_config.json"
    if config.is_file():
        doc = json.loads(config.read_text())
        command, differences = train_command(doc)
        record["train_command"] = command
        if command is None:
            record["train_config"] = doc
            record["differs_from_preset"] = differences
    return record


def _teacher_file(parent: Path, manifest, folder: Path) -> Path:
    """The model file of an extra teacher, after checking it can teach the parent's student.

    Raises
    ------
    ValueError
        If its held-out split (a teacher that trained on the test objects would leak them
        into the student) or its inputs (GP settings, features) differ from the parent's.
    """
    folder = source_folder(folder)
    if (folder / "split.json").read_text() != (parent / "split.json").read_text():
        raise ValueError(f"teacher {folder}: another split than the parent {parent}")
    theirs = read_manifest(folder)
    if (manifest.gp, manifest.features) != (theirs.gp, theirs.features):
        raise ValueError(f"teacher {folder}: other GP or feature settings than {parent}")
    return theirs.model_file


def _teacher_logits(ctx: _Context, data) -> np.ndarray:
    """The teachers' logits on the train views of ``data`` (ONNX Runtime): the parent's,
    or with more teachers the log of their mean class probabilities (raw outputs: a
    teacher's calibration temperature is not applied).  Computed once per inputs: the
    student's distillation and its pruning and clustering share them."""
    if id(data) in ctx._teacher_logits:
        return ctx._teacher_logits[id(data)]
    out = _ensemble_logits(ctx, data.x_train, data.extra_train)
    ctx._teacher_logits[id(data)] = out
    return out


def _student_data(ctx: _Context) -> tuple[object, np.ndarray]:
    """The students' training inputs and their teachers' logits."""
    data = ctx.inputs(ctx.config.distill_augment)
    return data, _teacher_logits(ctx, data)


def _ensemble_logits(ctx: _Context, x: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """The teachers' logits for model inputs: the parent's alone, or the log of the mean
    class probabilities of all the teachers."""
    from astrot2.metrics import ensemble_logits
    from astrot2.sessions import onnx_session

    logits = []
    for file in ctx.teachers:
        teacher = onnx_session(str(file), file)
        logits.append(np.concatenate([
            teacher.run(None, _feeds(teacher, x[i:i + 512], extra[i:i + 512]))[0]
            for i in range(0, len(x), 512)]))
    return ensemble_logits(logits)


#: Methods whose model file is the compact artefact.
COMPACT = ("deep", "distilled_deep")


def _float_model_name(method: str) -> str:
    """The float32 ONNX export of a retrained method (its model file, unless compacted)."""
    return "uncompressed.onnx" if method in COMPACT else "model.onnx"


def _feeds(session, x: np.ndarray, extra: np.ndarray) -> dict[str, np.ndarray]:
    names = [i.name for i in session.get_inputs()]
    return {"x": x, "extra": extra} if "extra" in names else {"x": x}


def _sparsity(model) -> dict[str, float]:
    from astrot2.compress.finetune import prunable

    params = dict(model.named_parameters())
    names = prunable(model)
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    total = sum(params[n].numel() for n in names)
    distinct = max(len(np.unique(params[n].detach().numpy())) for n in names)
    return {"weight_sparsity": zeros / total, "max_distinct_values_per_matrix": distinct,
            "parameters": int(sum(p.numel() for p in model.parameters()))}


def _make(ctx: _Context, method: str) -> Path:
    """Write the folder of one method (unless it exists) and return it."""
    from astrot2.compress import artefact, convert
    from astrot2.model import export_onnx

    folder = ctx.out / method
    if (folder / "manifest.json").is_file():
        ctx.log(f"{method}: reusing {folder}")
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    model_section, info = None, {}
    if method == "onnx":
        file = Path(shutil.copy(ctx.onnx, folder / "model.onnx"))
    elif method == "ort":
        file = convert.to_ort_format(ctx.onnx, folder / "model.ort")
    elif method == "fp16":
        file = convert.float16_weights(ctx.onnx, folder / "model.onnx")
    elif method == "dynamic_int8":
        file = convert.quantize_dynamic_int8(ctx.onnx, folder / "model.onnx")
    elif method == "static_int8":
        data = ctx.inputs().subset(ctx.config.calibration, ctx.config.seed)
        feeds = {"x": data.x_train}
        if ctx.manifest.n_extra:
            feeds["extra"] = data.extra_train
        file = convert.quantize_static_int8(ctx.onnx, folder / "model.onnx", feeds)
    elif method == "int8_huffman":
        file = folder / "model.t2c"
        info["artefact"] = artefact.write_compact(ctx.onnx, file, lossy="int8")
    elif method == "distilled_ort":
        file = convert.to_ort_format(_make(ctx, "distilled") / "model.onnx",
                                     folder / "model.ort")
        model_section = _student_model_section(ctx)
    else:  # retrained
        model = _torch_variant(ctx, method)
        info.update(_sparsity(model))
        if method.startswith("distilled"):
            model_section = _student_model_section(ctx)
            info["teachers"] = [teacher_record(t) for t in ctx.teachers]
        file = folder / _float_model_name(method)
        if not file.is_file():
            export_onnx(model, str(file))
        if method in COMPACT:  # the float ONNX stays beside it, for reuse (not loaded)
            compact = folder / "model.t2c"
            info["artefact"] = artefact.write_compact(file, compact)
            file = compact
    return _write_variant(ctx, method, folder, file, model_section, info)


def source_folder(model: str | Path) -> Path:
    """The uncompressed model to start from: the folder itself, or, for a shipped
    compressed model, its ``parent/`` folder (see :func:`ship_to`)."""
    folder = resolve_model(model)
    if (folder / "parent" / "manifest.json").is_file():
        return folder / "parent"
    return folder


def compress_model(model: str | Path, out: str | Path, batch, *,
                   methods: Sequence[str] = METHODS, config: CompressConfig | None = None,
                   cache: str | Path | None = None, log: Callable[[str], None] = print
                   ) -> dict[str, Path]:
    """Write one model folder per method under ``out``; returns method -> folder.

    Parameters
    ----------
    model : str or Path
        Shipped model name or model folder (with ``split.json``, ``train_config.json``).
    out : str or Path
        Output folder (``out/METHOD/``).
    batch : LightCurveBatch
        The labelled PLAsTiCC training set (training inputs, evaluation).
    methods : sequence of str
        Subset of :data:`METHODS` (``onnx``, the baseline, is always made).
    cache : str or Path, optional
        Folder for cached training inputs (default ``out/cache``).
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose among {list(METHODS)}")
    out = Path(out)
    ctx = _Context(source_folder(model), out, batch, config or CompressConfig(),
                   Path(cache) if cache else out / "cache", log)
    wanted = ["onnx", *[m for m in METHODS if m in methods and m != "onnx"]]
    return {m: _make(ctx, m) for m in wanted}


def ship_choice(results: dict[str, dict], tolerance: float = 0.01) -> str:
    """The variant to ship: smallest file within ``tolerance`` of the baseline's
    whole-light-curve flat log-loss (ties: the higher throughput)."""
    base = results["onnx"]["flat_log_loss"]
    ok = [m for m, r in results.items() if r["flat_log_loss"] <= base + tolerance]
    return min(ok, key=lambda m: (results[m]["bytes"], -results[m].get("alerts_per_s", 0)))


def markdown_table(results: dict[str, dict]) -> str:
    """The comparison table of ``docs/compression.md``."""
    base = results["onnx"]
    lines = ["| method | size on disk (bytes) | load latency (ms) | single-alert model "
             "latency (ms) | batch throughput (alerts/s) | flat log-loss | accuracy | "
             "delta log-loss vs baseline | saves |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for m, r in results.items():
        lines.append(
            f"| {m} | {r['bytes']:,} | {r['load_ms']:.2f} | {r['single_ms']:.3f} | "
            f"{r['alerts_per_s']:,.0f} | {r['flat_log_loss']:.4f} | {r['accuracy']:.4f} | "
            f"{r['flat_log_loss'] - base['flat_log_loss']:+.4f} | {_saves(r, base)} |")
    return "\n".join(lines) + "\n"


def _saves(r: dict, base: dict) -> str:
    """What a variant measurably saves against the baseline (storage, load, compute)."""
    out = []
    if r["bytes"] < 0.9 * base["bytes"]:
        out.append("storage")
    if r["load_ms"] < 0.8 * base["load_ms"]:
        out.append("load")
    if r["alerts_per_s"] > 1.3 * base["alerts_per_s"]:
        out.append("compute")
    return ", ".join(out) or "nothing"


def summarise(folder: Path, measured: dict[str, float]) -> dict:
    """One results row: file size, measured speed and the manifest's held-out metrics."""
    doc = json.loads((folder / "manifest.json").read_text())
    whole = doc["metrics"]["test_split"]["whole"]
    windows = doc["metrics"]["test_split"]["alert_windows"]
    return {"folder": str(folder), "file": doc["onnx"]["file"], "bytes": doc["onnx"]["bytes"],
            **measured, "flat_log_loss": whole["flat_log_loss"], "accuracy": whole["accuracy"],
            "alert_windows_flat_log_loss": windows["flat_log_loss"],
            "compression": {k: v for k, v in doc.get("compression", {}).items()
                            if k != "config"}}


def run(model: str | Path, out: str | Path, batch, *, methods: Sequence[str] = METHODS,
        config: CompressConfig | None = None, threads: int = 1, rounds: int = 5,
        log: Callable[[str], None] = print) -> dict:
    """:func:`compress_model`, then measure every variant (:func:`astrot2.compress.measure`
    on the parent's validation inputs; per figure the median of ``rounds`` round-robin
    rounds) and apply the shipping rule.

    Returns
    -------
    dict
        ``{"model", "parent", "config", "variants": {method: row}, "ship": method}``, with
        rows of :func:`summarise`.
    """
    from astrot2.compress.features import training_inputs
    from astrot2.compress.measure import measure

    config = config or CompressConfig()
    out = Path(out)
    folders = compress_model(model, out, batch, methods=methods, config=config, log=log)
    parent = source_folder(model)
    data = training_inputs(parent, batch, cache=out / "cache", log=log)
    # round-robin over the variants, so that a change of machine load hits them all alike
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in folders}
    for _ in range(rounds):
        for method, folder in folders.items():
            runs[method].append(measure(folder, data.x_val, data.extra_val, threads=threads,
                                        load_repeats=15, single_repeats=300,
                                        batch_repeats=3))
    rows = {}
    for method, folder in folders.items():
        med = {k: float(np.median([r[k] for r in runs[method]])) for k in runs[method][0]}
        rows[method] = summarise(folder, {**med, "rounds": rounds})
        log(f"{method}: {med['alerts_per_s']:,.0f} alerts/s, load {med['load_ms']:.2f} ms")
    return {"model": str(model), "parent": str(parent), "config": asdict(config),
            "variants": rows, "ship": ship_choice(rows, config.tolerance)}


def ship_to(results: dict, dest: str | Path, log: Callable[[str], None] = print) -> Path:
    """Install the chosen variant as the model folder ``dest``, the parent in ``dest/parent``.

    ``dest`` may be the parent's own folder (replacing a shipped model in place): the
    parent's files then move to ``dest/parent``.  A feature companion of the replaced
    model is not carried over (its combination was fitted to the old network): fit it
    again with ``astrot2 companion --model DEST`` (a message says so).
    """
    import tempfile

    dest = Path(dest)
    old = dest / "manifest.json"
    if old.is_file() and "companion" in json.loads(old.read_text()):
        log(f"{dest}: its feature companion belonged to the replaced network and is not "
            f"kept; fit a new one: astrot2 companion --model {dest}")
    chosen = Path(results["variants"][results["ship"]]["folder"])
    parent = Path(results["parent"])
    with tempfile.TemporaryDirectory(dir=dest.parent if dest.parent.exists() else None) as tmp:
        staged = Path(tmp) / "model"
        staged.mkdir()
        doc = json.loads((chosen / "manifest.json").read_text())
        for name in ("manifest.json", doc["onnx"]["file"], "split.json", "train_config.json",
                     "metrics.json"):
            shutil.copy(chosen / name, staged / name)
        shutil.copytree(parent, staged / "parent",
                        ignore=shutil.ignore_patterns("parent", "__pycache__"))
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(staged), str(dest))
    read_manifest(dest)
    return dest
