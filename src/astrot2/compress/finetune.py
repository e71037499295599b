"""Compression by (re)training, in PyTorch (training side only; never imported at inference).

- :func:`t2_from_onnx`: the shipped ONNX weights back into a :class:`astrot2.model.T2`, so
  that every method fine-tunes from the shipped model rather than from scratch;
- :func:`prune`: magnitude pruning during fine-tuning, with the cubic sparsity schedule of
  Zhu & Gupta (2017) up to a target sparsity;
- :func:`cluster`: k-means weight sharing (Han et al. 2015) with fine-tuning of the
  centroids (gradients summed over the members of each cluster); a pruned zero stays zero;
- :func:`distill`: knowledge distillation from a teacher's logits into a smaller
  :class:`PatchT2` student (fewer tokens, fewer heads: fewer FLOPs).

All of them train with the flat class-weighted cross-entropy of :mod:`astrot2.train` on the
inputs of :func:`astrot2.compress.features.training_inputs` and keep the weights with the
best validation flat log-loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from astrot2.classes import CLASSES
from astrot2.compress.features import TrainingInputs
from astrot2.metrics import weighted_log_loss
from astrot2.model import T2, PatchT2, T2Config, export_onnx

__all__ = [
    "PatchT2",
    "cluster",
    "distill",
    "fit",
    "kmeans_1d",
    "load_onnx_weights",
    "prunable",
    "prune",
    "t2_from_onnx",
]


def load_onnx_weights(model: T2 | PatchT2, path: str) -> nn.Module:
    """Load into ``model`` (in place) the weights of an ONNX file exported by
    :func:`astrot2.model.export_onnx` from a model of the same class and sizes.

    The exporter renames and transposes the weights of ``Linear`` layers applied to 3-D
    inputs (``onnx::MatMul_N``), so the mapping is found by exporting a probe copy filled
    with distinct random values and matching its initializers to its parameters by value.

    Raises
    ------
    ValueError
        If a parameter cannot be found in the ONNX file.
    """
    import copy
    import tempfile

    import onnx
    from onnx import numpy_helper

    probe = copy.deepcopy(model).eval()
    gen = torch.Generator().manual_seed(12345)
    with torch.no_grad():  # distinct values everywhere (LayerNorm starts at ones / zeros)
        for p in probe.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(probe, f"{tmp}/probe.onnx")
        probe_inits = {t.name: numpy_helper.to_array(t)
                       for t in onnx.load(f"{tmp}/probe.onnx").graph.initializer}
    target = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    state = {}
    for name, p in probe.state_dict().items():
        value = p.numpy()
        for init_name, arr in probe_inits.items():
            if arr.shape == value.shape and np.array_equal(arr, value):
                state[name] = torch.from_numpy(target[init_name].copy())
                break
            if arr.shape == value.T.shape and np.array_equal(arr, value.T):
                state[name] = torch.from_numpy(target[init_name].T.copy())
                break
        else:
            raise ValueError(f"parameter {name} of the probe is not in the exported ONNX")
    model.load_state_dict(state)
    return model.eval()


def t2_from_onnx(path: str, config: T2Config) -> T2:
    """A :class:`T2` holding the weights of an ONNX file exported by ``export_onnx``."""
    return load_onnx_weights(T2(config), path)


def prunable(model: nn.Module, skip: int = 0) -> list[str]:
    """Names of the weight matrices (2-D ``Linear`` weights) in forward order, minus the
    first ``skip`` of them.  Biases and LayerNorm parameters are left alone."""
    names = [n for n, p in model.named_parameters() if p.ndim == 2 and n.endswith("weight")]
    return names[skip:]


def _class_weights(y: np.ndarray, given: np.ndarray | None = None) -> torch.Tensor:
    if given is not None:
        return torch.tensor(np.asarray(given) / np.sum(given), dtype=torch.float32)
    counts = np.bincount(y, minlength=len(CLASSES)).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    return torch.tensor(w / w.sum(), dtype=torch.float32)


def _val_loss(forward: Callable, data: TrainingInputs, device: str = "cpu") -> float:
    with torch.no_grad():
        logits = forward(torch.from_numpy(data.x_val).to(device),
                         torch.from_numpy(data.extra_val).to(device)).cpu()
    return weighted_log_loss(data.y_val, torch.softmax(logits, dim=1).double().numpy(),
                             None if data.class_weight is None else
                             np.where(np.asarray(data.class_weight) > 0, 1.0, 0.0))


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit`: best validation flat log-loss, steps run, seconds."""

    val_loss: float
    steps: int
    seconds: float


