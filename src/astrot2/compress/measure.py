"""Model-only speed of a model folder: load latency, single-alert latency, throughput.

Torch-free.  Timings are medians of repeated runs of the ONNX Runtime session on
precomputed model inputs (no GP, no feature building), with the thread count given.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from astrot2.runtime import Classifier

__all__ = ["measure"]


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(folder: str | Path, x: np.ndarray, extra: np.ndarray, *, threads: int = 1,
            load_repeats: int = 30, single_repeats: int = 500, batch_size: int = 1024,
            batch_repeats: int = 7) -> dict[str, float]:
    """Speed figures of one model folder.

    Parameters
    ----------
    folder : str or Path
        A model folder loadable by :meth:`Classifier.load`.
    x : ndarray of float32, shape (n, n_steps, n_channels)
    extra : ndarray of float32, shape (n, n_extra)
        Real model inputs; tiled up to ``batch_size`` for the throughput run.

    Returns
    -------
    dict
        ``load_ms`` (median :meth:`Classifier.load`, manifest and checksum included),
        ``single_ms`` (median and ``single_p90_ms`` of one alert per call),
        ``alerts_per_s`` (batches of ``batch_size``), ``threads``.
    """
    clf = Classifier.load(folder, threads=threads)  # warm the file cache and imports
    load = _median_s(lambda: Classifier.load(folder, threads=threads), load_repeats)
    session = clf.session
    names = [i.name for i in session.get_inputs()]

    def feeds(rows: np.ndarray) -> dict[str, np.ndarray]:
        out = {"x": x[rows]}
        if "extra" in names:
            out["extra"] = extra[rows]
        return out

    one = feeds(np.arange(1))
    for _ in range(20):
        session.run(None, one)
    singles = []
    for i in range(single_repeats):
        f = feeds(np.array([i % len(x)]))
        start = time.perf_counter()
        session.run(None, f)
        singles.append(time.perf_counter() - start)
    big = feeds(np.arange(batch_size) % len(x))
    session.run(None, big)
    batch = _median_s(lambda: session.run(None, big), batch_repeats)
    return {"load_ms": 1e3 * load, "single_ms": 1e3 * statistics.median(singles),
            "single_p90_ms": 1e3 * float(np.percentile(singles, 90)),
            "alerts_per_s": batch_size / batch, "threads": threads}
