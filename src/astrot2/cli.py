"""The ``astrot2`` command line.

Each subcommand imports what it needs when it runs, so ``astrot2 --help`` and the
inference commands start fast and never import torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from astrot2.errors import Astrot2Error

if TYPE_CHECKING:
    from astrot2.lightcurves import LightCurveBatch

__all__ = ["main"]

# What a command imports beyond the base install: (pip extra, top-level modules), checked
# by main() before the command starts (astrot2.errors.require), as each subparser's
# ``needs`` default.
_TRAIN = ("train", "torch", "onnx", "sklearn", "matplotlib")
_EVALUATE = ("train", "sklearn", "matplotlib")
_COMPANION = ("train", "sklearn", "onnx", "matplotlib")
_SIMULATE = ("train", "sncosmo")
_EXPLAIN = ("explain", "onnx", "matplotlib")
_SPARK = ("spark", "pyspark", "pandas")


# ---------------------------------------------------------------------------- flag values
def _number(kind: type, low: float, *, strict: bool = False, high: float | None = None):
    """An argparse ``type=``: ``kind`` (int or float) in ``[low, high]`` (``(low, ...``
    with ``strict``); argparse's error then names the flag and the value."""
    bound = f"> {low}" if strict else f">= {low}"
    what = ("an integer " if kind is int else "a number ") + bound + (
        f" and <= {high}" if high is not None else "")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if (value <= low if strict else value < low) or (high is not None and value > high) \
                or value != value:  # NaN
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse's "invalid <name> value" wording
    return parse


positive_int = _number(int, 1)
non_negative_int = _number(int, 0)
positive_float = _number(float, 0.0, strict=True)
non_negative_float = _number(float, 0.0)
fraction = _number(float, 0.0, high=1.0)


class _HelpFormatter(argparse.HelpFormatter):
    """``--help`` shows each option's default, unless its help already says it or there
    is none to show (None, a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text  # 0 is shown, False is not
                or any(action.default is v for v in (None, False, argparse.SUPPRESS))):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """The parser of astrot2 and its subcommands: defaults in ``--help``, and a bad
    argument is one line (the flag, the value, where to look) and status 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _cmd_read(args: argparse.Namespace) -> int:
    """``astrot2 read``: ingest alerts, print a summary, optionally write light curves."""
    from astrot2.io import read_alerts
    from astrot2.utils import check_writable

    if args.output is not None:
        check_writable(args.output, "-o")
    batch = read_alerts(args.inputs, args.format, metadata=args.metadata,
                        include_forced=not args.detections_only)
    if args.output is not None:
        import pyarrow.parquet as pq

        from astrot2.utils import atomic_path

        with atomic_path(args.output) as tmp:
            pq.write_table(batch.to_arrow(), tmp)
    print(json.dumps(batch.summary(), indent=2))
    return 0


def _plasticc(args: argparse.Namespace):
    """The labelled PLAsTiCC training set (``--data``: where ``astrot2 data fetch`` keeps it)."""
    from astrot2.data import fetch_plasticc
    from astrot2.io.plasticc import read_plasticc

    files = fetch_plasticc(args.data, progress=False)
    return read_plasticc(files.lightcurves, files.metadata)


def _simulation_pointings(survey: str, path: Path | None) -> dict:
    """The visits ``astrot2 simulate`` observes on: ZTF's observing log, or (LSST) the
    cadences of PLAsTiCC light curves with their metadata file beside them."""
    import os

    from astrot2.errors import ConfigError
    from astrot2.simulate import pointings_from_light_curves, read_pointings

    default = {"ztf": Path("surveys", "ztf_pointings.csv.gz"),
               "lsst": Path("plasticc", "training_set.csv.gz")}[survey]
    if path is None and os.environ.get("ASTROT2_DATA"):
        path = Path(os.environ["ASTROT2_DATA"]) / default
    if survey == "ztf":
        if path is None or not Path(path).is_file():
            raise ConfigError("--pointings: the ZTF observing log (expMJD, filter, "
                              "fiveSigmaDepth, _ra, _dec) is needed; it ships as "
                              "redback/tables/ztf.tar.gz in the PyPI package redback==1.20.0")
        return read_pointings(path)
    from astrot2.data import default_data_dir
    from astrot2.io import read_file

    path = Path(path) if path is not None else default_data_dir() / default
    stem = path.name.removesuffix(".gz").removesuffix(".csv")
    beside = [path.with_name(f"{stem}_metadata.csv{gz}") for gz in ("", ".gz")]
    metadata = next((m for m in beside if m.is_file()), None)
    if not path.is_file() or metadata is None:
        raise ConfigError(f"--pointings: LSST cadences come from PLAsTiCC light curves with "
                          f"their metadata beside them ({path}, {beside[0].name}): "
                          "astrot2 data fetch plasticc, or set ASTROT2_DATA")
    return pointings_from_light_curves(read_file(path, format="plasticc", metadata=metadata))


def _cmd_simulate(args: argparse.Namespace) -> int:
    """``astrot2 simulate``: supernova light curves on a survey's real (ZTF) or simulated
    (LSST: PLAsTiCC) cadence."""
    import numpy as np
    import pyarrow.parquet as pq

    from astrot2.simulate import SimulateConfig, simulate
    from astrot2.utils import atomic_path, check_writable

    check_writable(args.output, "-o")
    config = SimulateConfig(survey=args.survey, limit_mag=args.limit_mag,
                            templates=args.templates, ia_model=args.ia_model,
                            span=args.span)
    batch = simulate(args.n, _simulation_pointings(args.survey, args.pointings), config,
                     seed=args.seed, workers=args.workers)
    with atomic_path(args.output) as tmp:
        pq.write_table(batch.to_arrow(), tmp)
    counts = dict(zip(*np.unique(batch.extra["type"].astype(str), return_counts=True),
                      strict=True))
    print(json.dumps({"light_curves": len(batch), "types": {k: int(v) for k, v in
                                                             counts.items()},
                      "output": str(args.output)}, indent=2))
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    """``astrot2 data fetch NAME``: obtain (and verify) a data set into the cache."""
    from astrot2.data import fetch_dataset, fetch_plasticc

    if args.dataset != "plasticc":
        source = {"zenodo": "remote", "pypi": "remote"}.get(args.source, args.source)
        path = fetch_dataset(args.dataset, args.dest, source=source)
        print(json.dumps({args.dataset: str(path)}, indent=2))
        return 0
    files = fetch_plasticc(args.dest, source=args.source)
    print(json.dumps({k: str(v) for k, v in vars(files).items()}, indent=2))
    return 0


def _model_ref(args: argparse.Namespace, inputs: Sequence[str | Path] = ()):
    """The :class:`~astrot2.modelref.ModelRef` of ``--model`` (and ``--companion``), parsed
    once here; without ``--model``, :func:`~astrot2.modelref.default_model` of the inputs."""
    from astrot2.modelref import ModelRef, default_model

    companion = getattr(args, "companion", False) or None
    if args.model is None:
        return default_model(inputs, args.format, companion=bool(companion))
    return ModelRef.parse(args.model, companion=companion)


def _cmd_classify(args: argparse.Namespace) -> int:
    """``astrot2 classify``: alerts in, one row of class probabilities per alert out."""
    from astrot2.classify import classify_files
    from astrot2.runtime import Classifier
    from astrot2.utils import check_writable

    check_writable(args.output, "-o")  # before the model loads (classify_files checks too)
    if args.on_error == "skip" and args.errors_file is not None:
        check_writable(args.errors_file, "--errors-file")
    clf = Classifier.load(_model_ref(args, args.inputs), threads=args.threads,
                          prior=args.prior)
    summary = classify_files(args.inputs, args.output, clf, format=args.format,
                             batch_size=args.batch_size, min_points=args.min_points,
                             metadata=args.metadata, progress=not args.quiet,
                             on_error=args.on_error, errors_file=args.errors_file,
                             uncertainty=args.uncertainty, tta=args.tta or 0,
                             include_forced=not args.detections_only)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    """``astrot2 models``: list the shipped models."""
    from astrot2.manifest import read_manifest
    from astrot2.modelref import COMPANION_SUFFIX, shipped_models

    rows = []
    for name, folder in shipped_models().items():
        m = read_manifest(folder)
        test = m.raw.get("metrics", {}).get("test_split", {})
        rows.append({"name": name, "version": m.version, "survey": m.survey.name,
                     "bands": list(m.features.bands), "bytes": m.raw["onnx"]["bytes"],
                     "file": m.model_file.name,
                     "kind": m.raw["onnx"].get("kind", m.model_file.suffix.lstrip(".")),
                     "path": str(folder),
                     "flat_log_loss": {k: round(v["flat_log_loss"], 4)
                                       for k, v in test.items()},
                     "accuracy": {k: round(v["accuracy"], 4) for k, v in test.items()},
                     "compression": m.raw.get("compression", {}).get("method")})
        companion = m.raw.get("companion")
        if companion is not None:  # opt-in: NAME+companion
            ctest = companion.get("metrics", {}).get("test_split", {})
            rows[-1]["companion"] = {
                "use": f"{name}{COMPANION_SUFFIX}", "bytes": companion["bytes"],
                "feature_set": companion.get("feature_set", "points"),
                "table_bytes": sum(companion[k]["bytes"] for k in ("templates", "cc_templates")
                                   if k in companion),
                "flat_log_loss": {k: round(v["flat_log_loss"], 4) for k, v in ctest.items()},
                "accuracy": {k: round(v["accuracy"], 4) for k, v in ctest.items()}}
    print(json.dumps(rows, indent=2))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    """``astrot2 train``: train t2 on the PLAsTiCC training set (needs the train extra), or
    with ``--real DIR`` fine-tune a pre-trained network on real labelled light curves."""
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.real is not None:
        return _train_real(args, device)
    if args.representative:
        return _train_representative(args, device)
    from astrot2.errors import ConfigError

    if device != "cpu":
        raise ConfigError("--device: the PLAsTiCC training runs on the CPU only (--device "
                          "cpu); --real fine-tuning can use cuda")
    if args.members is not None:
        raise ConfigError("--members: an ensemble teacher is for fine-tuning (--real or "
                          "--representative)")
    if args.set:
        raise ConfigError("--set: fine-tuning settings (--real or --representative); the "
                          "PLAsTiCC training takes --epochs, --n-augment, ...")
    if args.no_test_split:
        raise ConfigError("--no-test-split: for fine-tuning (--real or --representative); "
                          "the PLAsTiCC training reports its test split as it always has")
    from astrot2.train import preset, train

    batch = _plasticc(args)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("n_augment", args.n_augment),
                                   ("seed", args.seed), ("init_seed", args.init_seed),
                                   ("forecast_weight", args.forecast_weight),
                                   ("redshift_dropout", args.redshift_dropout))
                 if v is not None}
    out = args.out or Path("models") / args.model
    train(batch, preset(args.model, **overrides), out)
    print(f"model written to {out}")
    return 0