def fit(forward: Callable, params: list[torch.Tensor], data: TrainingInputs, *, steps: int,
        lr: float, batch_size: int = 256, seed: int = 0, teacher: np.ndarray | None = None,
        temperature: float = 2.0, alpha: float = 0.5, eval_every: int = 50,
        after_step: Callable[[int], None] | None = None,
        state: Callable[[], dict] | None = None, restore: Callable[[dict], None] | None = None,
        keep_best_after: int = 0, device: str = "cpu", log=print) -> FitResult:
    """Adam on the flat class-weighted cross-entropy, optionally distilled from a teacher.

    Parameters
    ----------
    forward : callable
        ``forward(x, extra) -> logits``; the model is put in train mode by the caller.
    params : list of Tensor
        What the optimiser updates.
    teacher : ndarray of shape (n_views, n_classes), optional
        Teacher logits of the train views; the loss is then
        ``alpha * T**2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE``.
    after_step : callable, optional
        Called with the step index after each optimiser step (pruning masks, schedules).
    state, restore : callable, optional
        Snapshot / restore the weights; with them the best validation weights (evaluated
        every ``eval_every`` steps, from step ``keep_best_after`` on) are kept.
    device : str
        Where the batches go (``cpu`` or ``cuda``); the model must already be there.
    """
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(data.x_train).to(device)
    et = torch.from_numpy(data.extra_train).to(device)
    yt = torch.from_numpy(data.y_train).to(device)
    cw = _class_weights(data.y_train, data.class_weight).to(device)
    tt = torch.from_numpy(teacher.astype(np.float32)).to(device) if teacher is not None \
        else None
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1),
                                                       eta_min=lr * 0.05)
    best, best_state = math.inf, None
    for step in range(steps):
        b = torch.randint(len(yt), (batch_size,), generator=gen).to(device)
        logits = forward(xt[b], et[b])
        ce = F.cross_entropy(logits, yt[b], weight=cw, reduction="sum") / cw[yt[b]].sum()
        loss = ce
        if tt is not None:
            t = temperature
            kl = F.kl_div(F.log_softmax(logits / t, dim=1), F.log_softmax(tt[b] / t, dim=1),
                          log_target=True, reduction="none").sum(dim=1)
            kl = (kl * cw[yt[b]]).sum() / cw[yt[b]].sum()  # flat weighting, like the CE
            loss = alpha * t * t * kl + (1 - alpha) * ce
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if after_step is not None:
            after_step(step)
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            val = _val_loss(forward, data, device)
            if not np.isfinite(val):
                raise FloatingPointError(f"validation loss {val} at step {step}")
            if state is not None and step >= keep_best_after and val < best:
                best, best_state = val, state()
            log(f"step {step + 1:5d} val flat log-loss {val:.4f} (best {best:.4f}) "
                f"{time.perf_counter() - start:.0f} s")
    if restore is not None and best_state is not None:
        restore(best_state)
    return FitResult(best, steps, time.perf_counter() - start)


