"""Fine-tune a network on real labelled light curves and compress it (``astrot2 train
--model ztf --real DIR``).

Pre-trained on simulations (the shipped ``ztf`` network learned PLAsTiCC re-observed as
ZTF alerts), fine-tuned on the real sky:

1. the labelled set (:mod:`astrot2.io.labelled`) is split by object
   (:func:`astrot2.realsky.split_objects`, ``split.json``);
2. the train objects become alert views (:func:`astrot2.realsky.training_views`: farther
   copies, random alert times, 30 days of history), fed through the model's own GP and
   feature seam (:func:`astrot2.features.prepare`);
3. the network is fine-tuned with the capped class weights of
   :func:`astrot2.realsky.class_weights` (written to the manifest as the training class
   mix, so that ``--prior`` re-weights it exactly), keeping the weights of the best
   validation loss (the validation objects cut at every alert time of
   :data:`astrot2.realsky.CUTS`; the test objects are never looked at here);
4. then pruned, clustered and written as the compact ``.t2c`` artefact
   (:mod:`astrot2.compress`), so the shipped network stays within the size budget.

Needs PyTorch (the ``train`` extra).  Deterministic given the seeds.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from astrot2.classes import CLASSES
from astrot2.compress.artefact import read_compact, write_compact
from astrot2.compress.features import TrainingInputs
from astrot2.compress.finetune import (
    _forward,
    _snapshot,
    cluster,
    export,
    fit,
    load_onnx_weights,
    prune,
)
from astrot2.features import prepare
from astrot2.gp import STATUS_SKIPPED, fit_gp
from astrot2.lightcurves import LightCurveBatch
from astrot2.manifest import read_manifest, write_manifest
from astrot2.model import T2, PatchT2, T2Config
from astrot2.realsky import (
    CUTS,
    RealSkyConfig,
    class_weights,
    evaluation_cut,
    labels_of,
    split_objects,
    training_views,
)
from astrot2.runtime import resolve_model
from astrot2.utils import sha256_file

__all__ = ["FinetuneConfig", "train_real"]


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of :func:`train_real` (written to the model folder's ``train_config.json``).

    Parameters
    ----------
    init : str
        The pre-trained model (a shipped name or a folder) whose network is fine-tuned.
    real : RealSkyConfig
    steps, lr, batch_size : int, float, int
        Fine-tuning: Adam steps (cosine schedule), learning rate, views per step.
    eval_every : int
        Steps between two validation losses (the best weights are kept).
    sparsity, clusters : float, int
        Compression: fraction of zero weights, distinct values per weight matrix.
    prune_steps, cluster_steps : int
        Fine-tuning steps of pruning and of centroid fine-tuning.
    seed : int
        Weights, batch order and compression.
    """

    init: str = "ztf"
    real: RealSkyConfig = field(default_factory=RealSkyConfig)
    steps: int = 6000
    lr: float = 2e-3
    batch_size: int = 256
    eval_every: int = 250
    sparsity: float = 0.35
    clusters: int = 24
    prune_steps: int = 1500
    cluster_steps: int = 600
    seed: int = 0


def _network(folder: Path) -> tuple[torch.nn.Module, dict]:
    """The torch network of a model folder (T2 or PatchT2) with its weights."""
    manifest = read_manifest(folder)
    section = dict(manifest.raw["model"])
    cfg = T2Config(**{k: v for k, v in section.items() if k in T2Config.__dataclass_fields__})
    if section.get("architecture") == "PatchT2":
        model = PatchT2(cfg, int(section["patch"]))
        steps, channels = int(section["input_steps"]), int(section["input_channels"])
    else:
        model, steps, channels = T2(cfg), cfg.n_steps, cfg.n_channels
    file = manifest.model_file
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "init.onnx"
        onnx_path.write_bytes(read_compact(file) if file.suffix == ".t2c"
                              else file.read_bytes())
        load_onnx_weights(model, str(onnx_path), steps, channels, cfg.n_extra)
    return model, {**section, "input_steps": steps, "input_channels": channels}


