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

import copy
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from astrot2.classes import CLASSES
from astrot2.compress.artefact import read_compact, write_compact
from astrot2.compress.features import TrainingInputs
from astrot2.compress.finetune import (
    FitResult,
    _forward,
    _snapshot,
    cluster,
    fit,
    load_onnx_weights,
    prune,
)
from astrot2.errors import ConfigError
from astrot2.features import (
    FeatureConfig,
    light_curve_statistics,
    prepare,
    standardised_statistics,
)
from astrot2.gp import fit_gp
from astrot2.lightcurves import LightCurveBatch
from astrot2.manifest import Manifest, read_manifest, write_manifest
from astrot2.metrics import ensemble_logits
from astrot2.model import T2, PatchT2, T2Config, export_onnx
from astrot2.realsky import (
    CUTS,
    RealSkyConfig,
    class_weights,
    evaluation_cut,
    labels_of,
    random_cuts,
    split_objects,
    trainable,
    training_views,
)
from astrot2.runtime import resolve_model
from astrot2.utils import sha256_file

__all__ = [
    "FINETUNE_FILE",
    "FinetuneConfig",
    "TuneConfig",
    "calibrate_temperature",
    "companion_views",
    "ensemble_teacher",
    "mark_compressed",
    "network_of",
    "pretrained",
    "read_finetune_config",
    "statistics_extra",
    "train_real",
    "tune_and_compress",
    "view_inputs",
    "widened",
    "with_statistics",
    "write_network",
]

#: This run's settings inside the model folder.
FINETUNE_FILE = "finetune_config.json"