def _forward(model: nn.Module, train: bool = True) -> Callable:
    def run(x: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        model.train(train)
        return model(x, extra)
    return run


def _snapshot(model: nn.Module) -> Callable[[], dict]:
    return lambda: {k: v.detach().clone() for k, v in model.state_dict().items()}


def prune(model: nn.Module, data: TrainingInputs, *, sparsity: float, steps: int = 1500,
          lr: float = 5e-4, skip: int = 0, seed: int = 0, batch_size: int = 256,
          teacher: np.ndarray | None = None, alpha: float = 0.7,
          log=print) -> dict[str, torch.Tensor]:
    """Magnitude pruning during fine-tuning, in place; returns the masks (1 = kept).

    Every ``steps // 20`` steps during the first 70 % of fine-tuning, each weight matrix
    of :func:`prunable` is pruned to the scheduled sparsity
    ``s_t = s (1 - (1 - t / t_end)**3)`` by zeroing its smallest-magnitude entries
    (per layer); the remaining 30 % recover at the target sparsity.  Masks are re-applied
    after every optimiser step, so pruned weights stay exactly zero.  With ``teacher``
    logits of the train views, the fine-tuning is distilled (see :func:`fit`; ``alpha``:
    weight of the teacher's term).
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    params = dict(model.named_parameters())
    names = prunable(model, skip)
    masks = {n: torch.ones_like(params[n]) for n in names}
    t_end = max(int(0.7 * steps), 1)
    every = max(steps // 20, 1)

    def update(step: int) -> None:
        if step % every == 0 and step <= t_end:
            s = sparsity * (1 - (1 - min(step / t_end, 1.0)) ** 3)
            for n in names:
                w = params[n].detach().abs().flatten()
                k = round(s * w.numel())
                if k:
                    threshold = w.kthvalue(k).values
                    masks[n] = (params[n].detach().abs() > threshold).float()
        with torch.no_grad():
            for n in names:
                params[n].mul_(masks[n])

    fit(_forward(model), list(model.parameters()), data, steps=steps, lr=lr, seed=seed,
        batch_size=batch_size, teacher=teacher, alpha=alpha, after_step=update,
        state=_snapshot(model),
        restore=model.load_state_dict, keep_best_after=t_end, log=log)
    with torch.no_grad():
        for n in names:
            params[n].mul_(masks[n])
    return masks


def kmeans_1d(values: np.ndarray, k: int, iters: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """k-means of scalars with linear initialisation (Han et al.): centroids, labels.

    Parameters
    ----------
    values : ndarray of shape (n,)
    k : int
        Clusters (at most the number of distinct values).

    Returns
    -------
    centroids : ndarray of float64, shape (k,), sorted
    labels : ndarray of int64, shape (n,)
    """
    values = np.asarray(values, dtype=np.float64)
    k = min(k, len(np.unique(values)))
    centroids = np.linspace(values.min(), values.max(), k)
    labels = np.zeros(len(values), dtype=np.int64)
    for _ in range(iters):
        edges = (centroids[1:] + centroids[:-1]) / 2  # 1-D: nearest centroid by bisection
        labels = np.searchsorted(edges, values)
        counts = np.bincount(labels, minlength=k)
        sums = np.bincount(labels, weights=values, minlength=k)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.allclose(new, centroids):
            break
        centroids = np.sort(new)
    edges = (centroids[1:] + centroids[:-1]) / 2
    return centroids, np.searchsorted(edges, values)


def cluster(model: nn.Module, data: TrainingInputs, *, k: int = 16, skip: int = 0,
            steps: int = 600, lr: float = 2e-4, seed: int = 0, batch_size: int = 256,
            teacher: np.ndarray | None = None, alpha: float = 0.7, log=print
            ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Weight sharing: each weight matrix keeps ``k`` distinct values (in place).

    The non-zero weights of every matrix of :func:`prunable` (minus the first ``skip``)
    are clustered by :func:`kmeans_1d` into ``k - 1`` centroids if the matrix has pruned
    zeros (zero is the extra, frozen cluster) or ``k`` otherwise; then the centroids (and
    the unclustered parameters) are fine-tuned, the gradient of a centroid being the sum
    of its members' gradients (distilled from ``teacher`` logits if given).

    Returns
    -------
    dict
        name -> (centroids (k,) float32 with 0 first when zeros are kept, labels of the
        matrix's shape).
    """
    params = dict(model.named_parameters())
    names = prunable(model, skip)
    centroids: dict[str, torch.Tensor] = {}
    labels: dict[str, torch.Tensor] = {}
    frozen_zero: dict[str, torch.Tensor] = {}  # 0 for the zero cluster of pruned weights
    for n in names:
        w = params[n].detach().numpy().ravel()
        nz = w != 0
        has_zero = not nz.all()
        c, lab = kmeans_1d(w[nz], k - 1 if has_zero else k)
        full = np.zeros(w.shape, dtype=np.int64)
        if has_zero:
            c = np.concatenate([[0.0], c])
            full[nz] = lab + 1
        else:
            full[:] = lab
        centroids[n] = torch.tensor(c, dtype=torch.float32, requires_grad=True)
        frozen_zero[n] = torch.ones(len(c))
        if has_zero:
            frozen_zero[n][0] = 0.0
        labels[n] = torch.from_numpy(full.reshape(params[n].shape))
    others = [p for n, p in params.items() if n not in names]

    def weights() -> dict[str, torch.Tensor]:
        return {n: (centroids[n] * frozen_zero[n])[labels[n]] for n in names}

    def forward(x: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        model.train()
        return torch.func.functional_call(model, weights(), (x, extra))

    def state() -> dict:
        return {"c": {n: c.detach().clone() for n, c in centroids.items()},
                "m": {k: v.detach().clone() for k, v in model.state_dict().items()}}

    def restore(s: dict) -> None:
        model.load_state_dict(s["m"])
        with torch.no_grad():
            for n, c in s["c"].items():
                centroids[n].copy_(c)

    fit(forward, [*centroids.values(), *others], data, steps=steps, lr=lr, seed=seed,
        batch_size=batch_size, teacher=teacher, alpha=alpha, state=state, restore=restore,
        log=log)
    with torch.no_grad():
        for n, w in weights().items():
            params[n].copy_(w)
    return {n: ((centroids[n] * frozen_zero[n]).detach().numpy(), labels[n].numpy())
            for n in names}


def distill(student: nn.Module, data: TrainingInputs, teacher_logits: np.ndarray, *,
            steps: int = 6000, lr: float = 2e-3, temperature: float = 2.0, alpha: float = 0.7,
            seed: int = 0, batch_size: int = 256, log=print) -> FitResult:
    """Train ``student`` (in place) on the teacher's soft targets and the labels."""
    torch.manual_seed(seed)
    return fit(_forward(student), list(student.parameters()), data, steps=steps, lr=lr,
               seed=seed, batch_size=batch_size, teacher=teacher_logits,
               temperature=temperature, alpha=alpha, eval_every=200,
               state=_snapshot(student), restore=student.load_state_dict, log=log)
