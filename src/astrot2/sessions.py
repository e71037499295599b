"""ONNX Runtime sessions as the runtime runs them (the network's and the companion's), and
the only place an ``InferenceSession`` is built (explain, compression and fitting too).

The bottom of the inference layer: imports only ``onnxruntime`` (lazily) and
:mod:`astrot2.errors`, so both :mod:`astrot2.runtime` and :mod:`astrot2.companion` build
their sessions here without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from astrot2.errors import ModelError

__all__ = ["onnx_session"]


def onnx_session(model: str | bytes, file: Path | str, threads: int | None = None, *,
                 spinning: bool = True, config: dict[str, str] | None = None,
                 extended_only: bool = False, save_to: Path | str | None = None):
    """An ONNX Runtime CPU session of a model file's contents, as the runtime runs them.

    ``threads``: intra-op threads (default: ONNX Runtime's choice), one inter-op thread;
    all graph optimisations; ``spinning`` off keeps idle threads from busy-waiting (a
    second session beside the network's); ``config``: more session config entries.
    Offline optimisation (compression): ``extended_only`` stops at the extended level
    (no hardware-specific layouts, so the result is portable between x86 CPUs) and
    ``save_to`` writes the optimised graph there.

    Raises
    ------
    ModelError
        ONNX Runtime refuses it (the message names ``file``).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
                                     if extended_only else
                                     ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    if save_to is not None:
        opts.optimized_model_filepath = str(save_to)
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for key, value in (config or {}).items():
        opts.add_session_config_entry(key, value)
    try:
        return ort.InferenceSession(model, sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{file}: ONNX Runtime cannot load it ({exc})") from exc
