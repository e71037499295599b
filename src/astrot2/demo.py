"""``make demo``: run the pipeline on the real ZTF alerts bundled with the package.

Read alerts -> light curves -> batched GP fits on the t2 grid -> the shipped ``ztf`` model
(when installed) -> class probabilities.  Prints the summary and a per-class table, writes
the probabilities to ``out/demo_classified.parquet`` and a figure of a few light curves
with their GP mean +/- 1 std and predicted class to ``out/demo_gp_fits.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["demo_alerts_dir", "main"]


def demo_alerts_dir() -> Path:
    """Folder of the real ZTF alerts shipped with astrot2 (see its README for sources)."""
    return Path(str(resources.files("astrot2") / "demo_data" / "ztf"))


def main(argv: list[str] | None = None) -> int:
    """Read the bundled alerts, fit their GPs, print a summary and write a figure."""
    from astrot2.gp import STATUS_NAMES, fit_gp
    from astrot2.io import read_alerts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    batch = read_alerts(demo_alerts_dir())
    t_read = time.perf_counter() - start
    start = time.perf_counter()
    result = fit_gp(batch)
    t_gp = time.perf_counter() - start
    summary = batch.summary()
    statuses, counts = np.unique(result.status, return_counts=True)
    summary["gp"] = {
        "status": {STATUS_NAMES[int(s)]: int(c) for s, c in zip(statuses, counts, strict=True)},
        "median_length_scale_days": float(np.nanmedian(result.length_scale)),
        "median_points_fitted": float(np.median(result.n_points)),
    }
    summary["seconds"] = {"read": round(t_read, 4), "gp": round(t_gp, 4)}
    titles = None
    from astrot2.runtime import shipped_models

    if "ztf" in shipped_models():
        import pyarrow.parquet as pq

        from astrot2.classify import classify_batch
        from astrot2.runtime import Classifier

        start = time.perf_counter()
        clf = Classifier.load("ztf")
        table = classify_batch(clf, batch)
        summary["seconds"]["classify (GP + model)"] = round(time.perf_counter() - start, 4)
        args.out.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, args.out / "demo_classified.parquet")
        top = [t or "-" for t in table.column("top_class").to_pylist()]
        prob = table.column("top_prob").to_pylist()
        counts: dict[str, int] = {}
        for t in top:
            counts[t] = counts.get(t, 0) + 1
        summary["model"] = clf.name
        summary["top_class_counts"] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
        titles = [f"{batch.object_id[i]}: {top[i]} ({prob[i]:.2f})" for i in range(len(batch))]
    print(json.dumps(summary, indent=2))

    try:
        from astrot2.plotting import plot_gp_fits
    except ImportError:  # pragma: no cover - matplotlib is optional
        print("matplotlib not installed: no figure", file=sys.stderr)
        return 0
    n_det = np.bincount(batch.owner, weights=batch.detected, minlength=len(batch))
    most = np.argsort(-n_det, kind="stable")[:6]  # the best-sampled light curves
    path = plot_gp_fits(batch, result, most, args.out / "demo_gp_fits.png",
                        titles=None if titles is None else [titles[i] for i in most])
    print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