def _train_real(args: argparse.Namespace, device: str) -> int:
    """``astrot2 train --model ztf --real DIR``: see :mod:`astrot2.train_real`."""
    from dataclasses import replace

    from astrot2.errors import ConfigError
    from astrot2.io.labelled import read_labelled
    from astrot2.manifest import with_settings
    from astrot2.train_real import FinetuneConfig, train_real

    if args.model != "ztf":
        raise ConfigError("--real: real labelled light curves exist for ZTF only "
                          "(--model ztf)")
    labelled = read_labelled(args.real)
    print(f"{len(labelled.batch)} labelled objects {labelled.class_counts()}; kept out "
          f"{labelled.kept_out}")
    config = FinetuneConfig(init=args.init or "ztf-plasticc")
    if args.seed is not None:
        config = replace(config, seed=args.seed, real=replace(config.real, seed=args.seed))
    if args.members is not None:
        config = replace(config, members=args.members)
    config = with_settings(config, args.set)
    simulated, record = _read_simulated(args.simulated)
    plasticc = None
    try:  # the PLAsTiCC classes the real sets lack, and its g, r figures after training
        plasticc = _plasticc(args)
    except Astrot2Error as exc:
        print(f"no PLAsTiCC training set ({exc}): trained on the real (and simulated) "
              "supernovae only")
    out = args.out or Path("models") / "ztf"
    command = "astrot2 train --model ztf --real REAL_DIR" + (
        " --simulated SIM_FILE" if simulated is not None else "") + (
        f" --init {args.init}" if args.init not in (None, "ztf-plasticc") else "") + (
        f" --seed {args.seed}" if args.seed is not None else "") + (
        f" --members {args.members}" if args.members is not None else "") + _set_suffix(args)
    train_real(labelled.batch, config, out, data_name=args.real.name, simulated=simulated,
               plasticc=plasticc, simulated_record=record, command=command, device=device)
    if plasticc is not None and not args.no_test_split:
        from astrot2.calibration import refresh_metrics

        refresh_metrics(out, plasticc)
    print(f"model written to {out}")
    return 0


