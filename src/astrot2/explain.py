"""Class activation maps (CAM) of t2, torch-free: which times of a light curve drove a class.

t2 pools its encoder output over time *before* the dense head, and the extra features are
concatenated after the pooling, so each logit splits exactly into a per-time-step part
and a per-object part (Zhou et al. 2016's CAM, for a 1D sequence):

    logit_c = mean_t CAM_c(t) + W_c[d:] . extra + b_c,   CAM_c(t) = W_c[:d] . h_t,

where ``h_t`` (shape (n_steps, d)) is the encoder output at grid step ``t`` (the input of
the graph's pooling node ``ReduceMean``) and ``W`` (n_classes, d + n_extra), ``b`` the head.

A head with a hidden layer (``T2Config.head_hidden``: ``W2 relu(W1 [pooled, extra] + b1) +
b2``) is linear once each alert's active hidden units are known (the mask ``m`` of ``W1
[pooled, extra] + b1 > 0``, from the same pooled features): ``W = W2 diag(m) W1`` and ``b =
W2 (m * b1) + b2``, one per alert, and the split above stays exact.

At explain time the shipped ONNX graph is read with the ``onnx`` package (an extra
dependency of this module only: ``pip install astrot2[explain]``), the pooling node's input
is added as a second graph output *in memory*, and ONNX Runtime runs that copy; the
model file on disk is never changed.  Model files: ``.onnx`` and the compact ``.t2c`` (its
decoded ONNX bytes) work; ``.ort`` files hold an optimised graph without the ONNX
structure and are refused with a :class:`~astrot2.errors.ModelError` (explain the
``.onnx`` model it was converted from).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from astrot2.classes import CLASSES
from astrot2.errors import ConfigError, ModelError
from astrot2.gp import GPResult, classified
from astrot2.lightcurves import LightCurveBatch
from astrot2.modelref import ModelRef
from astrot2.plotting import BAND_COLOURS
from astrot2.sessions import onnx_session

__all__ = ["CamModel", "Explanation", "cam_model", "explain", "explain_alert", "explain_file",
           "find_alert", "plot_explanation"]


@dataclass(frozen=True)
class CamModel:
    """An ONNX Runtime session that also returns the encoder output, and the dense head.

    Attributes
    ----------
    session : onnxruntime.InferenceSession
        Outputs ``(logits, features)``; ``features`` has shape (n, n_steps, d).
    weight : ndarray of float64, shape (n_classes, d + n_extra), or (n_classes, n_hidden)
        with a hidden layer
    bias : ndarray of float64, shape (n_classes,)
    d_model : int
    hidden : tuple of ndarray, optional
        The hidden layer's ``W1`` (n_hidden, d + n_extra) and ``b1`` (n_hidden,), before
        its ReLU; None for a linear head.
    """

    session: object
    weight: np.ndarray
    bias: np.ndarray
    d_model: int
    hidden: tuple[np.ndarray, np.ndarray] | None = None

    def head_of(self, pooled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The linear head (weights (n, n_classes, d + n_extra), bias (n, n_classes)) of
        each alert, given its pooled features and extra inputs ``pooled`` (n, d +
        n_extra)."""
        n = len(pooled)
        if self.hidden is None:
            return (np.broadcast_to(self.weight, (n, *self.weight.shape)),
                    np.broadcast_to(self.bias, (n, len(self.bias))))
        w1, b1 = self.hidden
        active = (pooled @ w1.T + b1) > 0  # (n, n_hidden)
        weight = np.einsum("kh,nh,hj->nkj", self.weight, active, w1)
        return weight, (active * b1) @ self.weight.T + self.bias


