"""Ablations of a shipped model's preset: one ingredient off, same seed, split and settings.

Trains the model into ``--out`` (default ``out/ablation-[ztf-]WHAT``) and writes its
test-split summary to ``benchmarks/results/ablation-WHAT.json`` (``lsst``) or
``ablation-ztf-WHAT.json``.  A full training run each (``lsst``: about half an hour on
2 cores; ``ztf``: about 15 minutes on one core).

Ingredients: ``no_augment`` (no augmented copies), ``no_std`` (GP mean only),
``no_redshift`` (``lsst``: no host photo-z inputs; ``ztf`` has none), ``no_resample``
(``ztf``: no training copies re-observed as low-redshift ZTF alerts).

Usage: python -m benchmarks.ablation --what no_augment|no_redshift|no_std|no_resample
[--model lsst|ztf] [--out DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from benchmarks.common import plasticc_objects, write_result

ABLATIONS = ("no_augment", "no_redshift", "no_std", "no_resample")


def ablated_config(what: str, model: str = "lsst"):
    """The training configuration of ``model`` with one ingredient turned off."""
    from astrot2.train import preset

    base = preset(model)
    if what == "no_augment":
        return replace(base, n_augment=0)
    if what == "no_redshift" and base.features.use_redshift:
        return replace(base, features=replace(base.features, use_redshift=False))
    if what == "no_std":
        return replace(base, features=replace(base.features, use_std=False))
    if what == "no_resample" and base.n_resample:
        return replace(base, n_resample=0, resample=None)
    raise SystemExit(f"--what {what}: not an ingredient of the {model} preset")


def main() -> None:
    import torch

    from astrot2.train import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=ABLATIONS, required=True)
    parser.add_argument("--model", choices=("lsst", "ztf"), default="lsst")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = ablated_config(args.what, args.model)
    name = args.what if args.model == "lsst" else f"ztf-{args.what}"
    metrics = train(plasticc_objects(), config, args.out or Path(f"out/ablation-{name}"))
    views = [v for v in ("whole", "alert_windows", "survey_windows") if v in metrics]
    summary = {view: {k: metrics[view][k] for k in ("flat_log_loss", "kaggle_log_loss",
                                                      "accuracy", "macro_f1")}
               for view in views}
    for view in summary:
        summary[view]["snia_roc_auc"] = metrics[view]["roc_auc"].get("SNIa")
    print("wrote", write_result(f"ablation-{name}", {
        "ablation": args.what, "model": args.model, "epochs": metrics["epochs"],
        "validation_flat_log_loss": metrics["validation_flat_log_loss"], "test": summary}))


if __name__ == "__main__":
    main()