def _inputs(views: list[LightCurveBatch], labels: np.ndarray, manifest
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs, extra inputs and labels of the usable light curves of ``views``."""
    xs, es, ys = [], [], []
    for view in views:
        x, extra, _, gp = prepare(view, manifest.gp, manifest.features)
        ok = view.ok & (gp.status != STATUS_SKIPPED)
        xs.append(x[ok])
        es.append(extra[ok])
        ys.append(labels[ok])
    return np.concatenate(xs), np.concatenate(es), np.concatenate(ys)


def train_real(labelled: LightCurveBatch, config: FinetuneConfig, out: str | Path, *,
               data_name: str, log=print) -> dict:
    """Fine-tune ``config.init`` on ``labelled`` and write a compressed model folder.

    Parameters
    ----------
    labelled : LightCurveBatch
        Real labelled ZTF light curves (:func:`astrot2.io.labelled.read_labelled`).
    config : FinetuneConfig
    out : str or Path
        The model folder to write (``manifest.json``, ``model.t2c``, ``split.json``,
        ``train_config.json``).
    data_name : str
        What the data is, for the manifest (e.g. ``bts``).

    Returns
    -------
    dict
        Validation figures of the written model.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    init = resolve_model(config.init)
    manifest = read_manifest(init)
    torch.manual_seed(config.seed)
    model, section = _network(init)
    y = labels_of(labelled)
    parts = split_objects(y, config.real)
    (out / "split.json").write_text(json.dumps(
        {k: labelled.object_id[v].tolist() for k, v in parts.items()}))
    train_b = labelled.take(parts["train"])
    gp = fit_gp(train_b, manifest.gp)
    views = training_views(train_b, config.real, gp.amplitude, gp.length_scale,
                           manifest.gp.wavelength_scale)
    x_tr, e_tr, y_tr = _inputs(views, y[parts["train"]], manifest)
    val_b = labelled.take(parts["validation"])
    x_va, e_va, y_va = _inputs([evaluation_cut(val_b, c) for c in CUTS],
                               y[parts["validation"]], manifest)
    weights = class_weights(y_tr, config.real.weight_floor)
    data = TrainingInputs(x_tr, e_tr, y_tr, x_va, e_va, y_va, class_weight=weights)
    log(f"{len(y_tr)} training views, {len(y_va)} validation views "
        f"({time.perf_counter() - start:.0f} s)")
    result = fit(_forward(model), list(model.parameters()), data, steps=config.steps,
                 lr=config.lr, batch_size=config.batch_size, seed=config.seed,
                 eval_every=config.eval_every, state=_snapshot(model),
                 restore=lambda s: model.load_state_dict(s), log=log)
    prune(model, data, sparsity=config.sparsity, steps=config.prune_steps,
          seed=config.seed, batch_size=config.batch_size, log=log)
    cluster(model, data, k=config.clusters, steps=config.cluster_steps, seed=config.seed,
            batch_size=config.batch_size, log=log)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export(model, str(onnx_path), section["input_steps"], section["input_channels"],
               section["n_extra"])
        artefact = write_compact(onnx_path, out / "model.t2c")
    counts = np.bincount(y_tr, minlength=len(CLASSES)).astype(np.float64)
    mix = counts * weights
    class_prior = {c.name: float(v) for c, v in zip(CLASSES, mix / mix.sum(), strict=True)}
    doc = json.loads(json.dumps(asdict(config), default=list))
    (out / "train_config.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_manifest(
        out, name=manifest.name, version="0.2.0", survey=manifest.survey, gp=manifest.gp,
        features=manifest.features, model={k: v for k, v in manifest.raw["model"].items()},
        model_file="model.t2c",
        training={"data": f"real labelled ZTF light curves ({data_name}), fine-tuning the "
                          f"network of {manifest.name}@{manifest.version}",
                  "pretrained": {"name": f"{manifest.name}@{manifest.version}",
                                 "sha256": sha256_file(manifest.model_file)},
                  "seed": config.seed, "split": "split.json", "config": "train_config.json",
                  "class_prior": class_prior,
                  "class_weight": {c.name: float(w) for c, w in
                                   zip(CLASSES, weights, strict=True)},
                  "views": len(y_tr),
                  "seconds": round(time.perf_counter() - start, 1)},
        metrics={"validation_loss_before_compression": result.val_loss})
    doc = json.loads((out / "manifest.json").read_text())
    doc["onnx"]["kind"] = "compact"
    doc["compression"] = {"method": "pruned + clustered + compact artefact",
                          "sparsity": config.sparsity, "clusters": config.clusters,
                          "bytes": artefact.get("bytes")}
    (out / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")
    log(f"wrote {out} ({(out / 'model.t2c').stat().st_size} bytes, "
        f"{time.perf_counter() - start:.0f} s)")
    return {"validation_loss": result.val_loss, "views": len(y_tr)}