class Explanation(NamedTuple):
    """CAMs and everything needed to draw them, for a batch of light curves.

    Unpacks as ``cam, probabilities, gp, ...``.

    Attributes
    ----------
    cam : ndarray of float64, shape (n_alerts, n_classes, n_steps)
        ``CAM_c(t)``; NaN rows for rejected alerts.
    probabilities : ndarray of float64, shape (n_alerts, n_classes)
        As :meth:`astrot2.Classifier.predict` (with the feature companion when the model
        has one, calibrated when the manifest has a temperature); zeros for rejected
        alerts.  The CAMs explain the network's ``logits`` only.
    gp : GPResult
        The GP fit of the model's bands (grid times ``gp.times``, (n_alerts, n_steps)).
    batch : LightCurveBatch
        The light curves in the model's bands (what the GP was fitted on).
    logits : ndarray of float64, shape (n_alerts, n_classes)
        Raw ONNX logits (before the temperature).
    extra_contribution : ndarray of float64, shape (n_alerts, n_classes)
        ``W[:, d:] @ extra`` (zeros for a model without extra inputs).
    bias : ndarray of float64, shape (n_alerts, n_classes)
        The head's bias (the same for every alert with a linear head).
    status : ndarray of object (str), shape (n_alerts,)
        ``"ok"`` or the reject reason.
    companion : ndarray of float64, shape (n_alerts, n_classes), or None
        The feature companion's own probabilities (:mod:`astrot2.companion`), None for a
        model without one.
    """

    cam: np.ndarray
    probabilities: np.ndarray
    gp: GPResult
    batch: LightCurveBatch
    logits: np.ndarray
    extra_contribution: np.ndarray
    bias: np.ndarray
    status: np.ndarray
    companion: np.ndarray | None = None


