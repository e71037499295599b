"""Decoding the compact model artefact (``model.t2c``) into ONNX bytes: the runtime's half.

NumPy and the standard library only (and :mod:`astrot2.compress.huffman`'s decoder); the
layout and the codecs are described in :mod:`astrot2.compress.artefact`, whose writer
needs the ``onnx`` package and sits above the runtime.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from astrot2.compress import huffman
from astrot2.errors import ModelError

__all__ = ["FORMAT", "MAGIC", "decode_tensors", "read_compact", "sinusoidal"]

MAGIC = b"T2C1"
FORMAT = "astrot2-compact/1"
_FLOAT = 1  # onnx.TensorProto.FLOAT


def sinusoidal(n_tokens: int, d_model: int) -> np.ndarray:
    """Vaswani et al.'s positional encoding (n_tokens, d_model), float32, as t2 uses it."""
    pos = np.arange(n_tokens, dtype=np.float32)[:, None]
    i = np.arange(0, d_model, 2, dtype=np.float32)
    angle = pos / np.power(np.float32(10000.0), i / np.float32(d_model))  # (T, d/2)
    pe = np.zeros((n_tokens, d_model), dtype=np.float32)
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : d_model // 2])
    return pe


# --- protobuf, by hand (decoder side) -----------------------------------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _tensor_proto(name: str, array: np.ndarray) -> bytes:
    """ONNX ``TensorProto`` of a float32 array: dims (1), data_type (2), name (8), raw (9)."""
    dims = b"".join(_varint(1 << 3) + _varint(int(d)) for d in array.shape)
    return (dims + _varint(2 << 3) + _varint(_FLOAT) + _field(8, name.encode())
            + _field(9, np.ascontiguousarray(array, dtype="<f4").tobytes()))


def _with_initializers(model: bytes, tensors: dict[str, np.ndarray]) -> bytes:
    """ONNX model bytes plus initializers: a second ``ModelProto.graph`` (7) holding only
    ``GraphProto.initializer`` (5) entries, merged by the protobuf parser."""
    graph = b"".join(_field(5, _tensor_proto(n, a)) for n, a in tensors.items())
    return model + _field(7, graph)


# --- decoding ---------------------------------------------------------------------------

def decode_tensors(header: dict, payload: memoryview) -> dict[str, np.ndarray]:
    """The weight tensors of a compact artefact, float32, in header order."""
    out = {}
    for t in header["tensors"]:
        shape = tuple(t["shape"])
        raw = payload[t["offset"]:t["offset"] + t["length"]]
        codec = t["codec"]
        if codec == "float32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif codec == "float16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif codec == "cluster":
            k = t["k"]
            values = np.frombuffer(raw[:4 * k], dtype="<f4")
            arr = values[huffman.decode(raw[4 * k:])]
        elif codec == "int8":
            (scale,) = struct.unpack_from("<f", raw)
            q = huffman.decode(raw[4:]).astype(np.float32) - 128.0
            arr = (q * np.float32(scale)).astype(np.float32)
        elif codec == "sinusoidal":
            arr = sinusoidal(*shape)
        else:
            raise ValueError(f"unknown codec {codec!r}")
        out[t["name"]] = arr.reshape(shape)
    return out


def read_compact(path: str | Path) -> bytes:
    """Decode a compact artefact into ONNX model bytes (for ``onnxruntime``).

    Raises
    ------
    ModelError
        Not an artefact, corrupt, or the rebuilt model differs from the one written.
    """
    path = Path(path)
    data = memoryview(path.read_bytes())
    try:
        if bytes(data[:4]) != MAGIC:
            raise ValueError("not a compact astrot2 model (bad magic)")
        (n,) = struct.unpack_from("<I", data, 4)
        header = json.loads(bytes(data[8:8 + n]))
        if header.get("format") != FORMAT:
            raise ValueError(f"format {header.get('format')!r}, expected {FORMAT!r}")
        payload = data[8 + n:]
        g = header["graph"]
        graph = zlib.decompress(payload[g["offset"]:g["offset"] + g["length"]])
        model = _with_initializers(graph, decode_tensors(header, payload))
    except (ValueError, KeyError, TypeError, struct.error, zlib.error) as exc:
        raise ModelError(f"{path}: corrupt compact model ({exc})") from exc
    if hashlib.sha256(model).hexdigest() != header["model_sha256"]:
        raise ModelError(f"{path}: the decoded model differs from the one compressed "
                         "(sha256 mismatch); re-run astrot2 compress")
    return model


# --- encoding (compress time; needs onnx) -------------------------------------------------
