"""The compact model artefact (``model.t2c``): an ONNX model with entropy-coded weights.

Layout::

    b"T2C1"  uint32 header length  header (JSON)  payload

The header lists every weight tensor taken out of the ONNX graph (name, shape, codec,
byte range in the payload) and the sha256 of the ONNX model the decoder must rebuild.
The rest of the graph (operators, small constants) is the ONNX protobuf, deflated, by
default after ONNX Runtime's offline graph optimisations, so loading skips them.

Codecs (chosen per tensor by :func:`write_compact`):

- ``cluster``: at most 256 distinct values (weight sharing, pruning zeros, quantisation
  levels): the distinct values as float32 and the Huffman-coded index of every weight;
- ``int8``: symmetric linear quantisation ``w = scale * q``, ``q`` Huffman-coded
  (lossy; for tensors that were not clustered);
- ``float16`` (lossy) or ``float32`` (exact) raw bytes;
- ``sinusoidal``: the positional encoding, recomputed (no bytes stored).

Decoding (:func:`read_compact`) needs NumPy and the standard library only: the decoded
tensors are serialised as ONNX ``TensorProto`` messages by hand and appended to the model
bytes as a second ``graph`` field, which protobuf parsing merges into the first.  The
rebuilt bytes are checked against the header's sha256, so a decode is exact or refused.
Writing needs the ``onnx`` package (training side).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from astrot2.compact import (
    FORMAT,
    MAGIC,
    _with_initializers,
    decode_tensors,
    read_compact,
    sinusoidal,
)
from astrot2.compress import huffman

__all__ = ["MAGIC", "decode_tensors", "read_compact", "sinusoidal", "write_compact"]


def _encode_tensor(name: str, arr: np.ndarray, lossy: str, pe_tol: float
                   ) -> tuple[str, dict, bytes]:
    values, index = np.unique(arr.ravel(), return_inverse=True)
    if arr.ndim == 2 and np.abs(arr - sinusoidal(*arr.shape)).max() <= pe_tol:
        return "sinusoidal", {}, b""
    if len(values) <= 256:  # exact: distinct values + coded indices, if that is smaller
        blob = values.astype("<f4").tobytes() + huffman.encode(index, len(values))
        if len(blob) < 4 * arr.size:
            return "cluster", {"k": len(values)}, blob
        return "float32", {}, arr.astype("<f4").tobytes()
    if lossy == "int8":
        scale = float(np.abs(arr).max()) / 127.0 or 1.0
        q = np.clip(np.round(arr.ravel() / scale), -127, 127).astype(np.int64) + 128
        return "int8", {}, struct.pack("<f", scale) + huffman.encode(q, 256)
    if lossy == "float16":
        return "float16", {}, arr.astype("<f2").tobytes()
    return "float32", {}, arr.astype("<f4").tobytes()


def _optimised(onnx_path: str | Path, tmp: str) -> str:
    """The model after ONNX Runtime's offline graph optimisations (extended level: constant
    folding, operator fusions; no hardware-specific layouts), as ONNX."""
    from astrot2.sessions import onnx_session

    onnx_session(str(onnx_path), onnx_path, extended_only=True, save_to=f"{tmp}/optimised.onnx")
    return f"{tmp}/optimised.onnx"


def write_compact(onnx_path: str | Path, out: str | Path, *, lossy: str = "none",
                  optimise: bool = True, min_size: int = 64, pe_tol: float = 1e-6) -> dict:
    """Write the compact artefact of an ONNX model.

    Parameters
    ----------
    onnx_path : str or Path
        A float32 ONNX model (e.g. after pruning and clustering).
    out : str or Path
        The ``.t2c`` file to write.
    optimise : bool
        Store the graph after ONNX Runtime's offline optimisations (for its CPU provider),
        so that loading does not redo them (session creation ~4x faster); the weights are
        the same values (constant folding may merge or transpose them).
    lossy : {"none", "int8", "float16"}
        Codec of the tensors with more than 256 distinct values (``none``: float32).
    min_size : int
        Tensors (initializers and ``Constant`` nodes) with fewer elements stay in the graph.
    pe_tol : float
        A 2-D tensor within this of the sinusoidal encoding is recomputed at load time.

    Returns
    -------
    dict
        Sizes: ``{"bytes", "graph_bytes", "tensors": {name: {codec, bytes, n}}, ...}``,
        including, for comparison, the zlib and (if installed) zstd sizes of the raw
        float32 weights and of the quantised indices.
    """
    import tempfile

    import onnx
    from onnx import numpy_helper

    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load(_optimised(onnx_path, tmp) if optimise else str(onnx_path))
    graph = model.graph
    tensors: dict[str, np.ndarray] = {}
    for node in list(graph.node):  # large constants become initializers first
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            arr = numpy_helper.to_array(node.attribute[0].t)
            if arr.dtype == np.float32 and arr.size >= min_size:
                tensors[node.output[0]] = arr
                graph.node.remove(node)
    for init in list(graph.initializer):
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= min_size:
            tensors[init.name] = arr
            graph.initializer.remove(init)
    model.producer_name, model.producer_version, model.doc_string = "astrot2", "", ""
    graph_bytes = model.SerializeToString()
    deflated = zlib.compress(graph_bytes, 9)
    entries, blobs, offset = [], [deflated], len(deflated)
    report: dict = {"tensors": {}}
    for name, arr in tensors.items():
        codec, extra, blob = _encode_tensor(name, arr, lossy, pe_tol)
        entries.append({"name": name, "shape": list(arr.shape), "codec": codec,
                        "offset": offset, "length": len(blob), **extra})
        blobs.append(blob)
        offset += len(blob)
        report["tensors"][name] = {"codec": codec, "n": int(arr.size), "bytes": len(blob)}
    payload = b"".join(blobs)
    header = {"format": FORMAT, "graph": {"offset": 0, "length": len(deflated)},
              "tensors": entries}
    decoded = decode_tensors(header, memoryview(payload))
    header["model_sha256"] = hashlib.sha256(_with_initializers(graph_bytes, decoded)).hexdigest()
    head = json.dumps(header, separators=(",", ":")).encode()
    data = MAGIC + struct.pack("<I", len(head)) + head + payload
    Path(out).write_bytes(data)
    raw = b"".join(a.astype("<f4").tobytes() for a in tensors.values())
    report.update({"bytes": len(data), "header_bytes": len(head), "graph_bytes": len(deflated),
                   "graph_raw_bytes": len(graph_bytes), "weights_raw_bytes": len(raw),
                   "weights_zlib_bytes": len(zlib.compress(raw, 9)),
                   "weights_coded_bytes": len(payload) - len(deflated)})
    report.update(_entropy_comparison(tensors))
    return report


def _entropy_comparison(tensors: dict[str, np.ndarray]) -> dict[str, int]:
    """Bytes of the cluster indices of every tensor, Huffman vs zlib (deflate) vs zstd."""
    idx = [np.unique(a.ravel(), return_inverse=True) for a in tensors.values()]
    idx = [(v, i) for v, i in idx if len(v) <= 256]
    if not idx:
        return {}
    packed = b"".join(i.astype(np.uint8).tobytes() for _, i in idx)
    out = {"indices_n": len(packed),
           "indices_huffman_bytes": sum(len(huffman.encode(i, len(v))) for v, i in idx),
           "indices_zlib_bytes": len(zlib.compress(packed, 9))}
    try:
        import zstandard
    except ImportError:
        return out
    out["indices_zstd_bytes"] = len(zstandard.ZstdCompressor(level=19).compress(packed))
    return out