def _load_onnx(file: Path):
    """The ONNX ``ModelProto`` of a model file (``.onnx`` or ``.t2c``)."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ModelError("astrot2 explain needs the onnx package to read the graph: "
                         "pip install 'astrot2[explain]' (or onnx>=1.15)") from exc
    if file.suffix == ".onnx":
        return onnx.load(str(file))
    if file.suffix == ".t2c":
        from astrot2.compact import read_compact

        return onnx.load_from_string(read_compact(file))
    raise ModelError(f"{file}: class activation maps need the ONNX graph, and a "
                     f"{file.suffix!r} model file does not keep it; explain the .onnx model "
                     "it was made from (e.g. the parent folder of a compressed model)")


def _producers(graph) -> dict[str, object]:
    """Node of the graph producing each tensor name."""
    return {out: node for node in graph.node for out in node.output}


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _find_head(model) -> tuple[object, object, object | None, object | None]:
    """The head ``Gemm``, the pooling ``ReduceMean``, the ``Concat`` between (or None) and
    the hidden layer's ``Gemm`` (or None).

    Raises
    ------
    ModelError
        If the graph is not t2's pooled design (``ReduceMean`` over time -> [Concat with
        extra] -> [``Gemm`` -> ``Relu``] -> ``Gemm`` -> logits).
    """
    graph = model.graph
    made_by = _producers(graph)
    logits = graph.output[0].name
    head = made_by.get(logits)
    if head is None or head.op_type != "Gemm":
        raise ModelError(f"graph output {logits!r} is not made by a Gemm (dense head), got "
                         f"{getattr(head, 'op_type', None)}: not t2's pooled float design "
                         "(a quantized graph?); explain the float .onnx model it came from")
    node = made_by.get(head.input[0])
    hidden = None
    if node is not None and node.op_type == "Relu":
        hidden = made_by.get(node.input[0])
        if hidden is None or hidden.op_type != "Gemm":
            raise ModelError("the dense head's hidden layer is not a Gemm before its Relu: "
                             "not t2's design")
    elif node is not None and node.op_type == "FusedGemm":  # ONNX Runtime's Gemm + Relu
        if _attr(node, "activation", b"").lower() != b"relu":
            raise ModelError("the dense head's hidden layer is not a ReLU: not t2's design")
        hidden = node
    if hidden is not None:
        node = made_by.get(hidden.input[0])
    concat = None
    if node is not None and node.op_type == "Concat":
        concat = node
        node = made_by.get(node.input[0])
    if node is None or node.op_type != "ReduceMean":
        raise ModelError("the dense head's input is not a ReduceMean (global average "
                         "pooling) over time, optionally concatenated with extra features: "
                         "class activation maps need t2's pooled design")
    if _attr(node, "keepdims", 1) != 0:
        raise ModelError("the pooling ReduceMean keeps its axis: not t2's pooled design")
    return head, node, concat, hidden


def cam_model(file: str | Path, threads: int | None = None) -> CamModel:
    """Build, in memory, the CAM session of a model file (the file itself is unchanged).

    Parameters
    ----------
    file : str or Path
        ``.onnx`` or ``.t2c`` model file.
    threads : int, optional
        ONNX Runtime intra-op threads.
    """
    from onnx import TensorProto, helper, numpy_helper

    model = _load_onnx(Path(file))
    head, pool, concat, hidden = _find_head(model)
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    extra_outputs = [pool.input[0]]
    for name in [*head.input[1:3], *([] if hidden is None else hidden.input[1:3])]:
        if name not in inits:  # e.g. a dequantised weight: let ONNX Runtime compute it
            extra_outputs.append(name)
    for name in extra_outputs:
        graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = onnx_session(model.SerializeToString(), f"{file} (its CAM graph)", threads)
    values = dict(inits)
    if len(extra_outputs) > 1:  # run once on zeros to read computed head tensors
        feeds = {i.name: np.zeros([1, *[d if isinstance(d, int) else 1 for d in i.shape[1:]]],
                                  np.float32) for i in session.get_inputs()}
        got = session.run(extra_outputs[1:], feeds)
        values.update(zip(extra_outputs[1:], got, strict=True))
    weight, bias = _dense(head, values)
    layer = None if hidden is None else _dense(hidden, values)
    width = weight.shape[1] if layer is None else layer[0].shape[1]
    d_model = width - (0 if concat is None else _extra_width(session))
    return CamModel(session=session, weight=weight, bias=bias, d_model=int(d_model),
                    hidden=layer)


def _dense(gemm, values: dict) -> tuple[np.ndarray, np.ndarray]:
    """Weight (out, in) and bias (out,) of a ``Gemm`` node (``alpha``, ``beta`` and
    ``transB`` applied)."""
    weight = np.asarray(values[gemm.input[1]], dtype=np.float64)
    if not _attr(gemm, "transB", 0):
        weight = weight.T  # (out, in)
    weight = weight * float(_attr(gemm, "alpha", 1.0))
    bias = np.zeros(weight.shape[0])
    if len(gemm.input) > 2 and gemm.input[2]:
        bias = np.broadcast_to(np.asarray(values[gemm.input[2]], dtype=np.float64)
                               * float(_attr(gemm, "beta", 1.0)), weight.shape[:1]).copy()
    if _attr(gemm, "transA", 0):
        raise ModelError("the dense head transposes its input (transA): not t2's design")
    return weight, bias


def _extra_width(session) -> int:
    """Width of the ``extra`` input (0 when the model has none)."""
    for i in session.get_inputs():
        if i.name == "extra":
            return int(i.shape[1])
    return 0


def _to_grid(cam: np.ndarray, n_steps: int) -> np.ndarray:
    """CAM over the encoder's steps -> over the GP grid's ``n_steps`` steps.

    A patched model (``PatchT2``: each encoder step reads ``patch`` consecutive grid steps)
    has fewer encoder steps than grid steps; each patch's value is repeated over its grid
    steps, which keeps ``mean_t CAM`` (hence the logit decomposition) unchanged.
    """
    t = cam.shape[2]
    if t == n_steps:
        return cam
    if t == 0 or n_steps % t:
        raise ModelError(f"the encoder has {t} steps for a GP grid of {n_steps}: not a "
                         "whole number of grid steps per encoder step")
    return np.repeat(cam, n_steps // t, axis=2)


_CACHE: dict[tuple[str, str], CamModel] = {}


def _cached_cam_model(clf) -> CamModel:
    """One CAM session per model file and checksum for the life of the process."""
    key = (str(clf.manifest.model_file), clf.manifest.sha256)
    if key not in _CACHE:
        _CACHE[key] = cam_model(clf.manifest.model_file, threads=1)
    return _CACHE[key]


def explain(clf, batch: LightCurveBatch, *, check_survey: bool = True) -> Explanation:
    """Class activation maps of every light curve of ``batch``.

    The classifier's own steps score the batch (:meth:`~astrot2.runtime.Classifier.
    model_inputs`, ``logits``, ``combine``, ``calibrated``), so the probabilities are
    exactly those of :meth:`~astrot2.runtime.Classifier.predict`; the CAM session only
    adds the encoder output that the maps are made of.

    Parameters
    ----------
    clf : Classifier
        A loaded model (:meth:`astrot2.Classifier.load`); its model file must be ``.onnx``
        or ``.t2c``.
    batch : LightCurveBatch
    check_survey : bool
        Refuse light curves of another survey than the model's (as ``predict``).

    Returns
    -------
    Explanation
        ``cam`` (n_alerts, n_classes, n_steps) with ``cam.mean(axis=2) +
        extra_contribution + bias == logits`` (to float32 rounding); for a patched model,
        each patch's value over its grid steps.
    """
    inputs = clf.model_inputs(batch, check_survey=check_survey)
    logits = clf.logits(inputs.feeds)
    cm = _cached_cam_model(clf)
    x, extra = inputs.feeds["x"], inputs.extra
    n, n_steps = x.shape[:2]
    cam = np.zeros((n, len(cm.bias), n_steps))
    contribution, bias = np.zeros_like(logits), np.zeros_like(logits)
    step = clf.MODEL_BATCH
    for i in range(0, n, step):
        part = {k: v[i:i + step] for k, v in inputs.feeds.items()}
        h = cm.session.run(None, part)[1].astype(np.float64)  # (b, T, d): encoder output
        e = extra[i:i + step].astype(np.float64).reshape(len(h), -1)
        weight, bias[i:i + step] = cm.head_of(np.column_stack([h.mean(axis=1), e]))
        cam[i:i + step] = _to_grid(np.einsum("btd,bkd->bkt", h, weight[:, :, :cm.d_model]),
                                   n_steps)
        contribution[i:i + step] = np.einsum("bj,bkj->bk", e, weight[:, :, cm.d_model:])
    z, companion = clf.combine(logits, inputs)
    pred = clf.calibrated(z, inputs.status.copy())
    cam[~classified(pred.status)] = np.nan
    return Explanation(cam=cam, probabilities=pred.probabilities.astype(np.float64),
                       gp=inputs.gp, batch=inputs.selected, logits=logits,
                       extra_contribution=contribution, bias=bias,
                       status=pred.status, companion=companion)




def _y_limits(lc, mean: np.ndarray) -> tuple[float, float]:
    """Flux axis limits from the detections (with their errors), the non-detections and
    the GP mean; the GP std band and large non-detection errors may exceed them."""
    det = lc.detected
    values = np.concatenate([lc.flux[det] + lc.flux_err[det], lc.flux[det] - lc.flux_err[det],
                             lc.flux[~det], mean[np.isfinite(mean)], [0.0]])
    lo, hi = float(values.min()), float(values.max())
    pad = 0.12 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def plot_explanation(expl: Explanation, i: int, path: str | Path, *, n_classes: int = 3,
                     title: str | None = None) -> Path:
    """One light curve's figure: data + GP, CAM strips aligned in time, probabilities.

    Parameters
    ----------
    expl : Explanation
    i : int
        Light curve index in the batch.
    path : str or Path
        PNG file to write.
    n_classes : int
        CAM strips drawn: the ``n_classes`` most probable classes (the top one first).
    title : str, optional
        Default: object and alert ids.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not classified(expl.status[i:i + 1])[0]:
        raise ModelError(f"light curve {i} was not classified ({expl.status[i]}): no CAM")
    lc, gp, bands = expl.batch[i], expl.gp, expl.batch.survey.bands
    prob = expl.probabilities[i]
    order = np.argsort(prob)[::-1][:max(1, n_classes)]
    names = [c.name for c in CLASSES]
    first = lc.time[lc.detected].min() if lc.detected.any() else lc.time.min()
    grid = gp.times[i] - first
    last = lc.time.max() - first

    fig = plt.figure(figsize=(12, 4.6 + 0.45 * len(order)))
    outer = fig.add_gridspec(1, 2, width_ratios=[3.0, 1.1], wspace=0.3)
    left = outer[0].subgridspec(2, 1, height_ratios=[3.2, 0.42 * len(order) + 0.35],
                                hspace=0.08)
    ax = fig.add_subplot(left[0])
    used = sorted(set(lc.band.tolist()))  # the model's bands with points
    for b in used:
        colour = BAND_COLOURS.get(bands[b], "grey")
        sel = lc.band == b
        det, lim = sel & lc.detected, sel & ~lc.detected
        ax.errorbar(lc.time[det] - first, lc.flux[det], lc.flux_err[det], fmt="o", ms=4,
                    color=colour, label=f"{bands[b]}", zorder=3)
        if lim.any():
            ax.errorbar(lc.time[lim] - first, lc.flux[lim], lc.flux_err[lim], fmt="v",
                        ms=4, mfc="white", color=colour, alpha=0.6, zorder=3)
        mu, sd = gp.mean[i, :, b], gp.std[i, :, b]
        ax.plot(grid, mu, color=colour, lw=1.3)
        ax.fill_between(grid, mu - sd, mu + sd, color=colour, alpha=0.13, lw=0)
    ax.set_ylim(*_y_limits(lc, gp.mean[i][:, used]))
    ax.axhline(0, color="grey", lw=0.6)
    ax.axvline(last, color="black", lw=0.8, ls=":")
    ax.text(last, ax.get_ylim()[1], " alert", va="top", fontsize=7)
    ax.set_ylabel("flux (FLUXCAL, ZP 27.5)\nGP mean +/- 1 std")
    ax.legend(fontsize=7, loc="upper left", ncol=len(used), framealpha=0.8,
              title="bands (open triangles: non-detections)", title_fontsize=7)
    ax.tick_params(labelbottom=False)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_title(title or f"{lc.object_id} (alert {lc.alert_id})", fontsize=10)

    strip = fig.add_subplot(left[1], sharex=ax)
    cam = expl.cam[i, order]  # (k, T)
    lim_v = float(np.nanmax(np.abs(cam))) or 1.0
    step = (grid[1] - grid[0]) if len(grid) > 1 else 1.0
    im = strip.imshow(cam, aspect="auto", cmap="RdBu_r", vmin=-lim_v, vmax=lim_v,
                      extent=(grid[0] - step / 2, grid[-1] + step / 2, len(order) - 0.5, -0.5),
                      interpolation="nearest")
    strip.axvline(last, color="black", lw=0.8, ls=":")
    strip.set_yticks(range(len(order)), [names[k] for k in order], fontsize=8)
    strip.set_ylabel("CAM", fontsize=8)
    strip.set_xlabel("days since first detection")
    cax = strip.inset_axes([1.01, 0.0, 0.012, 1.0])
    fig.colorbar(im, cax=cax).ax.tick_params(labelsize=7)
    cax.set_ylabel("logit per step", fontsize=7)

    bars = fig.add_subplot(outer[1])
    ranks = np.argsort(prob)
    colours = ["tab:blue" if k == order[0] else "tab:grey" for k in ranks]
    bars.barh(range(len(prob)), prob[ranks], color=colours)
    bars.set_yticks(range(len(prob)), [names[k] for k in ranks], fontsize=8)
    bars.set_xlim(0, 1)
    bars.set_xlabel("probability")
    for y, k in enumerate(ranks):
        if prob[k] >= 0.005:
            bars.text(prob[k] + 0.02, y, f"{prob[k]:.2f}", va="center", fontsize=7)
    top = order[0]
    heading = "class probabilities" if expl.companion is None else (
        f"class probabilities (t2 x feature companion;\ncompanion alone: {names[top]} "
        f"{expl.companion[i, top]:.2f})")
    bars.set_title(f"{heading}\n{names[top]}: t2 logit {expl.logits[i, top]:.2f} = "
                   f"CAM mean {expl.cam[i, top].mean():.2f}\n+ extras "
                   f"{expl.extra_contribution[i, top]:.2f} + bias {expl.bias[i, top]:.2f}",
                   fontsize=8)
    fig.subplots_adjust(left=0.09, right=0.97, top=0.9 if expl.companion is None else 0.86,
                        bottom=0.1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def find_alert(batch: LightCurveBatch, alert_id: str) -> int:
    """Index of the light curve whose alert id (or, failing that, object id) is ``alert_id``.

    An object id names the object's latest alert: the one whose light curve ends last
    (the one a broker classifies last); of equals, the last one read.

    Raises
    ------
    ConfigError
        If no light curve has that id.
    """
    hits = np.flatnonzero(batch.alert_id.astype(str) == str(alert_id))
    if not len(hits):
        hits = np.flatnonzero(batch.object_id.astype(str) == str(alert_id))
    if not len(hits):
        some = ", ".join(batch.alert_id.astype(str)[:5])
        raise ConfigError(f"no alert (or object) with id {alert_id!r} in the input "
                         f"({len(batch)} alerts; first ids: {some})")
    ends = batch.reduce(batch.time, np.maximum, empty=-np.inf)[hits]
    return int(hits[np.flatnonzero(ends == ends.max())[-1]])


def figure_path(output: str | Path, alert_id: str) -> Path:
    """Where ``astrot2 explain -o OUTPUT`` draws: ``OUTPUT`` itself, or ``OUTPUT/<alert
    id>.png`` when ``OUTPUT`` is a folder (an existing one, or a name ending in ``/``)."""
    text = str(output)
    if text.endswith(("/", os.sep)) or Path(text).is_dir():
        return Path(text) / f"{alert_id}.png"
    return Path(text)


def explain_alert(inputs: str | Path, alert_id: str, *,
                  model: str | Path | ModelRef | None = None, format: str | None = None,
                  metadata: str | Path | None = None, threads: int | None = None,
                  include_forced: bool | None = None
                  ) -> tuple[Explanation, LightCurveBatch, object]:
    """Read alerts as ``astrot2 classify`` reads them and explain one of them.

    Parameters
    ----------
    inputs : str or Path
        Alert file or folder.
    alert_id : str
        The alert (or, failing that, object) to explain; an object's latest alert (see
        :func:`find_alert`).
    model : str, Path or ModelRef, optional
        Shipped model name or model folder (default:
        :func:`~astrot2.modelref.default_model` of the input).
    format, metadata
        See :func:`astrot2.io.read_file`.
    threads : int, optional
        GP and ONNX Runtime threads.
    include_forced : bool, optional
        Read Rubin / ELAsTiCC forced photometry as non-detections (default: as
        ``astrot2 classify`` reads it, :data:`astrot2.classify.INCLUDE_FORCED`), so the
        light curve explained is the one classified.

    Returns
    -------
    explanation : Explanation
        Of the one alert.
    alert : LightCurveBatch
        The alert's light curve as read (all bands).
    clf : Classifier
    """
    from astrot2.classify import INCLUDE_FORCED
    from astrot2.io import read_alerts
    from astrot2.modelref import default_model
    from astrot2.runtime import Classifier

    forced = INCLUDE_FORCED if include_forced is None else include_forced
    batch = read_alerts([inputs], format, metadata=metadata, include_forced=forced)
    one = batch.take([find_alert(batch, alert_id)])
    clf = Classifier.load(default_model([inputs], format) if model is None else model,
                          threads=threads)
    return explain(clf, one), one, clf


def explain_file(inputs: str | Path, alert_id: str, output: str | Path, *,
                 model: str | Path | ModelRef | None = None, format: str | None = None,
                 metadata: str | Path | None = None, n_classes: int = 3,
                 threads: int | None = None, include_forced: bool | None = None) -> dict:
    """``astrot2 explain``: :func:`explain_alert`, drawn; returns a JSON-ready summary.

    Parameters
    ----------
    inputs, alert_id, model, format, metadata, threads, include_forced
        See :func:`explain_alert`.
    output : str or Path
        PNG file, or a folder (see :func:`figure_path`).
    n_classes : int
        CAM strips of the most probable classes.
    """
    expl, one, clf = explain_alert(inputs, alert_id, model=model, format=format,
                                   metadata=metadata, threads=threads,
                                   include_forced=include_forced)
    if not classified(expl.status[:1])[0]:
        raise ModelError(f"alert {alert_id} was not classified ({expl.status[0]})")
    output = figure_path(output, str(one.alert_id[0]))
    plot_explanation(expl, 0, output, n_classes=n_classes,
                     title=f"{one.object_id[0]} (alert {one.alert_id[0]}), model {clf.name}")
    prob = expl.probabilities[0]
    top = np.argsort(prob)[::-1][:n_classes]
    return {"alert_id": str(one.alert_id[0]), "object_id": str(one.object_id[0]),
            "model": clf.name, "n_points": int(one.n_points[0]),
            "top_classes": {CLASSES[k].name: round(float(prob[k]), 4) for k in top},
            "cam_mean": {CLASSES[k].name: round(float(expl.cam[0, k].mean()), 4)
                         for k in top},
            "extra_contribution": {CLASSES[k].name:
                                   round(float(expl.extra_contribution[0, k]), 4)
                                   for k in top},
            "figure": str(output)}
