"""Deep model compression of t2 models (``astrot2 compress``).

Torch-free at import.  Inference needs only :mod:`astrot2.compress.huffman` and
:mod:`astrot2.compress.artefact` (NumPy + ONNX Runtime); the methods that retrain live in
:mod:`astrot2.compress.finetune` (PyTorch) and the conversions in
:mod:`astrot2.compress.convert` (``onnx`` and ``onnxruntime.quantization``).
"""
