"""``make demo``: the main job on the real ZTF alerts bundled with the package.

Runs what ``astrot2 classify`` runs (read -> light curves -> batched GP -> the shipped
``ztf`` model -> one row per alert, rejects included) on the bundled alerts, writes
``out/demo_classified.parquet``, prints the job summary and a per-class table, and draws
a few light curves (the best-sampled of each predicted class) with their GP mean +/- 1
std to ``out/demo_gp_fits.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from astrot2.gp import classified

__all__ = ["class_table", "demo_alerts_dir", "main"]


def demo_alerts_dir() -> Path:
    """Folder of the real ZTF alerts shipped with astrot2 (see its README for sources)."""
    return Path(str(resources.files("astrot2") / "demo_data" / "ztf"))


def class_table(table) -> str:
    """A text table per class: alerts whose top class it is, their mean top probability,
    and the class's mean probability over all classified alerts."""
    from astrot2.classes import CLASSES

    ok = classified(np.array(table.column("status").to_pylist(), dtype=object))
    top = np.array(table.column("top_class").to_pylist(), dtype=object)[ok]
    top_prob = table.column("top_prob").to_numpy(zero_copy_only=False)[ok]
    rows = [f"{'class':<16}{'top class of':>14}{'mean top prob':>15}{'mean prob':>11}"]
    for c in sorted(CLASSES, key=lambda c: -(top == c.name).sum()):
        sel = top == c.name
        mean_p = table.column(f"p_{c.slug}").to_numpy(zero_copy_only=False)[ok].mean() \
            if ok.any() else float("nan")
        rows.append(f"{c.name:<16}{int(sel.sum()):>14}"
                    f"{(top_prob[sel].mean() if sel.any() else float('nan')):>15.2f}"
                    f"{mean_p:>11.3f}")
    rows.append(f"{'rejected':<16}{int((~ok).sum()):>14}")
    return "\n".join(rows)


def _one_per_class(batch, top: list, n: int) -> list[int]:
    """Up to ``n`` light curves to draw: the best-sampled (most detections) of each top
    class first, so that the figure shows the classes, then the next best-sampled."""
    n_det = np.bincount(batch.owner, weights=batch.detected, minlength=len(batch))
    order = [int(i) for i in np.argsort(-n_det, kind="stable")]
    seen: set = set()
    first = [i for i in order if top[i] is not None and not (top[i] in seen or seen.add(top[i]))]
    return (first + [i for i in order if i not in first])[:n]


def main(argv: list[str] | None = None) -> int:
    """Classify the bundled alerts, print the summary and class table, draw a figure."""
    import pyarrow.parquet as pq

    from astrot2.classify import classify_files
    from astrot2.errors import Astrot2Error, require
    from astrot2.features import select_bands
    from astrot2.gp import fit_gp
    from astrot2.io import read_alerts
    from astrot2.runtime import Classifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    parser.add_argument("--model", default="ztf", help="shipped model name or folder")
    args = parser.parse_args(argv)
    try:  # the figure needs matplotlib: say so before the job, not after it
        require("plot", "matplotlib")
        clf = Classifier.load(args.model)
    except Astrot2Error as exc:
        print(f"astrot2: error: {exc}", file=sys.stderr)
        return 2
    output = args.out / "demo_classified.parquet"
    args.out.mkdir(parents=True, exist_ok=True)
    summary = classify_files([demo_alerts_dir()], output, clf, progress=False)
    print(json.dumps(summary, indent=2))
    table = pq.read_table(output)
    print(class_table(table))

    from astrot2.plotting import plot_gp_fits

    batch = select_bands(read_alerts(demo_alerts_dir()), clf.manifest.features)
    top = table.column("top_class").to_pylist()
    prob = table.column("top_prob").to_pylist()
    most = _one_per_class(batch, top, 6)
    shown = batch.take(most)  # GP fits of these few only: the job above fitted them all
    gp = fit_gp(shown, clf.manifest.gp)
    titles = [f"{batch.object_id[i]}: {top[i] or '-'} ({prob[i] or 0:.2f})" for i in most]
    path = plot_gp_fits(shown, gp, range(len(most)), args.out / "demo_gp_fits.png",
                        titles=titles)
    print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
