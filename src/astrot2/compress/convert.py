"""Post-training conversions of an ONNX model (compress time; needs ``onnx``).

- :func:`to_ort_format`: ONNX Runtime's own FlatBuffers format (``.ort``), with the graph
  optimisations already applied, so loading skips protobuf parsing and most passes;
- :func:`quantize_dynamic_int8`: int8 weights, activations quantised on the fly
  (``onnxruntime.quantization.quantize_dynamic``);
- :func:`quantize_static_int8`: int8 weights and activations in QDQ form, activation
  ranges calibrated on training inputs (``quantize_static``);
- :func:`float16_weights`: weights stored as float16 and cast back to float32 in the
  graph (ONNX Runtime folds the casts at load, so this only halves the storage).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["float16_weights", "quantize_dynamic_int8", "quantize_static_int8",
           "to_ort_format"]


def to_ort_format(onnx_path: str | Path, out: str | Path) -> Path:
    """Save ``onnx_path`` in ORT format at ``out`` (basic + extended optimisations applied).

    Extended (not layout) optimisations keep the file portable between x86 CPUs.
    """
    from astrot2.sessions import onnx_session

    onnx_session(str(onnx_path), onnx_path, extended_only=True, save_to=out,
                 config={"session.save_model_format": "ORT"})
    return Path(out)


def quantize_dynamic_int8(onnx_path: str | Path, out: str | Path) -> Path:
    """Dynamic int8 quantisation of the MatMul/Gemm weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(onnx_path), str(out), weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul", "Gemm"])
    return Path(out)


class _Calibration:
    """``onnxruntime.quantization.CalibrationDataReader`` over arrays of model inputs."""

    def __init__(self, feeds: dict[str, np.ndarray], batch_size: int = 64) -> None:
        n = len(next(iter(feeds.values())))
        self._batches = iter([{k: v[i:i + batch_size] for k, v in feeds.items()}
                              for i in range(0, n, batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_static_int8(onnx_path: str | Path, out: str | Path,
                         feeds: dict[str, np.ndarray]) -> Path:
    """Static int8 (QDQ) quantisation calibrated on ``feeds`` (input name -> array).

    Weights are signed int8 per channel, activations unsigned int8 with min-max ranges
    of the calibration inputs; Softmax and LayerNormalization stay in float.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    quantize_static(str(onnx_path), str(out), _Calibration(feeds),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul", "Gemm", "Add", "Relu"],
                    calibrate_method=CalibrationMethod.MinMax)
    return Path(out)


def float16_weights(onnx_path: str | Path, out: str | Path, min_size: int = 64) -> Path:
    """Store float32 initializers and constants of ``min_size`` elements or more as float16.

    Each becomes a float16 initializer followed by a ``Cast`` to float32 under the
    original name, so the rest of the graph (and its inputs and outputs) is unchanged.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    casts = []
    for node in list(graph.node):
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            arr = numpy_helper.to_array(node.attribute[0].t)
            if arr.dtype == np.float32 and arr.size >= min_size:
                graph.initializer.append(numpy_helper.from_array(arr, node.output[0]))
                graph.node.remove(node)
    for init in list(graph.initializer):
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32 or arr.size < min_size:
            continue
        half = f"{init.name}_fp16"
        graph.initializer.remove(init)
        graph.initializer.append(numpy_helper.from_array(arr.astype(np.float16), half))
        casts.append(helper.make_node("Cast", [half], [init.name], to=onnx.TensorProto.FLOAT,
                                      name=f"cast_{init.name}"))
    for i, node in enumerate(casts):
        graph.node.insert(i, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return Path(out)
