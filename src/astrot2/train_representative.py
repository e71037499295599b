"""Fine-tune the ``lsst`` network toward the population Rubin sends (``astrot2 train
--model lsst --representative``).

The shipped ``lsst`` network learned the PLAsTiCC training set: bright, nearby objects.
This run keeps its architecture, GP and input settings and its PLAsTiCC split
(``split.json``), and fine-tunes it on

1. the train objects as they are and their alert-like augmented copies (the pre-training
   run's own views, :func:`astrot2.augment.training_copies`), so nothing it knew is lost;
2. their representative copies (:func:`astrot2.representative.representative_training`:
   moved to a test-like redshift and depth, cut at alert times, half without host
   photo-z),

with the flat class weighting of the PLAsTiCC metric, keeping the weights of the best
loss on the **representative validation** views (the validation objects moved the same
way, whole and at alert windows, with and without host photo-z; the test objects are
never looked at), then prunes, clusters and writes the compact ``.t2c`` artefact
(:mod:`astrot2.train_real`'s compression steps), and fits the temperature on the same
validation views.

Needs PyTorch (the ``train`` extra).  Deterministic given the seeds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from astrot2.augment import training_copies
from astrot2.classes import CLASSES, class_index
from astrot2.compress.features import TrainingInputs
from astrot2.errors import ConfigError
from astrot2.lightcurves import LightCurveBatch
from astrot2.manifest import write_manifest
from astrot2.recipe import split_indices, training_settings
from astrot2.representative import (
    REPRESENTATIVE_FILE,
    RepresentativeConfig,
    representative_training,
    representative_views,
    simulated_cuts,
)
from astrot2.train_real import (
    TuneConfig,
    calibrate_temperature,
    mark_compressed,
    pretrained,
    statistics_extra,
    tune_and_compress,
    view_inputs,
    widened,
    with_statistics,
    write_network,
)
from astrot2.utils import sha256_file

__all__ = ["REPRESENTATIVE_FILE", "RepresentativeTrainConfig", "train_representative"]


@dataclass(frozen=True)
class RepresentativeTrainConfig(TuneConfig):
    """Settings of :func:`train_representative`: :class:`astrot2.train_real.TuneConfig`
    (``init``'s ``split.json`` and ``train_config.json`` are kept), with the ``lsst``
    defaults, and the representative copies.

    Parameters
    ----------
    representative : RepresentativeConfig
        The representative copies (training and validation).
    plain_no_photoz : float
        Share of the pre-training views' augmented copies shown without host photo-z
        (:func:`astrot2.augment.training_copies`' ``redshift_dropout``), so that what the
        network reads from the photo-z on plain objects it also learns without it.
    """

    name: str = "lsst"
    version: str = "0.4.0"
    init: str = "lsst-plasticc"
    steps: int = 3000
    lr: float = 1e-3
    # 0.35 (as ztf) gave 12,191 B with the statistics head; 0.4's GP-shape inputs at 0.40
    # 12,152 B (over the default's 12,000 B)
    sparsity: float = 0.44
    # 8 representative copies per train object (0.2: 4): validation NLL 1.429 -> 1.376
    representative: RepresentativeConfig = field(
        default_factory=lambda: RepresentativeConfig(n_train=8))
    # 0.4: the GP-shape statistics, and plain copies without photo-z so that the network
    # does not lean on the luminosity columns (without: plain no-photo-z whole 0.651 -> 0.725)
    gp_statistics: bool = True
    plain_no_photoz: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.plain_no_photoz <= 1.0:
            raise ConfigError(f"plain_no_photoz must be in [0, 1], got {self.plain_no_photoz}")


#: The representative validation views, in the order their inputs are stacked.
VALIDATION_VIEWS = ("whole", "alert_windows", "whole_no_photoz", "alert_windows_no_photoz")


def _views(plasticc: LightCurveBatch, init: Path, manifest, config: RepresentativeTrainConfig,
           simulated: LightCurveBatch | None) -> dict[str, np.ndarray]:
    """Training inputs (the pre-training views, the representative training views of the
    train objects and the simulated light curves' alert cuts) and representative
    validation inputs of ``init``'s split: ``x, extra, stats, y`` of each
    (:func:`astrot2.train_real.view_inputs`), keys ``x_train`` ... ``y_val``."""
    settings = training_settings(init)
    rep = config.representative
    train = plasticc.take(split_indices(plasticc, init, "train"))
    y_train = class_index(train.extra["target"])
    views = training_copies(train, settings.augment, settings.seed, settings.n_augment,
                            redshift_dropout=config.plain_no_photoz)
    views += representative_training(train, manifest.gp, settings.augment, rep)
    labels = [y_train] * len(views)
    if simulated is not None:
        sim_views = simulated_cuts(simulated, settings.augment, rep, config.n_sim_cuts)
        views += sim_views
        labels += [class_index(simulated.extra["target"])] * len(sim_views)
    train_arrays = view_inputs(views, labels, manifest, config.gp_statistics)
    val = plasticc.take(split_indices(plasticc, init, "validation"))
    val_views = representative_views(val, manifest.gp, settings.augment, rep, "validation")
    val_arrays = view_inputs([val_views[k][0] for k in VALIDATION_VIEWS],
                             [val_views[k][1] for k in VALIDATION_VIEWS], manifest,
                             config.gp_statistics)
    return {f"{name}_{part}": a for part, arrays in (("train", train_arrays),
                                                     ("val", val_arrays))
            for name, a in zip(("x", "extra", "stats", "y"), arrays, strict=True)}


def _cached(folder: str | Path | None, key: list, build) -> dict[str, np.ndarray]:
    """``build()`` (named arrays), stored in / read from ``folder`` under a hash of
    ``key``."""
    if folder is None:
        return build()
    digest = hashlib.sha256(json.dumps(key, default=repr).encode()).hexdigest()[:16]
    path = Path(folder) / f"representative-{digest}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    arrays = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def train_representative(plasticc: LightCurveBatch, config: RepresentativeTrainConfig,
                         out: str | Path, *, simulated: LightCurveBatch | None = None,
                         simulated_record: dict | None = None, command: str = "",
                         device: str = "cpu", cache: str | Path | None = None, log=print) -> dict:
    """Fine-tune ``config.init`` on its representative views and write a model folder.

    Parameters
    ----------
    plasticc : LightCurveBatch
        The labelled PLAsTiCC training set (:func:`astrot2.io.plasticc.read_plasticc`).
    config : RepresentativeTrainConfig
    out : str or Path
        The model folder to write: ``manifest.json``, ``model.t2c``, ``split.json`` and
        ``train_config.json`` (the pre-trained model's), ``representative_config.json``.
    simulated : LightCurveBatch, optional
        Simulated labelled LSST light curves (``astrot2 simulate --survey lsst``), cut
        ``n_sim_cuts`` times each and added to the training views (never validation).
    simulated_record : dict, optional
        What the manifest says of the simulated file (e.g. its sha256).
    command : str
        The command line that re-creates the run, for the manifest.
    device : str
        ``cpu`` or ``cuda`` for the fine-tuning (compression runs on the CPU).
    cache : str or Path, optional
        Folder for an ``.npz`` of the training and validation inputs, keyed by the
        settings, the pre-trained network and the data (building them is most of a run).

    Returns
    -------
    dict
        The best validation loss and the number of training views.
    """
    start = time.perf_counter()
    out, init, manifest, model, section = pretrained(config, out)
    for name in ("split.json", "train_config.json"):
        shutil.copyfile(init / name, out / name)
    sim_key = None if simulated is None else (simulated.n_objects, float(simulated.flux.sum()))
    arrays = _cached(cache, [config.representative, manifest.raw["onnx"]["sha256"],
                             plasticc.n_objects, len(plasticc.time), config.n_sim_cuts,
                             sim_key, "stats"] + (["gp_statistics"] if config.gp_statistics
                                                  else []) + (
                                [config.plain_no_photoz] if config.plain_no_photoz else []),
                     lambda: _views(plasticc, init, manifest, config, simulated))
    features, extra = manifest.features, {p: arrays[f"extra_{p}"] for p in ("train", "val")}
    if config.statistics:  # the light-curve statistics as extra inputs, a new head
        features = with_statistics(features, arrays["stats_train"], config.gp_statistics)
        model, section = widened(model, section, features.n_extra, config.head_hidden)
        extra = {p: statistics_extra(extra[p], arrays[f"stats_{p}"], features)
                 for p in extra}
    data = TrainingInputs(arrays["x_train"], extra["train"], arrays["y_train"],
                          arrays["x_val"], extra["val"], arrays["y_val"])
    log(f"{len(data.y_train)} training views, {len(data.y_val)} representative validation "
        f"views ({time.perf_counter() - start:.0f} s)")
    result = tune_and_compress(model, data, config, device, log)
    artefact = write_network(model, section, out)
    (out / REPRESENTATIVE_FILE).write_text(
        json.dumps(asdict(config), indent=2, default=list) + "\n")
    write_manifest(
        out, name=config.name, version=config.version, survey=manifest.survey,
        gp=manifest.gp, features=features,
        model=section if config.statistics else dict(manifest.raw["model"]),
        model_file="model.t2c",
        training={"data": "PLAsTiCC training set and its representative copies (moved to "
                          "a test-like redshift and depth)" + (
                              "" if simulated is None else ", simulated LSST supernovae") +
                          ", fine-tuning the network of "
                          f"{manifest.name}@{manifest.version}",
                  "data_sha256": manifest.raw["training"].get("data_sha256"),
                  "pretrained": {"name": f"{manifest.name}@{manifest.version}",
                                 "sha256": sha256_file(manifest.model_file)},
                  "seed": config.seed, "split": "split.json",
                  "config": "train_config.json", "representative": REPRESENTATIVE_FILE,
                  "command": command, "views": len(data.y_train),
                  **({} if simulated is None else {"simulated": {
                      "light_curves": simulated.n_objects, "cuts": config.n_sim_cuts,
                      **(simulated_record or {})}}),
                  "seconds": round(time.perf_counter() - start, 1)},
        metrics={"representative_validation_loss_before_compression": result.val_loss})
    mark_compressed(out, config, artefact)
    temperature = calibrate_temperature(
        out, data, {"split": "validation", "views": [f"representative/{k}" for k in
                                                      VALIDATION_VIEWS]}, log)
    log(f"wrote {out} ({(out / 'model.t2c').stat().st_size} bytes, T = {temperature:.3f}, "
        f"{time.perf_counter() - start:.0f} s)")
    return {"validation_loss": result.val_loss, "views": len(data.y_train),
            "classes": [c.name for c in CLASSES]}
