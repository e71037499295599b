"""Train and evaluate t2 on the PLAsTiCC training set (PyTorch; ``astrot2 train``).

Recipe (all settings in :class:`TrainConfig`, written to the output manifest):

1. Fixed stratified split of the 7,848 objects: 70 % train, 15 % validation, 15 % test,
   from ``seed`` (object ids saved in ``split.json``).
2. Inputs: GP fits (:mod:`astrot2.gp`) turned into model inputs by the torch-free seam
   :mod:`astrot2.features` that inference uses unchanged.  The training set is expanded
   with ``n_augment`` augmented copies per object (:mod:`astrot2.augment`), refitted by the
   GP: the fast batched GP is what makes this cheap.
3. Loss: cross-entropy weighted by 1 / (objects of the class), i.e. the flat class-weighted
   log-loss that is the benchmark metric.  Adam, gradient-norm clipping at 1,
   ReduceLROnPlateau, early stopping on the validation loss (best weights kept).
4. Evaluation on the test split, whole light curves and alert-like windows.

Optional, ``forecast_weight > 0``: the talk's decoder for early classification, as an
auxiliary objective.  A linear decoder reads the encoder's per-step features and predicts,
on the grid steps after a training view's last observation, the GP mean of the *whole*
light curve (what a truncated view has not seen yet), scaled like the view's input; its
mean squared error, times ``forecast_weight``, is added to the classification loss.  The
decoder is used in training only: the exported model is unchanged.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from astrot2.augment import (
    AugmentConfig,
    ResampleConfig,
    alert_windows,
    survey_windows,
    training_copies,
)
from astrot2.classes import CLASSES, class_index
from astrot2.features import FeatureConfig, prepare
from astrot2.gp import GPConfig, GPResult
from astrot2.lightcurves import LightCurveBatch
from astrot2.manifest import write_manifest
from astrot2.metrics import classification_report, weighted_log_loss
from astrot2.model import T2, T2Config, export_onnx
from astrot2.realsky import stratified_split
from astrot2.surveys import get_survey

__all__ = ["PRESETS", "TrainConfig", "preset", "stratified_split", "train", "train_command"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run."""

    name: str = "lsst"
    survey: str = "lsst"  # the survey whose alerts the model classifies
    version: str = "0.1.0"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    gp: GPConfig = field(default_factory=GPConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    n_augment: int = 4  # augmented copies of every training object
    resample: ResampleConfig | None = None  # re-observe as alerts of ``survey`` (ztf)
    n_resample: int = 0  # re-observed copies of every training object
    epochs: int = 150
    steps_per_epoch: int = 40  # batches drawn per epoch (an epoch is not a full pass)
    batch_size: int = 256
    lr: float = 2e-3
    patience: int = 20  # early stopping on the validation loss (in epochs)
    seed: int = 0  # split, augmentation, evaluation windows (and, by default, weights)
    init_seed: int | None = None  # weights and batch order only (None: ``seed``)
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    d_model: int = 32
    n_heads: int = 16
    n_blocks: int = 1
    dropout: float = 0.1
    forecast_weight: float = 0.0  # auxiliary forecasting objective (0: off)
    # fraction of the augmented copies' objects shown without host photo-z (0: off)
    redshift_dropout: float = 0.0


#: The two shipped models: LSST ugrizy + host photo-z, and ZTF g, r without redshift.
PRESETS = ("lsst", "ztf")


def preset(name: str, **overrides: object) -> TrainConfig:
    """The training configuration of a shipped model, with optional field overrides."""
    if name == "lsst":
        base = TrainConfig(name="lsst", features=FeatureConfig(use_std=True))
    elif name == "ztf":
        # Trained on PLAsTiCC g, r only and applied at ZTF wavelengths; ZTF alerts carry
        # at most 30 days of history.
        base = TrainConfig(
            name="ztf",
            survey="ztf",
            features=FeatureConfig(bands=("g", "r"), use_std=True, use_brightness=False,
                                   use_redshift=False),
            augment=AugmentConfig(max_history=30.0, max_days=100.0),
            n_augment=2,
            resample=ResampleConfig(),
            n_resample=6,
            n_heads=4,  # 1.6x the inference throughput of 16 heads of width 2
            epochs=60,
            patience=12,
        )
    else:
        raise ValueError(f"unknown model {name!r}; choose one of {PRESETS}")
    return replace(base, **overrides)


#: The ``astrot2 train`` options: TrainConfig field -> command-line flag.
CLI_FLAGS = {"epochs": "--epochs", "n_augment": "--n-augment", "seed": "--seed",
             "init_seed": "--init-seed", "forecast_weight": "--forecast-weight",
             "redshift_dropout": "--redshift-dropout"}


def _as_json(config: TrainConfig) -> dict:
    """``config`` as ``train_config.json`` stores it."""
    return json.loads(json.dumps(asdict(config), default=str))


def train_command(doc: dict) -> tuple[str | None, list[str]]:
    """The ``astrot2 train`` command line that re-creates a run's ``train_config.json``.

    Fields a run's file lacks, also inside its nested settings (options added after it
    was trained), count as their preset value.

    Parameters
    ----------
    doc : dict
        A parsed ``train_config.json``.

    Returns
    -------
    command : str or None
        ``astrot2 train --model NAME [--flag value ...]``, or None when the run used
        settings the command line does not set (or the preset has changed since).
    differences : list of str
        The fields that differ from what the command would train with (empty when
        ``command`` is not None).
    """
    name = doc.get("name")
    if name not in PRESETS:
        return None, ["name"]
    base = _as_json(preset(name))
    full = {**base, **{k: {**base[k], **v} if isinstance(base.get(k), dict)
                       and isinstance(v, dict) else v for k, v in doc.items()}}
    overrides = {k: full[k] for k in CLI_FLAGS if full[k] != base[k]}
    rebuilt = _as_json(preset(name, **overrides))
    differences = sorted(k for k in full if full[k] != rebuilt.get(k))
    if differences:
        return None, differences
    flags = "".join(f" {CLI_FLAGS[k]} {v}" for k, v in overrides.items())
    return f"astrot2 train --model {name}{flags}", []


def _prepared(batch: LightCurveBatch, config: TrainConfig) -> tuple:
    """Model inputs, usable-mask, band-selected batch and GP fit of ``batch``.

    Usable: a converged GP fit (a ``max_iter`` or ``fallback`` fit is left out of training,
    though classification scores it, flagged).
    """
    x, extra, selected, gp = prepare(batch, config.gp, config.features)
    return x, extra, gp.converged, selected, gp


def _inputs(batch: LightCurveBatch, config: TrainConfig) -> tuple[np.ndarray, ...]:
    """Model inputs and a usable-mask for every light curve of ``batch``."""
    return _prepared(batch, config)[:3]


def forecast_targets(view: LightCurveBatch, view_gp: GPResult, whole: LightCurveBatch,
                     whole_gp: GPResult, bands: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Targets of the forecasting objective for views of the light curves ``whole``.

    Parameters
    ----------
    view, whole : LightCurveBatch
        Band-selected views (:func:`astrot2.augment.augment` copies: same objects, same
        order, times shifted by a constant per object) and the whole light curves.
    view_gp, whole_gp : GPResult
        Their GP fits.
    bands : list of int
        The model's bands, as indices of the survey's bands.

    Returns
    -------
    target : ndarray of float32, shape (n, n_steps, n_bands)
        The whole light curve's GP mean on each view's grid (linear interpolation of its
        regular grid, the view's time shift undone), divided by the view's input scale
        (its peak |GP mean|, as :func:`astrot2.features.build_inputs`).
    mask : ndarray of bool, shape (n, n_steps)
        Grid steps after the view's last observation (what it has not seen), for views
        with a detection and a GP fit.
    """
    def first_detection(b: LightCurveBatch) -> np.ndarray:
        return b.reduce(np.where(b.detected, b.time, np.nan), np.fmin)

    shift = first_detection(view) - first_detection(whole)  # augment keeps it
    wt = whole_gp.times
    span = np.where(wt[:, -1] > wt[:, 0], wt[:, -1] - wt[:, 0], 1.0)
    pos = (view_gp.times - shift[:, None] - wt[:, :1]) / span[:, None] * (wt.shape[1] - 1)
    pos = np.clip(np.nan_to_num(pos), 0.0, wt.shape[1] - 1.0)
    i0 = np.minimum(pos.astype(np.int64), wt.shape[1] - 2)[:, :, None]
    w = pos[:, :, None] - i0
    mean = whole_gp.mean[:, :, bands]
    target = ((1.0 - w) * np.take_along_axis(mean, i0, 1)
              + w * np.take_along_axis(mean, i0 + 1, 1))
    scale = np.abs(view_gp.mean[:, :, bands]).max(axis=(1, 2))
    good = np.isfinite(shift) & np.isfinite(scale) & (scale > 0)
    last = view.reduce(view.time, np.fmax)
    mask = ((view_gp.times > last[:, None]) & good[:, None]
            & np.isfinite(target).all(axis=2))
    target = target / np.where(good, scale, 1.0)[:, None, None]
    return np.where(mask[:, :, None], target, 0.0).astype(np.float32), mask


def batch_fingerprint(batch: LightCurveBatch) -> str:
    """sha256 of a batch's ids, photometry and labels: identifies the training data."""
    import hashlib

    digest = hashlib.sha256()
    digest.update("\n".join(batch.object_id.astype(str)).encode())
    for arr in (batch.offsets, batch.time, batch.flux, batch.flux_err, batch.band,
                batch.detected, batch.extra.get("target", np.zeros(0))):
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def _survey_view(batch: LightCurveBatch, config: TrainConfig, seed: int) -> LightCurveBatch:
    """``batch`` re-observed as alerts of the model's survey (:func:`survey_windows`)."""
    return survey_windows(batch, config.gp, get_survey(config.survey), config.features.bands,
                          config.resample or ResampleConfig(), seed)


def _predict(model: T2, x: np.ndarray, extra: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x), torch.from_numpy(extra))
    return torch.softmax(logits, dim=1).numpy()


def _forecast_inputs(copies: list[LightCurveBatch], n_views: int, config: TrainConfig
                     ) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray, np.ndarray]:
    """Inputs of every copy plus forecasting targets and masks (see :func:`train`).

    ``copies[0]`` is the whole training set, ``copies[1:n_views]`` its augmented views;
    the later copies (re-observed at another redshift and cadence) get no target.
    """
    feats, targets, masks = [], [], []
    survey = copies[0].survey
    bands = [survey.bands.index(b) for b in config.features.bands]
    whole = None
    for k, copy in enumerate(copies):
        x, extra, ok, selected, gp = _prepared(copy, config)
        feats.append((x, extra, ok))
        if k == 0:
            whole = (selected, gp)
        if k < n_views:
            target, mask = forecast_targets(selected, gp, *whole, bands)
        else:
            target = np.zeros((len(x), config.gp.n_steps, len(bands)), np.float32)
            mask = np.zeros((len(x), config.gp.n_steps), bool)
        targets.append(target)
        masks.append(mask)
    return feats, np.concatenate(targets), np.concatenate(masks)


def train(batch: LightCurveBatch, config: TrainConfig, out: Path, log=print) -> dict:
    """Train one model on labelled light curves (``batch.extra['target']``) into ``out``.

    Returns the metrics dict also written to ``out/metrics.json``.
    """
    out.mkdir(parents=True, exist_ok=True)
    init_seed = config.seed if config.init_seed is None else config.init_seed
    torch.manual_seed(init_seed)
    y_all = class_index(batch.extra["target"])
    if (y_all < 0).any():
        raise ValueError("every object needs a target among the 14 PLAsTiCC classes")
    tr, va, te = stratified_split(y_all, config.split, config.seed)
    (out / "split.json").write_text(json.dumps(
        {k: batch.object_id[v].tolist() for k, v in
         (("train", tr), ("validation", va), ("test", te))}))

    start = time.perf_counter()
    train_b = batch.take(tr)
    copies = training_copies(
        train_b, config.augment, config.seed, config.n_augment,
        redshift_dropout=config.redshift_dropout if config.features.use_redshift else 0.0,
        gp=config.gp, target=get_survey(config.survey), bands=config.features.bands,
        resample=config.resample, n_resample=config.n_resample)
    if config.forecast_weight > 0:
        feats, f_target, f_mask = _forecast_inputs(copies, 1 + config.n_augment, config)
    else:
        feats = [_inputs(c, config) for c in copies]
    x_tr = np.concatenate([f[0] for f in feats])
    e_tr = np.concatenate([f[1] for f in feats])
    ok_tr = np.concatenate([f[2] for f in feats])
    y_tr = np.tile(y_all[tr], len(copies))
    x_tr, e_tr, y_tr = x_tr[ok_tr], e_tr[ok_tr], y_tr[ok_tr]
    if config.forecast_weight > 0:
        f_target, f_mask = f_target[ok_tr], f_mask[ok_tr]
    assert np.isfinite(x_tr).all() and np.isfinite(e_tr).all(), "non-finite model inputs"
    x_va, e_va, _ = _inputs(batch.take(va), config)
    y_va = y_all[va]
    if config.n_resample:  # validate on whole light curves and on the target's alerts
        x_rs, e_rs, ok_rs = _inputs(_survey_view(batch.take(va), config, config.seed + 77),
                                    config)
        x_va, e_va = np.concatenate([x_va, x_rs[ok_rs]]), np.concatenate([e_va, e_rs[ok_rs]])
        y_va = np.concatenate([y_va, y_all[va][ok_rs]])
    log(f"features: {len(y_tr)} training views, {len(y_va)} validation objects "
        f"({time.perf_counter() - start:.1f} s of GP fitting)")

    model = T2(T2Config(n_tokens=config.gp.n_steps, n_channels=config.features.n_channels,
                        n_extra=config.features.n_extra, d_model=config.d_model,
                        n_heads=config.n_heads, n_blocks=config.n_blocks,
                        dropout=config.dropout))
    counts = np.bincount(y_tr, minlength=len(CLASSES)).astype(np.float64)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(weights / weights.sum(),
                                                      dtype=torch.float32),
                                  reduction="sum")
    params = list(model.parameters())
    decoder = None
    if config.forecast_weight > 0:  # training-only head: per-step features -> bands
        decoder = nn.Linear(config.d_model, len(config.features.bands))
        params += list(decoder.parameters())
        ft_t, fm_t = torch.from_numpy(f_target), torch.from_numpy(f_mask)
    opt = torch.optim.Adam(params, lr=config.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=8)
    xt, et, yt = torch.from_numpy(x_tr), torch.from_numpy(e_tr), torch.from_numpy(y_tr)
    w_sum = torch.tensor(weights / weights.sum(), dtype=torch.float32)[yt]
    best, best_state, wait = np.inf, None, 0
    gen = torch.Generator().manual_seed(init_seed)
    for epoch in range(config.epochs):
        model.train()
        perm = torch.randperm(len(yt), generator=gen)[: config.steps_per_epoch
                                                        * config.batch_size]
        for i in range(0, len(perm), config.batch_size):
            b = perm[i:i + config.batch_size]
            opt.zero_grad()
            features = model.forward_features(xt[b])
            loss = loss_fn(model.forward_head(features, et[b]), yt[b]) / w_sum[b].sum()
            if decoder is not None and bool(fm_t[b].any()):
                err = (decoder(features) - ft_t[b]) ** 2  # (B, T, bands)
                loss = loss + config.forecast_weight * err[fm_t[b]].mean()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        val = weighted_log_loss(y_va, _predict(model, x_va, e_va))
        if not np.isfinite(val):
            raise FloatingPointError(f"validation loss is {val} at epoch {epoch}: check inputs")
        sched.step(val)
        if val < best - 1e-4:
            best, wait = val, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            wait += 1
        if epoch % 10 == 0 or wait == 0:
            log(f"epoch {epoch:3d} val flat log-loss {val:.4f} (best {best:.4f})")
        if wait >= config.patience:
            break
    model.load_state_dict(best_state)

    test_b = batch.take(te)
    names = [c.name for c in CLASSES]
    x_te, e_te, _ = _inputs(test_b, config)
    metrics = {"validation_flat_log_loss": best, "epochs": epoch + 1,
               "whole": classification_report(y_all[te], _predict(model, x_te, e_te), names)}
    x_al, e_al, _ = _inputs(alert_windows(test_b, config.augment, config.seed + 99), config)
    metrics["alert_windows"] = classification_report(y_all[te], _predict(model, x_al, e_al),
                                                     names)
    if config.n_resample:
        view = _survey_view(test_b, config, config.seed + 99)
        x_sv, e_sv, ok_sv = _inputs(view, config)
        metrics["survey_windows"] = classification_report(
            y_all[te][ok_sv], _predict(model, x_sv[ok_sv], e_sv[ok_sv]), names)
    export_onnx(model, str(out / "model.onnx"))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "train_config.json").write_text(json.dumps(asdict(config), indent=2, default=str))
    summary = {split: {k: metrics[split][k] for k in ("flat_log_loss", "kaggle_log_loss",
                                                       "accuracy", "macro_f1")}
               for split in ("whole", "alert_windows", "survey_windows") if split in metrics}
    write_manifest(out, name=config.name, version=config.version,
                   survey=get_survey(config.survey), gp=config.gp, features=config.features,
                   model=model.config.to_dict(), model_file="model.onnx",
                   training={"data": "PLAsTiCC training set", "data_sha256":
                             batch_fingerprint(batch), "seed": config.seed,
                             "split": "split.json", "config": "train_config.json"},
                   metrics={"test_split": summary})
    log(f"test flat log-loss: whole {metrics['whole']['flat_log_loss']:.4f}, "
        f"alert windows {metrics['alert_windows']['flat_log_loss']:.4f}")
    return metrics