def _set_suffix(args: argparse.Namespace) -> str:
    """The ``--set`` part of a fine-tuning run's re-creating command ("" without it)."""
    return (" --set " + " ".join(args.set)) if args.set else ""


def _read_simulated(path: Path | None, want_sha256: str | None = None
                    ) -> tuple[LightCurveBatch | None, dict | None]:
    """The simulated light curves of ``--simulated`` (``astrot2 simulate`` output) and
    what a manifest records of them (their sha256); ``(None, None)`` without the option.

    Raises
    ------
    ConfigError
        The file's sha256 is not ``want_sha256`` (the file a network was trained on).
    """
    if path is None:
        return None, None
    from astrot2.errors import ConfigError
    from astrot2.io.labelled import read_labelled
    from astrot2.utils import sha256_file

    if not path.is_file():
        raise ConfigError(f"--simulated {path}: no such file (astrot2 simulate writes one)")
    digest = sha256_file(path)
    if want_sha256 is not None and digest != want_sha256:
        raise ConfigError(f"--simulated {path}: not the file the network was trained on "
                          f"(sha256 {want_sha256[:12]}... in its manifest)")
    return read_labelled(path).batch, {"file_sha256": digest}


def _train_representative(args: argparse.Namespace, device: str) -> int:
    """``astrot2 train --model lsst --representative``: see
    :mod:`astrot2.train_representative`."""
    from dataclasses import replace

    from astrot2.errors import ConfigError
    from astrot2.manifest import with_settings
    from astrot2.train_representative import RepresentativeTrainConfig, train_representative

    if args.model != "lsst":
        raise ConfigError("--representative: the representative views are those of the "
                          "lsst model's PLAsTiCC split (--model lsst)")
    config = RepresentativeTrainConfig(init=args.init or "lsst-plasticc")
    if args.seed is not None:
        config = replace(config, seed=args.seed)
    if args.members is not None:
        config = replace(config, members=args.members)
    config = with_settings(config, args.set)
    plasticc = _plasticc(args)
    simulated, record = _read_simulated(args.simulated)
    out = args.out or Path("models") / "lsst"
    command = "astrot2 train --model lsst --representative" + (
        " --simulated SIM_FILE" if simulated is not None else "") + (
        f" --init {args.init}" if args.init not in (None, "lsst-plasticc") else "") + (
        f" --seed {args.seed}" if args.seed is not None else "") + (
        f" --members {args.members}" if args.members is not None else "") + _set_suffix(args)
    train_representative(plasticc, config, out, simulated=simulated, simulated_record=record,
                         command=command, device=device)
    if not args.no_test_split:
        from astrot2.calibration import refresh_metrics

        refresh_metrics(out, plasticc)  # its PLAsTiCC test-split figures (astrot2 models)
    print(f"model written to {out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """``astrot2 evaluate``: a model's metrics on its held-out PLAsTiCC split, with a report."""
    from astrot2.evaluate import evaluate_model, plot_confusion

    batch = _plasticc(args)
    report = evaluate_model(_model_ref(args), batch, split=args.split, threads=args.threads)
    out = args.output or Path("out") / f"evaluate-{Path(str(args.model)).name}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    keys = [k for k in ("whole", "alert_windows", "survey_windows") if k in report]
    for key in keys:
        plot_confusion(report[key], out / f"confusion-{key}.png",
                       f"{report['model']} - {args.split} split, {key.replace('_', ' ')}")
    summary = {key: {k: round(report[key][k], 4) for k in
                     ("flat_log_loss", "kaggle_log_loss", "accuracy", "macro_f1")}
               for key in keys}
    print(json.dumps({"model": report["model"], "split": args.split,
                      "n_objects": report["n_objects"], **summary,
                      "difference_vs_manifest": report["difference"],
                      "report": str(out)}, indent=2))
    return 0


def _cmd_companion(args: argparse.Namespace) -> int:
    """``astrot2 companion``: fit a model's feature companion and attach it."""
    from astrot2.companion_fit import CompanionConfig, check_specialist, fit_companion

    config = CompanionConfig(max_iter=args.max_iter, max_leaf_nodes=args.max_leaf_nodes,
                             feature_set=args.features, ia_leaves=args.ia_leaves)
    check_specialist(config, args.real is not None)
    batch = _plasticc(args)
    ref = _model_ref(args)
    real_views = None
    if args.real is not None:
        from astrot2.io.labelled import read_labelled
        from astrot2.manifest import read_manifest
        from astrot2.train_real import companion_views

        want = read_manifest(ref.folder).raw["training"].get("simulated", {}).get(
            "file_sha256")
        simulated, _ = _read_simulated(args.simulated, want)
        real_views = companion_views(ref.folder, read_labelled(args.real).batch,
                                     simulated=simulated, plasticc=batch)
        simulated, record = None, None  # inside the real views
    else:  # a representative run's trees may learn from simulated light curves too
        simulated, record = _read_simulated(args.simulated)
    section = fit_companion(ref, batch, config, write=not args.dry_run,
                            real_views=real_views, metrics=not args.no_test_split,
                            simulated=simulated, simulated_record=record)
    print(json.dumps({k: v for k, v in section.items() if k != "features"}, indent=2))
    return 0


def _cmd_spark_classify(args: argparse.Namespace) -> int:
    """``astrot2 spark classify``: alert files to a Parquet folder with Spark."""
    from astrot2.spark import classify_files_spark, spark_session

    spark = spark_session(args.master, arrow_batch_size=args.arrow_batch_size)
    try:
        summary = classify_files_spark(spark, args.inputs, args.output,
                                       model=_model_ref(args, args.inputs),
                                       format=args.format, batch_size=args.batch_size,
                                       partitions=args.partitions,
                                       include_forced=not args.detections_only)
    finally:
        spark.stop()
    print(json.dumps(summary, indent=2))
    return 0


def _stream_model(args: argparse.Namespace):
    """``--model`` of ``astrot2 spark stream``; without it, the shipped model of
    ``--format``'s survey, and Rubin's when no format is given (no file is there yet to
    tell the survey)."""
    if args.model is None:
        from astrot2.modelref import default_model

        return default_model(format=args.format or "rubin")
    return _model_ref(args)


def _cmd_spark_stream(args: argparse.Namespace) -> int:
    """``astrot2 spark stream``: classify alert files arriving in a folder, exactly once."""
    from astrot2.spark import spark_session, start_stream

    spark = spark_session(args.master, arrow_batch_size=args.arrow_batch_size)
    try:
        query = start_stream(spark, args.input_dir, args.output_dir, args.checkpoint,
                             model=_stream_model(args), format=args.format,
                             trigger_seconds=args.trigger_seconds,
                             available_now=args.available_now,
                             max_files_per_trigger=args.max_files_per_trigger,
                             batch_size=args.batch_size,
                             include_forced=not args.detections_only)
        query.awaitTermination()
    finally:
        spark.stop()
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    """``astrot2 compress``: every compression method on a model folder, measured."""
    from astrot2.compress.pipeline import METHODS, config_from, markdown_table, run, ship_to

    batch = _plasticc(args)
    name = Path(str(args.model)).name
    out = args.out or Path("out") / f"compress-{name}"
    methods = args.methods or list(METHODS)
    results = run(_model_ref(args), out, batch, methods=methods, threads=args.threads,
                  config=config_from(args.set, tolerance=args.tolerance,
                                     teachers=tuple(str(t) for t in args.teachers)))
    (out / f"compression-{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"compression-{name}.md").write_text(markdown_table(results["variants"]))
    if args.ship_to is not None:
        ship_to(results, args.ship_to)
    print(markdown_table(results["variants"]))
    print(f"ship: {results['ship']}" + (f" -> {args.ship_to}" if args.ship_to else ""))
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    """``astrot2 explain``: one alert's class activation maps, light curve and probabilities."""
    from astrot2.explain import explain_file, figure_path
    from astrot2.utils import check_writable

    check_writable(figure_path(args.output, args.alert_id), "-o")
    summary = explain_file(args.input, args.alert_id, args.output,
                           model=_model_ref(args, [args.input]),
                           format=args.format, metadata=args.metadata,
                           n_classes=args.classes, include_forced=not args.detections_only)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    """``astrot2 calibrate``: temperature scaling on the validation split, into the manifest."""
    from astrot2.calibration import run_calibration

    out = args.output or Path("out") / f"calibrate-{Path(str(args.model)).name}"
    report = run_calibration(_model_ref(args), out, data=args.data, write=not args.dry_run,
                             threads=args.threads)
    cal = report["calibration"]
    print(json.dumps({"model": report["model"], "temperature": round(cal["temperature"], 4),
                      "ece": cal["ece"], "manifest": report.get("manifest"),
                      "report": str(out)}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``astrot2`` command."""
    from astrot2 import __version__
    from astrot2.classes import CLASSES
    from astrot2.companion import FEATURE_SETS
    from astrot2.companion_fit import CompanionConfig
    from astrot2.io import FORMATS
    from astrot2.simulate import IA_MODELS, SPANS, TEMPLATE_FAMILIES

    parser = _Parser(
        prog="astrot2",
        description="Classify astronomical transient alerts with a compressed "
        "Time-Series Transformer.",
    )
    parser.add_argument("--version", action="version", version=f"astrot2 {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    read = sub.add_parser("read", help="read alert files and summarise their light curves")
    read.add_argument("inputs", nargs="+", type=Path, help="alert files or directories")
    read.add_argument("--format", choices=FORMATS, default=None,
                      help="input format (default: detected from each file)")
    read.add_argument("--metadata", type=Path, default=None,
                      help="PLAsTiCC metadata CSV (host photo-z, E(B-V))")
    read.add_argument("--detections-only", action="store_true",
                      help="Rubin/ELAsTiCC alerts: ignore their forced photometry "
                      "(prvDiaForcedSources; read as non-detections by default, as "
                      "astrot2 classify reads them)")
    read.add_argument("-o", "--output", type=Path, default=None,
                      help="write the light curves to this Parquet file")
    read.set_defaults(func=_cmd_read)

    cl = sub.add_parser("classify", help="classify alerts: one output row per input alert")
    cl.add_argument("inputs", nargs="+", type=Path, help="alert files or directories")
    cl.add_argument("-o", "--output", type=Path, required=True,
                    help="output file: .parquet, .csv or .json")
    cl.add_argument("--model", default=None,
                    help="shipped model name (ztf, lsst) or model folder; default: the "
                    "shipped model of the inputs' survey")
    cl.add_argument("--companion", action="store_true",
                    help="combine the network with the model's feature companion "
                    "(same as --model NAME+companion)")
    cl.add_argument("--prior", default="flat",
                    help="class mix the probabilities are for: flat (every class alike, "
                    "the default), bts (the Bright Transient Survey's mix: SN Ia 72 %%, "
                    "SN II 18 %%, ...), model (the mix the model was trained with) or a "
                    "JSON file of class name -> weight")
    cl.add_argument("--format", choices=FORMATS, default=None)
    cl.add_argument("--metadata", type=Path, default=None, help="PLAsTiCC metadata CSV")
    cl.add_argument("--batch-size", type=positive_int, default=8192,
                    help="light curves per chunk")
    cl.add_argument("--detections-only", action="store_true",
                    help="Rubin/ELAsTiCC alerts: ignore their forced photometry "
                    "(prvDiaForcedSources; read as non-detections by default, as in the "
                    "light curves the models were trained on)")
    cl.add_argument("--min-points", type=non_negative_int, default=1,
                    help="reject light curves with fewer points")
    cl.add_argument("--threads", type=positive_int, default=None,
                    help="GP and ONNX Runtime threads (default: all cores)")
    cl.add_argument("--quiet", action="store_true", help="no progress bar")
    cl.add_argument("--on-error", choices=["fail", "skip"], default="fail",
                    help="an unreadable input file: stop with its error (fail, default) or "
                    "leave it out, list it in the summary and the errors file (skip)")
    cl.add_argument("--errors-file", type=Path, default=None,
                    help="with --on-error skip: JSON list of skipped files (default "
                    "OUTPUT.errors.json)")
    cl.add_argument("--uncertainty", action="store_true",
                    help="add an entropy column (predictive entropy of the calibrated "
                    "probabilities, nats)")
    cl.add_argument("--tta", type=positive_int, default=None, metavar="K",
                    help="test-time augmentation with K copies (K times slower): adds "
                    "tta_top_class, tta_top_prob, tta_top_std, tta_entropy columns "
                    "(default: off)")
    cl.set_defaults(func=_cmd_classify)

    data = sub.add_parser("data", help="obtain data sets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="download (or copy) and verify a data set")
    fetch.add_argument("dataset", choices=["plasticc", "bts", "alerce", "ztf-pointings",
                                           "sncosmo"],
                       help="plasticc (training set), bts (real labelled ZTF light curves), "
                       "alerce (30 labelled SNe), ztf-pointings (observing log), sncosmo "
                       "(supernova templates, unpacked)")
    fetch.add_argument("--dest", type=Path, default=None,
                       help="destination folder (default: $ASTROT2_CACHE or ~/.cache/astrot2)")
    fetch.add_argument("--source", choices=["auto", "local", "zenodo", "pypi"], default="auto",
                       help="where to get it: $ASTROT2_DATA folder, or the public source "
                       "(plasticc: Zenodo or the snmachine wheel on PyPI; bts: its public "
                       "archive; ztf-pointings: the redback wheel on PyPI); auto tries "
                       "them in that order")
    fetch.set_defaults(func=_cmd_data_fetch)

    models = sub.add_parser("models", help="list the models shipped with astrot2")
    models.set_defaults(func=_cmd_models)

    tr = sub.add_parser("train", help="train t2 on the PLAsTiCC training set")
    tr.add_argument("--model", choices=["lsst", "ztf"], default="lsst",
                    help="the model (preset) trained")
    tr.add_argument("--out", type=Path, default=None, help="output folder (models/NAME)")
    tr.add_argument("--data", type=Path, default=None,
                    help="data folder for the PLAsTiCC files (default: the cache)")
    tr.add_argument("--epochs", type=positive_int, default=None,
                    help="training epochs (default: the --model preset's)")
    tr.add_argument("--n-augment", type=non_negative_int, default=None,
                    help="augmented copies per object (default: the --model preset's)")
    tr.add_argument("--seed", type=non_negative_int, default=None,
                    help="seed of the split, augmentation and evaluation windows (default 0)")
    tr.add_argument("--init-seed", type=non_negative_int, default=None,
                    help="seed of the weights and batch order only (default: --seed)")
    tr.add_argument("--forecast-weight", type=non_negative_float, default=None,
                    help="weight of the auxiliary forecasting objective (default 0: off)")
    tr.add_argument("--redshift-dropout", type=fraction, default=None,
                    help="fraction of the augmented copies' objects shown without host "
                    "photo-z (default 0: off; real alerts often carry none)")
    tr.add_argument("--real", type=Path, default=None,
                    help="folder of real labelled ZTF light curves (astrot2 data fetch bts): "
                    "fine-tune --init on them instead of training on PLAsTiCC")
    tr.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                    help="where to fine-tune with --real or --representative (auto: a CUDA "
                    "GPU when PyTorch sees one; the shipped models are trained on the CPU)")
    tr.add_argument("--simulated", type=Path, default=None,
                    help="with --real or --representative: simulated light curves (astrot2 "
                    "simulate --survey ztf|lsst -o FILE) "
                    "added to the training views")
    tr.add_argument("--representative", action="store_true",
                    help="with --model lsst: fine-tune --init on the PLAsTiCC split and its "
                    "representative copies (moved to a test-like redshift and depth)")
    tr.add_argument("--init", default=None,
                    help="with --real or --representative: the pre-trained model fine-tuned "
                    "(default: ztf-plasticc, the network trained on PLAsTiCC re-observed as "
                    "ZTF; lsst-plasticc, the network trained on PLAsTiCC)")
    tr.add_argument("--members", type=positive_int, default=None,
                    help="with --real or --representative: fine-tune N runs first and teach "
                    "the compressed network their mean probabilities (default 1: the run "
                    "itself)")
    tr.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="with --real or --representative: fine-tuning settings other than "
                    "the shipped recipe's, e.g. steps=9000 sparsity=0.44 plain_no_photoz=0.5 "
                    "(astrot2.train_real.TuneConfig and the run's own fields); recorded in "
                    "the manifest's command")
    tr.add_argument("--no-test-split", action="store_true",
                    help="with --real or --representative: leave the PLAsTiCC test split "
                    "unscored (a candidate, chosen on validation; score the one that ships "
                    "once: astrot2 evaluate)")
    tr.set_defaults(func=_cmd_train, needs=_TRAIN)

    sm = sub.add_parser("simulate", help="simulate supernova light curves on a survey's "
                        "cadence: ZTF's real observing log, LSST's PLAsTiCC cadences (needs "
                        "the train extra: sncosmo)")
    sm.add_argument("--survey", choices=["ztf", "lsst"], default="ztf",
                    help="survey whose cadence is used")
    sm.add_argument("--n", type=positive_int, default=1000, help="light curves kept")
    sm.add_argument("-o", "--output", type=Path, required=True, help="Parquet file to write")
    sm.add_argument("--seed", type=non_negative_int, default=0, help="random seed")
    sm.add_argument("--limit-mag", type=float, default=None,
                    help="kept objects peak brighter than this (default: ztf 19.5, lsst 26, "
                    "where the 2-detection trigger alone selects)")
    sm.add_argument("--pointings", type=Path, default=None,
                    help="ztf: the observing log CSV (default $ASTROT2_DATA/surveys/"
                    "ztf_pointings.csv.gz); lsst: PLAsTiCC light curves, NAME_metadata.csv "
                    "beside them (default $ASTROT2_DATA/plasticc/training_set.csv.gz)")
    sm.add_argument("--templates", choices=TEMPLATE_FAMILIES, default="all",
                    help="core-collapse templates drawn (SNe Ia: SALT2): all, v19 (Vincenzi "
                    "et al. 2019) or classic (SNANA, Nugent, Sako et al. 2011); disjoint "
                    "families give a training and an independent check simulation")
    sm.add_argument("--ia-model", choices=sorted(IA_MODELS), default="salt2",
                    help="SN Ia model: salt2 (2.4, stretch and colour) or hsiao (Hsiao et "
                    "al. 2007, one template): a check simulation on the other one")
    sm.add_argument("--span", choices=SPANS, default="template",
                    help="visits observed: template (30 days before the template to its end "
                    "or 150 days after the peak) or survey (lsst: every visit of the field, "
                    "~3 years, as PLAsTiCC's light curves)")
    sm.add_argument("--workers", type=positive_int, default=None,
                    help="processes (default: all cores); the output is the same for any")
    sm.set_defaults(func=_cmd_simulate, needs=_SIMULATE)

    ev = sub.add_parser("evaluate", help="metrics of a model on its held-out PLAsTiCC split")
    ev.add_argument("--model", default="lsst", help="shipped model name or model folder "
                    "(NAME+companion: with its feature companion)")
    ev.add_argument("--split", choices=["test", "validation"], default="test",
                    help="held-out split evaluated")
    ev.add_argument("--data", type=Path, default=None,
                    help="data folder for the PLAsTiCC files (default: the cache)")
    ev.add_argument("-o", "--output", type=Path, default=None,
                    help="report folder (default: out/evaluate-NAME)")
    ev.add_argument("--threads", type=positive_int, default=None,
                    help="GP and ONNX Runtime threads (default: all cores)")
    ev.set_defaults(func=_cmd_evaluate, needs=_EVALUATE)

    cp = sub.add_parser("companion", help="fit a model's feature companion (gradient-boosted "
                        "trees on light-curve statistics) and attach it to the model")
    cp.add_argument("--model", default="lsst", help="shipped model name or model folder")
    cp.add_argument("--data", type=Path, default=None,
                    help="data folder for the PLAsTiCC files (default: the cache)")
    cp.add_argument("--max-iter", type=positive_int, default=CompanionConfig.max_iter,
                    help="boosting iterations at most (early stopping on validation)")
    cp.add_argument("--max-leaf-nodes", type=positive_int,
                    default=CompanionConfig.max_leaf_nodes, help="leaves of each tree")
    cp.add_argument("--ia-leaves", type=non_negative_int, default=CompanionConfig.ia_leaves,
                    metavar="N",
                    help="also a SN Ia specialist: binary SN Ia vs rest trees of N leaves "
                    "(learning rate 0.1, up to 1000 iterations; --max-iter and "
                    "--max-leaf-nodes are the 14-class trees') give P(SN Ia), the 14-class "
                    "trees share the rest (0: none; 1 is refused)")
    cp.add_argument("--features", choices=FEATURE_SETS, default=CompanionConfig.feature_set,
                    help="points: statistics of the raw points; points+gp: also the GP's "
                    "colours, timescales and (models reading host photo-z) peak luminosity; "
                    "points+gp+salt2: also a SALT2 grid fit to the raw points (needs "
                    "sncosmo's salt2 template: ASTROT2_SNCOSMO_DIR or astrot2 data fetch "
                    "sncosmo); points+gp+salt2+cc: also Vincenzi et al. 2019's "
                    "core-collapse templates and analytic plateau SNe II fitted against it "
                    "(the same folder)")
    cp.add_argument("--real", type=Path, default=None, metavar="DIR",
                    help="for a network fine-tuned on real light curves (ztf): the real "
                    "labelled light curves it learned from (astrot2 train --real)")
    cp.add_argument("--simulated", type=Path, default=None, metavar="FILE",
                    help="with --real: the simulated light curves it learned from (checked "
                    "against the sha256 in its manifest); for a representative run (lsst): "
                    "simulated light curves (astrot2 simulate --survey lsst) whose alert "
                    "cuts the trees learn from too")
    cp.add_argument("--no-test-split", action="store_true",
                    help="write the companion but leave the PLAsTiCC test split unscored (a "
                    "candidate; astrot2 evaluate --model NAME+companion scores it)")
    cp.add_argument("--dry-run", action="store_true",
                    help="report only; leave the model folder unchanged")
    cp.set_defaults(func=_cmd_companion, needs=_COMPANION)

    co = sub.add_parser("compress", help="compress a model folder by every method, measured")
    co.add_argument("--model", default="lsst", help="shipped model name or model folder")
    co.add_argument("--out", type=Path, default=None,
                    help="output folder, one model folder per method (out/compress-NAME)")
    co.add_argument("--methods", nargs="+", default=None,
                    help="methods (default: all; see astrot2.compress.pipeline.METHODS)")
    co.add_argument("--data", type=Path, default=None,
                    help="data folder for the PLAsTiCC files (default: the cache)")
    co.add_argument("--threads", type=positive_int, default=1,
                    help="ONNX Runtime threads (timing)")
    co.add_argument("--tolerance", type=non_negative_float, default=0.01,
                    help="shipping rule: smallest variant whose flat log-loss is within "
                    "this of the parent's")
    co.add_argument("--ship-to", type=Path, default=None,
                    help="install the chosen variant as this model folder (parent in "
                    "FOLDER/parent)")
    co.add_argument("--teachers", type=Path, nargs="+", default=[],
                    help="more teacher model folders (same split and inputs as --model): "
                    "the students learn the ensemble's mean probabilities")
    co.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="compression settings, e.g. sparsity=0.35 clusters=24 "
                    "(astrot2.compress.pipeline.CompressConfig)")
    co.set_defaults(func=_cmd_compress, needs=_TRAIN)

    ex = sub.add_parser("explain", help="class activation maps of one alert, as a figure")
    ex.add_argument("input", type=Path, help="alert file or directory")
    ex.add_argument("--alert-id", required=True,
                    help="alert id to explain, or an object id: its latest alert (the one "
                    "whose light curve ends last, the one a broker classifies last)")
    ex.add_argument("--model", default=None, help="shipped model name or model folder "
                    "(default: the shipped model of the input's survey; NAME+companion: "
                    "probabilities with its feature companion)")
    ex.add_argument("-o", "--output", required=True,  # str: Path drops a trailing /
                    help="PNG file, or a folder (an existing one, or a name ending in /) "
                    "to write FOLDER/ALERT_ID.png in")
    ex.add_argument("--classes", type=_number(int, 1, high=len(CLASSES)), default=3,
                    metavar="N", help="CAM strips for the N most probable classes")
    ex.add_argument("--format", choices=FORMATS, default=None)
    ex.add_argument("--metadata", type=Path, default=None, help="PLAsTiCC metadata CSV")
    ex.add_argument("--detections-only", action="store_true",
                    help="Rubin/ELAsTiCC alerts: ignore their forced photometry (read as "
                    "non-detections by default, as astrot2 classify reads them)")
    ex.set_defaults(func=_cmd_explain, needs=_EXPLAIN)

    ca = sub.add_parser("calibrate", help="fit a model's temperature on its validation "
                        "split and store it in its manifest")
    ca.add_argument("--model", default="lsst", help="shipped model name or model folder "
                    "(NAME+companion: with its feature companion)")
    ca.add_argument("--data", type=Path, default=None,
                    help="data folder for the PLAsTiCC files (default: the cache)")
    ca.add_argument("-o", "--output", type=Path, default=None,
                    help="report folder (default: out/calibrate-NAME)")
    ca.add_argument("--dry-run", action="store_true",
                    help="report only; leave the manifest unchanged")
    ca.add_argument("--threads", type=positive_int, default=None,
                    help="GP and ONNX Runtime threads (default: all cores)")
    ca.set_defaults(func=_cmd_calibrate, needs=_EVALUATE)

    spark = sub.add_parser("spark", help="classify with Apache Spark (needs the spark extra)")
    spark_sub = spark.add_subparsers(dest="spark_command", required=True)
    sp_common = _Parser(add_help=False)
    sp_common.add_argument("--master", default=None,
                           help="Spark master, e.g. local[2] (default: spark-submit's, "
                           "else local[*])")
    sp_common.add_argument("--model", default=None,
                           help="shipped model name (ztf, lsst) or model folder "
                           "(NAME+companion: with its feature companion); default: the "
                           "shipped model of the inputs' survey (stream: of --format's, "
                           "lsst without it)")
    sp_common.add_argument("--format", choices=FORMATS, default=None)
    sp_common.add_argument("--detections-only", action="store_true",
                           help="Rubin/ELAsTiCC alerts: ignore their forced photometry "
                           "(prvDiaForcedSources; read as non-detections by default, as in the "
                           "light curves the models were trained on)")
    sp_common.add_argument("--batch-size", type=positive_int, default=8192,
                           help="light curves per classification chunk")
    sp_common.add_argument("--arrow-batch-size", type=positive_int, default=None,
                           help="spark.sql.execution.arrow.maxRecordsPerBatch")
    sc = spark_sub.add_parser("classify", parents=[sp_common],
                              help="alert files in, a Parquet folder out (one row per alert)")
    sc.add_argument("inputs", nargs="+", type=Path, help="alert files or directories")
    sc.add_argument("output", help="output Parquet folder, overwritten (any Hadoop URI)")
    sc.add_argument("--partitions", type=positive_int, default=None,
                    help="Spark partitions of the file list (default: 4 per core)")
    sc.set_defaults(func=_cmd_spark_classify, needs=_SPARK)
    ss = spark_sub.add_parser("stream", parents=[sp_common],
                              help="classify alert files arriving in a folder, exactly once")
    # str, not Path: Path would turn hdfs:///x into hdfs:/x
    ss.add_argument("input_dir", help="folder where alert files arrive (any Hadoop URI)")
    ss.add_argument("output_dir", help="Parquet sink folder")
    ss.add_argument("--checkpoint", required=True,
                    help="checkpoint folder (keep it to restart without loss or duplicates)")
    ss.add_argument("--trigger-seconds", type=positive_float, default=10.0,
                    help="seconds between micro-batches")
    ss.add_argument("--available-now", "--once", dest="available_now", action="store_true",
                    help="process the files present now, then stop")
    ss.add_argument("--max-files-per-trigger", type=positive_int, default=None,
                    help="files per micro-batch (default: all new files)")
    ss.set_defaults(func=_cmd_spark_stream, needs=_SPARK)
    return parser


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: unwinds the command, so no half-written output is left."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``astrot2`` command; returns the process exit status.

    A bad argument, a domain error, a closed output pipe (``astrot2 models | head``),
    Ctrl-C or SIGTERM end the command with one line on stderr and status 2 (130 for an
    interruption); outputs are written atomically, so an interrupted command leaves none
    behind.
    """
    import signal
    import threading

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad argument (its one line is out), --help, --version
        return exc.code if isinstance(exc.code, int) else 2
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupted)
    else:  # pragma: no cover - signals can only be set from the main thread
        previous = None
    try:
        if getattr(args, "needs", None):  # a missing extra: one line, before any work
            from astrot2.errors import require

            require(*args.needs)
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except Astrot2Error as exc:
        print(f"astrot2: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away: say so once, and keep Python from complaining at exit
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("astrot2: error: the output pipe was closed before everything was written",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("astrot2: interrupted; no output file was left half-written", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