@dataclass(frozen=True)
class TuneConfig:
    """What fine-tuning and compressing a pre-trained network takes
    (:func:`tune_and_compress`); the settings both fine-tuning runs share.

    Parameters
    ----------
    name, version : str
        The written model's name and version (its manifest; the ``model`` column).
    init : str
        The pre-trained model (a shipped name or a folder) whose network is fine-tuned.
    statistics : bool
        Give the network the light-curve statistics as extra inputs
        (:func:`astrot2.features.light_curve_statistics`, standardised on the training
        views); its head is then new, the rest starts from ``init``.
    n_sim_cuts : int
        Alert-time cuts of every simulated light curve (with simulated light curves).
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
    members : int
        Fine-tuning runs that teach the compressed network: with more than 1, that many
        runs (seeds ``seed + 1`` ... ``seed + members``) are fine-tuned first, and the
        network is then fine-tuned, pruned and clustered on their mean probabilities
        (knowledge distillation, :func:`ensemble_teacher`) as well as on the labels.
    distill_alpha : float
        Weight of the ensemble's soft targets in the loss (the labels' is ``1 - alpha``).
    head_hidden : int
        With ``statistics``: hidden units of the new head (0: a linear head, as the
        pre-trained network's), so the statistics can act together, not only added up.
    """

    name: str = "ztf"
    version: str = "0.2.0"
    init: str = "ztf-plasticc"
    statistics: bool = True
    n_sim_cuts: int = 2
    steps: int = 6000
    lr: float = 2e-3
    batch_size: int = 256
    eval_every: int = 250
    sparsity: float = 0.35
    clusters: int = 24
    prune_steps: int = 1500
    cluster_steps: int = 600
    seed: int = 0
    members: int = 1
    distill_alpha: float = 0.7
    head_hidden: int = 0
    gp_statistics: bool = False  # with statistics: also features.gp_summary_features

    def __post_init__(self) -> None:
        counts = {"steps": self.steps, "batch_size": self.batch_size,
                  "eval_every": self.eval_every, "members": self.members,
                  "n_sim_cuts": self.n_sim_cuts}
        for key, value in counts.items():
            if value < 1:
                raise ConfigError(f"{key} must be >= 1, got {value}")
        for key, value in {"prune_steps": self.prune_steps, "cluster_steps": self.cluster_steps,
                           "head_hidden": self.head_hidden}.items():
            if value < 0:
                raise ConfigError(f"{key} must be >= 0, got {value}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.sparsity < 1.0:
            raise ConfigError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.clusters < 2:
            raise ConfigError(f"clusters must be >= 2, got {self.clusters}")
        if not 0.0 <= self.distill_alpha <= 1.0:
            raise ConfigError(f"distill_alpha must be in [0, 1], got {self.distill_alpha}")


@dataclass(frozen=True)
class FinetuneConfig(TuneConfig):
    """Settings of :func:`train_real` (:class:`TuneConfig`, and the real-sky recipe).

    Parameters
    ----------
    real : RealSkyConfig
    plasticc_classes : tuple of str
        With a PLAsTiCC batch: the classes whose PLAsTiCC train objects (the pre-trained
        model's split) are re-observed as ZTF alerts (:func:`astrot2.augment.
        survey_copies`, the pre-training's settings) and added to the training views: the
        variable stars, AGN and microlensing the real supernova sets lack, so the network
        still recognises them in the alert stream.
    n_plasticc_copies : int
        Re-observed copies of each of those objects.
    """

    plasticc_classes: tuple[str, ...] = ("AGN", "EB", "RRL", "Mira", "M-dwarf",
                                         "mu-Lens-Single")
    n_plasticc_copies: int = 4
    real: RealSkyConfig = field(default_factory=RealSkyConfig)


def network_of(folder: Path) -> tuple[torch.nn.Module, dict]:
    """The torch network of a model folder (T2 or PatchT2) with its weights."""
    manifest = read_manifest(folder)
    section = dict(manifest.raw["model"])
    cfg = T2Config(**{k: v for k, v in section.items() if k in T2Config.__dataclass_fields__})
    if section.get("architecture") == "PatchT2":
        model = PatchT2(cfg, int(section["patch"]))
        steps, channels = int(section["input_steps"]), int(section["input_channels"])
    else:
        model, steps, channels = T2(cfg), cfg.n_tokens, cfg.n_channels
    file = manifest.model_file
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "init.onnx"
        onnx_path.write_bytes(read_compact(file) if file.suffix == ".t2c"
                              else file.read_bytes())
        load_onnx_weights(model, str(onnx_path))
    return model, {**section, "input_steps": steps, "input_channels": channels}


def pretrained(config: TuneConfig, out: str | Path
               ) -> tuple[Path, Path, Manifest, torch.nn.Module, dict]:
    """The start of a fine-tuning run: the model folder ``out`` created, ``config.init``
    resolved, its manifest and its network (torch seeded with ``config.seed`` first)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    init = resolve_model(config.init)
    manifest = read_manifest(init)
    torch.manual_seed(config.seed)
    model, section = network_of(init)
    return out, init, manifest, model, section


def view_inputs(views: list[LightCurveBatch], labels: np.ndarray | list[np.ndarray], manifest,
                gp_statistics: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs, extra inputs, light-curve statistics and labels of the usable light
    curves (converged GP fits) of ``views`` (``labels``: one per light curve, the same for
    every view, or one such array per view)."""
    if isinstance(labels, np.ndarray):
        labels = [labels] * len(views)
    xs, es, ss, ys = [], [], [], []
    for view, y in zip(views, labels, strict=True):
        x, extra, selected, gp = prepare(view, manifest.gp, manifest.features)
        ok = view.ok & gp.converged
        stats = light_curve_statistics(selected, gp, manifest.features.bands,
                                       replace(manifest.features, gp_statistics=gp_statistics))
        xs.append(x[ok])
        es.append(extra[ok])
        ss.append(stats[ok])
        ys.append(y[ok])
    return tuple(np.concatenate(a) for a in (xs, es, ss, ys))  # type: ignore[return-value]


def _plasticc_copies(plasticc: LightCurveBatch, init: Path, manifest, config: FinetuneConfig
                     ) -> tuple[list[LightCurveBatch], np.ndarray]:
    """The PLAsTiCC train objects of ``config.plasticc_classes`` re-observed as ZTF alerts
    with the pre-training run's settings (:func:`astrot2.augment.survey_copies`), and
    their class indices (the same for every copy)."""
    from astrot2.augment import ResampleConfig, resample_seeds, survey_copies
    from astrot2.classes import class_index
    from astrot2.recipe import split_indices, training_settings

    settings = training_settings(init)
    part = plasticc.take(split_indices(plasticc, init, "train"))
    wanted = [c.code for c in CLASSES if c.name in config.plasticc_classes]
    part = part.take(np.flatnonzero(np.isin(part.extra["target"], wanted)))
    copies = survey_copies(part, manifest.gp, manifest.survey, manifest.features.bands,
                           settings.resample or ResampleConfig(),
                           resample_seeds(config.seed + 7, config.n_plasticc_copies))
    return copies, class_index(part.extra["target"])


def _plasticc_views(plasticc: LightCurveBatch, init: Path, manifest,
                    config: FinetuneConfig) -> tuple[np.ndarray, ...]:
    """Inputs (:func:`view_inputs`) of :func:`_plasticc_copies`."""
    copies, labels = _plasticc_copies(plasticc, init, manifest, config)
    return view_inputs(copies, labels, manifest)


def read_finetune_config(folder: str | Path) -> FinetuneConfig:
    """The :class:`FinetuneConfig` of a fine-tuned model folder (its :data:`FINETUNE_FILE`;
    settings absent from an older file keep their defaults, except ``fainter.bandwidth``:
    False, the behaviour such a file was recorded with)."""
    from astrot2.augment import FainterConfig, recorded_move
    from astrot2.recipe import json_tuples

    doc = json.loads((Path(folder) / FINETUNE_FILE).read_text())
    real = dict(doc.pop("real"))
    fainter = recorded_move(FainterConfig, json_tuples(real.pop("fainter")))
    return FinetuneConfig(**json_tuples(doc),
                          real=RealSkyConfig(**json_tuples(real), fainter=fainter))


LabelledViews = list[tuple[LightCurveBatch, np.ndarray]]


def companion_views(folder: Path, labelled: LightCurveBatch, *,
                    simulated: LightCurveBatch | None = None,
                    plasticc: LightCurveBatch | None = None
                    ) -> tuple[LabelledViews, dict[str, tuple[LightCurveBatch, np.ndarray]]]:
    """The training and validation views of a fine-tuned folder, rebuilt for its feature
    companion (:func:`astrot2.companion_fit.fit_companion`) as :func:`train_real` built
    them: the ``real_train`` objects of the trainable classes (cuts and fainter copies),
    the simulated cuts, the re-observed PLAsTiCC objects; the ``real_validation`` objects
    cut at every :data:`astrot2.realsky.CUTS` time.

    Returns
    -------
    train : list of (LightCurveBatch, ndarray)
        Views and their class indices.
    validation : dict of str to (LightCurveBatch, ndarray)
        One view per cut, with class indices.
    """
    from astrot2.recipe import split_indices

    config = read_finetune_config(folder)
    manifest = read_manifest(folder)
    y = labels_of(labelled)
    train_idx = split_indices(labelled, folder, "real_train")
    train_idx = train_idx[trainable(y[train_idx], config.real.min_objects)]
    train_b = labelled.take(train_idx)
    gp = fit_gp(train_b, manifest.gp)
    train = [(v, y[train_idx]) for v in training_views(
        train_b, config.real, gp.amplitude, gp.length_scale, manifest.gp.wavelength_scale)]
    if simulated is not None:
        train += [(v, labels_of(simulated)) for v in random_cuts(
            simulated, config.real, config.n_sim_cuts, np.random.default_rng(config.seed + 2))]
    if plasticc is not None and config.plasticc_classes:
        copies, labels = _plasticc_copies(plasticc, resolve_model(config.init), manifest,
                                          config)
        train += [(v, labels) for v in copies]
    val_idx = split_indices(labelled, folder, "real_validation")
    val_b = labelled.take(val_idx)
    return train, {cut: (evaluation_cut(val_b, cut), y[val_idx]) for cut in CUTS}


def with_statistics(features: FeatureConfig, stats: np.ndarray, gp_statistics: bool = False
                    ) -> FeatureConfig:
    """``features`` with the statistics' centre and scale fitted on ``stats`` (with
    ``gp_statistics``, :func:`astrot2.features.gp_summary_features` among them)."""
    center = np.nanmedian(stats, axis=0)
    scale = np.nanstd(stats, axis=0)
    center = np.where(np.isfinite(center), center, 0.0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return replace(features, statistics_center=tuple(float(v) for v in center),
                   statistics_scale=tuple(float(v) for v in scale),
                   gp_statistics=gp_statistics)


def statistics_extra(extra: np.ndarray, stats: np.ndarray, features: FeatureConfig) -> np.ndarray:
    """The extra inputs of ``features`` from the base extra inputs and the statistics."""
    if not features.use_statistics:
        return extra
    return np.column_stack([extra, standardised_statistics(stats, features)]).astype(
        np.float32)


def widened(model: torch.nn.Module, section: dict, n_extra: int, head_hidden: int = 0
             ) -> tuple[torch.nn.Module, dict]:
    """A copy of ``model`` taking ``n_extra`` extra inputs (and a head of ``head_hidden``
    hidden units): every weight kept but the head's, which is new (its input grows)."""
    cfg = T2Config(**{k: v for k, v in section.items() if k in T2Config.__dataclass_fields__})
    cfg = replace(cfg, n_extra=n_extra, head_hidden=head_hidden)
    wide = PatchT2(cfg, int(section["patch"])) if isinstance(model, PatchT2) else T2(cfg)
    own = wide.state_dict()
    own.update({k: v for k, v in model.state_dict().items()
                if k in own and own[k].shape == v.shape})
    wide.load_state_dict(own)
    return wide, {**section, "n_extra": n_extra,
                  **({"head_hidden": head_hidden} if head_hidden else {})}


def calibrate_temperature(folder: Path, data: TrainingInputs, fitted_on: dict, log) -> float:
    """Fit the temperature of the written model on the validation views (the runtime's
    own logits) and store it in the manifest's ``calibration`` section.

    The validation objects have their own class mix, the model's probabilities the
    training mix (``training.class_prior``, flat when absent): each view is weighted by
    ``prior(c) / n(c)`` so the temperature fixes the confidence, not the class mix (which
    ``--prior`` sets).  ``fitted_on`` says which views (for the manifest).
    """
    from scipy.optimize import minimize_scalar

    from astrot2.manifest import rewrite_manifest
    from astrot2.metrics import softmax
    from astrot2.priors import training_prior
    from astrot2.runtime import Classifier

    clf = Classifier.load(folder, prior="model")
    feeds = {"x": data.x_val, **({"extra": data.extra_val} if clf.manifest.n_extra else {})}
    logits = clf.logits(feeds)
    y = data.y_val
    prior = training_prior(clf.manifest.raw)
    prior = np.ones(len(CLASSES)) / len(CLASSES) if prior is None else prior
    counts = np.bincount(y, minlength=len(CLASSES)).astype(np.float64)
    weight = np.where(counts > 0, prior / np.maximum(counts, 1), 0.0)[y]
    weight /= weight.sum()

    def nll(log_t: float) -> float:
        p = softmax(logits, float(np.exp(log_t)))[np.arange(len(y)), y]
        return float(-(weight * np.log(np.clip(p, 1e-15, 1.0))).sum())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                          options={"xatol": 1e-6})
    temperature = float(np.exp(res.x))

    def update(doc: dict) -> None:
        doc["calibration"] = {
            "method": "temperature_scaling", "temperature": temperature,
            "fitted_on": {**fitted_on,
                          "objective": "negative log-likelihood, views weighted to the "
                                       "training class mix"},
            "validation_nll": {"before": nll(0.0), "after": float(res.fun)}}

    rewrite_manifest(folder, update)
    log(f"temperature {temperature:.3f} (weighted validation NLL {nll(0.0):.3f} -> "
        f"{res.fun:.3f})")
    return temperature


def ensemble_teacher(model: torch.nn.Module, data: TrainingInputs, config: TuneConfig,
                     device: str, log) -> np.ndarray:
    """Fine-tune ``config.members`` copies of ``model`` (seeds ``config.seed + 1`` ...,
    best validation weights each) and return the log of their mean probabilities on the
    training views (:func:`astrot2.metrics.ensemble_logits`): the teacher's logits of
    :func:`tune_and_compress`."""
    logits = []
    for k in range(config.members):
        member = copy.deepcopy(model)
        seed = config.seed + 1 + k
        torch.manual_seed(seed)
        result = _fine_tune(member, data, config, device, seed, log=lambda *_: None)
        logits.append(_train_logits(member, data, device))
        log(f"ensemble member {k + 1}/{config.members} (seed {seed}): best validation "
            f"flat log-loss {result.val_loss:.4f} ({result.seconds:.0f} s)")
    return ensemble_logits(logits)


def _fine_tune(model: torch.nn.Module, data: TrainingInputs, config: TuneConfig, device: str,
               seed: int, log, teacher: np.ndarray | None = None) -> FitResult:
    """Adam on ``data`` with ``config``'s steps (best validation weights kept), on
    ``device``; distilled from ``teacher`` logits if given."""
    model.to(device)
    return fit(_forward(model), list(model.parameters()), data, steps=config.steps,
               lr=config.lr, batch_size=config.batch_size, seed=seed, teacher=teacher,
               alpha=config.distill_alpha, eval_every=config.eval_every,
               state=_snapshot(model), restore=model.load_state_dict, device=device, log=log)


def _train_logits(model: torch.nn.Module, data: TrainingInputs, device: str,
                  batch: int = 8192) -> np.ndarray:
    """``model``'s logits on the training views (eval mode)."""
    forward = _forward(model, train=False)
    with torch.no_grad():
        return np.concatenate([forward(
            torch.from_numpy(data.x_train[i:i + batch]).to(device),
            torch.from_numpy(data.extra_train[i:i + batch]).to(device)).cpu().numpy()
            for i in range(0, len(data.y_train), batch)])


def tune_and_compress(model: torch.nn.Module, data: TrainingInputs, config: TuneConfig,
                      device: str, log) -> FitResult:
    """Fine-tune ``model`` on ``data`` (best validation weights kept), then prune and
    cluster it on the CPU; with ``config.members > 1`` every step also learns the
    ensemble's soft targets (:func:`ensemble_teacher`)."""
    teacher = ensemble_teacher(model, data, config, device, log) \
        if config.members > 1 else None
    alpha = config.distill_alpha  # without a teacher, the labels alone
    result = _fine_tune(model, data, config, device, config.seed, log, teacher)
    model.to("cpu")
    prune(model, data, sparsity=config.sparsity, steps=config.prune_steps,
          seed=config.seed, batch_size=config.batch_size, teacher=teacher, alpha=alpha,
          log=log)
    cluster(model, data, k=config.clusters, steps=config.cluster_steps, seed=config.seed,
            batch_size=config.batch_size, teacher=teacher, alpha=alpha, log=log)
    model.eval()
    return result


def write_network(model: torch.nn.Module, section: dict, out: Path) -> dict:
    """Export ``model`` and write it as the compact ``out/model.t2c``; its description."""
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(model, str(onnx_path))
        return write_compact(onnx_path, out / "model.t2c")


def mark_compressed(out: Path, config: TuneConfig, artefact: dict) -> None:
    """Record in ``out``'s manifest that its network is the compact, pruned and clustered
    artefact."""
    doc = json.loads((out / "manifest.json").read_text())
    doc["onnx"]["kind"] = "compact"
    doc["compression"] = {"method": "pruned + clustered + compact artefact",
                          "sparsity": config.sparsity, "clusters": config.clusters,
                          "bytes": artefact.get("bytes")}
    (out / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")


def train_real(labelled: LightCurveBatch, config: FinetuneConfig, out: str | Path, *,
               data_name: str, simulated: LightCurveBatch | None = None,
               plasticc: LightCurveBatch | None = None,
               simulated_record: dict | None = None,
               command: str = "", device: str = "cpu", log=print) -> dict:
    """Fine-tune ``config.init`` on ``labelled`` and write a compressed model folder.

    Parameters
    ----------
    labelled : LightCurveBatch
        Real labelled ZTF light curves (:func:`astrot2.io.labelled.read_labelled`).
    config : FinetuneConfig
    out : str or Path
        The model folder to write: ``manifest.json``, ``model.t2c``, ``split.json`` (the
        pre-trained model's PLAsTiCC split and ``real_train`` / ``real_validation`` /
        ``real_test``), ``train_config.json`` (the pre-training recipe, as the pre-trained
        model's) and ``finetune_config.json`` (this run's).
    data_name : str
        What the data is, for the manifest (e.g. ``bts``).
    simulated : LightCurveBatch, optional
        Simulated labelled light curves (:func:`astrot2.simulate.simulate`) added to the
        training views (``n_sim_cuts`` alert cuts each); never used for validation.
    plasticc : LightCurveBatch, optional
        The PLAsTiCC training set: its train objects of ``config.plasticc_classes`` are
        added, re-observed as ZTF alerts; never used for validation.
    simulated_record : dict, optional
        What the manifest says of the simulated file besides its size (e.g. its sha256
        and the command that made it).
    command : str
        The command line that re-creates the run, for the manifest.
    device : str
        ``cpu`` or ``cuda``: where the fine-tuning runs (compression runs on the CPU).
        The shipped model is trained on the CPU; a GPU run gives a comparable model,
        not the same bits.

    Returns
    -------
    dict
        Validation figures of the written model.
    """
    start = time.perf_counter()
    out, init, manifest, model, section = pretrained(config, out)
    y = labels_of(labelled)
    parts = split_objects(y, config.real)
    # the pre-training run's PLAsTiCC split and recipe stay (astrot2 evaluate scores the
    # model on its PLAsTiCC test objects); the real objects' split beside it
    pretrain_split = json.loads((init / "split.json").read_text()) \
        if (init / "split.json").is_file() else {}
    (out / "split.json").write_text(json.dumps(
        {**{k: v for k, v in pretrain_split.items() if not k.startswith("real_")},
         **{f"real_{k}": labelled.object_id[v].tolist() for k, v in parts.items()}}))
    if (init / "train_config.json").is_file():
        shutil.copyfile(init / "train_config.json", out / "train_config.json")
    keep = trainable(y[parts["train"]], config.real.min_objects)
    left_out = sorted({CLASSES[j].name for j in y[parts["train"]][~keep]})
    train_idx = parts["train"][keep]
    train_b = labelled.take(train_idx)
    gp = fit_gp(train_b, manifest.gp)
    views = training_views(train_b, config.real, gp.amplitude, gp.length_scale,
                           manifest.gp.wavelength_scale)
    x_tr, e_tr, s_tr, y_tr = view_inputs(views, y[train_idx], manifest)
    n_real = len(y_tr)
    if simulated is not None:
        sim_views = random_cuts(simulated, config.real, config.n_sim_cuts,
                                np.random.default_rng(config.seed + 2))
        more = view_inputs(sim_views, labels_of(simulated), manifest)
        x_tr, e_tr, s_tr, y_tr = (np.concatenate([a, b]) for a, b in
                                  zip((x_tr, e_tr, s_tr, y_tr), more, strict=True))
    if plasticc is not None and config.plasticc_classes:
        more = _plasticc_views(plasticc, init, manifest, config)
        x_tr, e_tr, s_tr, y_tr = (np.concatenate([a, b]) for a, b in
                                  zip((x_tr, e_tr, s_tr, y_tr), more, strict=True))
    features = manifest.features
    if config.statistics:
        features = with_statistics(features, s_tr)
        model, section = widened(model, section, features.n_extra, config.head_hidden)
    e_tr = statistics_extra(e_tr, s_tr, features)
    val_b = labelled.take(parts["validation"])
    x_va, e_va, s_va, y_va = view_inputs([evaluation_cut(val_b, c) for c in CUTS],
                                     y[parts["validation"]], manifest)
    e_va = statistics_extra(e_va, s_va, features)
    weights = class_weights(y_tr, config.real.weight_floor)
    data = TrainingInputs(x_tr, e_tr, y_tr, x_va, e_va, y_va, class_weight=weights)
    log(f"{len(y_tr)} training views ({n_real} real; classes left out: {left_out}), "
        f"{len(y_va)} validation views "
        f"({time.perf_counter() - start:.0f} s)")
    result = tune_and_compress(model, data, config, device, log)
    artefact = write_network(model, section, out)
    counts = np.bincount(y_tr, minlength=len(CLASSES)).astype(np.float64)
    mix = counts * weights
    class_prior = {c.name: float(v) for c, v in zip(CLASSES, mix / mix.sum(), strict=True)}
    doc = json.loads(json.dumps(asdict(config), default=list))
    (out / FINETUNE_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    write_manifest(
        out, name=config.name, version=config.version, survey=manifest.survey, gp=manifest.gp,
        features=features, model=section if config.statistics else dict(manifest.raw["model"]),
        model_file="model.t2c",
        training={"data": f"real labelled ZTF light curves ({data_name}), fine-tuning the "
                          f"network of {manifest.name}@{manifest.version}",
                  "pretrained": {"name": f"{manifest.name}@{manifest.version}",
                                 "sha256": sha256_file(manifest.model_file)},
                  "seed": config.seed, "split": "split.json",
                  "config": "train_config.json", "finetune": FINETUNE_FILE,
                  "command": command,
                  "class_prior": class_prior,
                  "classes_left_out": left_out,
                  "class_weight": {c.name: float(w) for c, w in
                                   zip(CLASSES, weights, strict=True)},
                  "views": len(y_tr),
                  **({} if simulated is None else {"simulated": {
                      "light_curves": simulated.n_objects, "cuts": config.n_sim_cuts,
                      **(simulated_record or {})}}),
                  "seconds": round(time.perf_counter() - start, 1)},
        metrics={"validation_loss_before_compression": result.val_loss})
    mark_compressed(out, config, artefact)
    temperature = calibrate_temperature(
        out, data, {"split": "real_validation", "views": list(CUTS)}, log)
    log(f"wrote {out} ({(out / 'model.t2c').stat().st_size} bytes, T = {temperature:.3f}, "
        f"{time.perf_counter() - start:.0f} s)")
    return {"validation_loss": result.val_loss, "views": len(y_tr)}
