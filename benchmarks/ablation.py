"""Ablations of the ``lsst`` preset: one ingredient off, same seed, split and settings.

Trains the model into ``--out`` (default ``out/ablation-WHAT``) and writes its test-split
summary to ``benchmarks/results/ablation-WHAT.json``.  A full training run each (about
half an hour on 2 cores).

Usage: python -m benchmarks.ablation --what no_augment|no_redshift|no_std [--out DIR]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from benchmarks.common import plasticc_objects, write_result

ABLATIONS = ("no_augment", "no_redshift", "no_std")


def ablated_config(what: str):
    """The ``lsst`` training configuration with one ingredient turned off."""
    from astrot2.train import preset

    base = preset("lsst")
    if what == "no_augment":
        return replace(base, n_augment=0)
    if what == "no_redshift":
        return replace(base, features=replace(base.features, use_redshift=False))
    if what == "no_std":
        return replace(base, features=replace(base.features, use_std=False))
    raise SystemExit(f"--what must be one of {ABLATIONS}")


def main() -> None:
    import torch

    from astrot2.train import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=ABLATIONS, required=True)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = ablated_config(args.what)
    metrics = train(plasticc_objects(), config, args.out or Path(f"out/ablation-{args.what}"))
    summary = {view: {k: metrics[view][k] for k in ("flat_log_loss", "kaggle_log_loss",
                                                      "accuracy", "macro_f1")}
               for view in ("whole", "alert_windows")}
    for view in summary:
        summary[view]["snia_roc_auc"] = metrics[view]["roc_auc"].get("SNIa")
    print("wrote", write_result(f"ablation-{args.what}", {
        "ablation": args.what, "epochs": metrics["epochs"],
        "validation_flat_log_loss": metrics["validation_flat_log_loss"], "test": summary}))


if __name__ == "__main__":
    main()
