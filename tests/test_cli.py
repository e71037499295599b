"""``astrot2 read``: summary counts, Parquet output, clear errors with exit status 2."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import fastavro
import numpy as np
import pyarrow.parquet as pq
import pytest

from astrot2.cli import main
from astrot2.io import expand_inputs


def _raw_alerts(folder):
    """Every alert record of a fixture folder, read with fastavro / pyarrow only."""
    recs = []
    for path in expand_inputs(folder):
        if path.name.endswith(".parquet"):
            recs += pq.read_table(path).to_pylist()
        else:
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rb") as fh:
                recs += list(fastavro.reader(fh))
    return recs


@pytest.mark.parametrize("folder, history, id_field, survey", [
    ("ztf", "prv_candidates", "candid", "ztf"),
    ("rubin", "prvDiaSources", "diaSourceId", "lsst"),
    ("elasticc", "prvDiaSources", "alertId", "lsst"),
])
def test_read_prints_the_right_counts(fixtures, capsys, folder, history, id_field, survey):
    recs = _raw_alerts(fixtures / folder)
    if survey == "lsst":  # forced photometry: non-detections by default, as classify reads
        assert main(["read", str(fixtures / folder)]) == 0
        with_forced = json.loads(capsys.readouterr().out)
        n_forced = sum(len(r["prvDiaForcedSources"] or []) for r in recs)
        n_det = sum(len(r[history] or []) + 1 for r in recs)
        assert (with_forced["observations"], with_forced["detections"]) == (
            n_det + n_forced, n_det) and n_forced > 0
    assert main(["read", str(fixtures / folder), "--detections-only"]) == 0
    summary = json.loads(capsys.readouterr().out)
    n_obs = sum(len(r[history] or []) + 1 for r in recs)
    assert summary["survey"] == survey
    assert summary["light_curves"] == len(recs) == {"ztf": 30, "rubin": 10, "elasticc": 21}[folder]
    assert summary["observations"] + summary["dropped_points"] == n_obs
    assert summary["rejected"] == {}
    if folder == "ztf":  # detections = points with a magnitude, all kept; the dropped
        # points are upper limits a same-night detection contradicts (io/ztf.py)
        n_det = sum(p["magpsf"] is not None for r in recs
                    for p in [*(r[history] or []), r["candidate"]])
        assert summary["detections"] == n_det < n_obs
        assert 0 < summary["dropped_points"] < (n_obs - n_det) / 10
    else:
        assert summary["detections"] == n_obs and summary["dropped_points"] == 0


def test_read_writes_one_row_per_alert(fixtures, tmp_path, capsys):
    out = tmp_path / "lc.parquet"
    assert main(["read", str(fixtures / "ztf"), "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    table = pq.read_table(out)
    recs = _raw_alerts(fixtures / "ztf")
    assert table.num_rows == summary["light_curves"] == len(recs)
    assert table.column("alert_id").to_pylist() == [str(r["candid"]) for r in recs]
    lengths = np.array([len(t) for t in table.column("time").to_pylist()])
    dropped = table.column("n_dropped").to_numpy()  # contradicted upper limits
    assert (lengths + dropped).tolist() == [len(r["prv_candidates"] or []) + 1 for r in recs]
    assert lengths.sum() == summary["observations"]
    assert dropped.sum() == summary["dropped_points"] > 0
    times = table.column("time").to_pylist()
    assert all(np.all(np.diff(t) >= 0) for t in times)
    assert table.schema.metadata[b"astrot2.survey"] == b"ztf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lc.parquet"]  # no .part left


def test_format_override_on_the_wrong_file_exits_2(fixtures, capsys):
    path = fixtures / "ztf" / "ztf_3.3_single.avro"
    assert main(["read", str(path), "--format", "rubin"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("astrot2: error:")
    assert "ztf_3.3_single.avro" in captured.err and "diaSource" in captured.err


def test_unreadable_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "junk.avro"
    bad.write_bytes(b"\x00\x01\x02\x03" * 8)
    assert main(["read", str(bad)]) == 2
    assert "junk.avro" in capsys.readouterr().err
    assert main(["read", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def test_models_lists_the_shipped_models_and_their_companions(capsys):
    """``astrot2 models``: each shipped model with its size and held-out figures, and the
    opt-in companion (how to use it, its size and its own figures)."""
    from astrot2.runtime import shipped_models

    assert main(["models"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(shipped_models())
    for row in rows:
        assert row["bytes"] <= 12_000 and row["flat_log_loss"]["whole"] > 0
        if "companion" in row:
            assert row["companion"]["use"] == f"{row['name']}+companion"
            assert row["companion"]["flat_log_loss"]["whole"] < row["flat_log_loss"]["whole"]
            templates = "+salt2" in row["companion"]["feature_set"]  # its tables counted
            assert (row["companion"]["table_bytes"] > 100_000) == templates


def test_closed_pipe_and_signals_end_with_one_line(tmp_path):
    """``astrot2 models | (reader gone)``: one line, status 2, no traceback; SIGTERM during a
    job: status 130, one line, no output file and no ``.part`` file left."""
    import signal
    import subprocess
    import time

    cmd = [sys.executable, "-m", "astrot2.cli", "models"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait() == 2
    assert err.strip().splitlines() == [
        "astrot2: error: the output pipe was closed before everything was written"]
    # a long job: 24,000 synthetic light curves in one PLAsTiCC-layout CSV, read in 12
    # batches (about 15 s here), interrupted after 3 s
    big = tmp_path / "big.csv"
    rows = ["object_id,mjd,passband,flux,flux_err,detected_bool"]
    rows += [f"{i // 50},{60000 + i % 50},{i % 6},{(i % 7) * 10.0},1.0,1"
             for i in range(1_200_000)]
    big.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.parquet"
    proc = subprocess.Popen([sys.executable, "-m", "astrot2.cli", "classify", str(big), "-o",
                             str(out), "--model", "lsst", "--quiet", "--batch-size", "2000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(3.0)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    err = proc.stderr.read().decode()
    assert code == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        "astrot2: interrupted")
    assert not out.exists()
    assert not list(tmp_path.glob(".out.parquet.*"))


def _run_hiding(modules: list[str], code: str, cwd) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where ``modules`` cannot be imported (as if
    their extra were not installed: ``sys.modules[name] = None``)."""
    hide = "; ".join(f"sys.modules[{m!r}] = None" for m in modules)
    return subprocess.run([sys.executable, "-c", f"import sys; {hide}; {code}"], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv, hidden, extra", [
    (["explain", "ALERTS", "--alert-id", "x", "-o", "fig.png"], ["matplotlib"], "explain"),
    (["explain", "ALERTS", "--alert-id", "x", "-o", "fig.png"], ["onnx"], "explain"),
    (["train", "--out", "model"], ["torch"], "train"),
    (["evaluate", "-o", "report"], ["sklearn"], "train"),
    (["calibrate", "-o", "report"], ["matplotlib"], "train"),
    (["companion"], ["sklearn"], "train"),
    (["compress", "--out", "variants"], ["torch"], "train"),
    (["simulate", "-o", "sim.parquet", "--n", "5"], ["sncosmo"], "train"),
    (["spark", "classify", "ALERTS", "out"], ["pyspark"], "spark"),
    (["spark", "stream", "in", "out", "--checkpoint", "ckpt"], ["pyspark", "pandas"], "spark"),
])
def test_missing_extra_is_one_line_before_any_work(fixtures, tmp_path, argv, hidden, extra):
    """Without its extra a command stops at its start: status 2, one line naming the
    missing modules, the extra and the pip command; nothing written."""
    argv = [str(fixtures / "ztf") if a == "ALERTS" else a for a in argv]
    run = _run_hiding(hidden, f"from astrot2.cli import main; sys.exit(main({argv!r}))",
                      tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"astrot2: error: {', '.join(hidden)} not installed: this command needs astrot2's "
        f"{extra} extra; install it with pip install 'astrot2[{extra}]'"]
    assert list(tmp_path.iterdir()) == []


def test_demo_without_matplotlib_says_so_before_the_job(tmp_path):
    """``python -m astrot2.demo`` without the plot extra: one line, status 2, no output."""
    run = _run_hiding(["matplotlib"], "from astrot2.demo import main; "
                      "sys.exit(main(['--out', 'out']))", tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        "astrot2: error: matplotlib not installed: this command needs astrot2's plot "
        "extra; install it with pip install 'astrot2[plot]'"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, flag, rule, value", [
    (["classify", "IN", "-o", "o.parquet", "--threads", "0"], "--threads", "an integer >= 1",
     "0"),
    (["classify", "IN", "-o", "o.parquet", "--threads", "-1"], "--threads",
     "an integer >= 1", "-1"),
    (["classify", "IN", "-o", "o.parquet", "--min-points", "-3"], "--min-points",
     "an integer >= 0", "-3"),
    (["classify", "IN", "-o", "o.parquet", "--tta", "0"], "--tta", "an integer >= 1", "0"),
    (["classify", "IN", "-o", "o.parquet", "--batch-size", "0"], "--batch-size",
     "an integer >= 1", "0"),
    (["classify", "IN", "-o", "o.parquet", "--batch-size", "1.5"], "--batch-size",
     "an integer >= 1", "'1.5'"),
    (["train", "--epochs", "0"], "--epochs", "an integer >= 1", "0"),
    (["train", "--n-augment", "-1"], "--n-augment", "an integer >= 0", "-1"),
    (["train", "--seed", "-2"], "--seed", "an integer >= 0", "-2"),
    (["train", "--init-seed", "-2"], "--init-seed", "an integer >= 0", "-2"),
    (["train", "--forecast-weight", "-0.5"], "--forecast-weight", "a number >= 0.0",
     "-0.5"),
    (["train", "--redshift-dropout", "1.5"], "--redshift-dropout",
     "a number >= 0.0 and <= 1.0", "1.5"),
    (["simulate", "-o", "s.parquet", "--n", "0"], "--n", "an integer >= 1", "0"),
    (["simulate", "-o", "s.parquet", "--seed", "-1"], "--seed", "an integer >= 0", "-1"),
    (["evaluate", "--threads", "0"], "--threads", "an integer >= 1", "0"),
    (["calibrate", "--threads", "-4"], "--threads", "an integer >= 1", "-4"),
    (["companion", "--max-iter", "0"], "--max-iter", "an integer >= 1", "0"),
    (["companion", "--ia-leaves", "-1"], "--ia-leaves", "an integer >= 0", "-1"),
    (["compress", "--threads", "0"], "--threads", "an integer >= 1", "0"),
    (["compress", "--tolerance", "-0.1"], "--tolerance", "a number >= 0.0", "-0.1"),
    (["explain", "IN", "--alert-id", "x", "-o", "f.png", "--classes", "0"], "--classes",
     "an integer >= 1 and <= 14", "0"),
    (["spark", "classify", "IN", "out", "--batch-size", "0"], "--batch-size",
     "an integer >= 1", "0"),
    (["spark", "classify", "IN", "out", "--partitions", "0"], "--partitions",
     "an integer >= 1", "0"),
    (["spark", "classify", "IN", "out", "--arrow-batch-size", "-1"], "--arrow-batch-size",
     "an integer >= 1", "-1"),
    (["spark", "stream", "in", "out", "--checkpoint", "c", "--trigger-seconds", "0"],
     "--trigger-seconds", "a number > 0.0", "0"),
    (["spark", "stream", "in", "out", "--checkpoint", "c", "--trigger-seconds", "nan"],
     "--trigger-seconds", "a number > 0.0", "nan"),
    (["spark", "stream", "in", "out", "--checkpoint", "c", "--max-files-per-trigger", "0"],
     "--max-files-per-trigger", "an integer >= 1", "0"),
])
def test_bad_flag_values_are_named_by_their_flag(fixtures, tmp_path, capsys, argv, flag, rule,
                                                  value):
    """A numeric flag out of range: one line naming the flag, the rule and the value,
    status 2, before any work (nothing written)."""
    argv = [str(fixtures / "ztf") if a == "IN" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    prog = " ".join(["astrot2", *argv[:2 if argv[0] == "spark" else 1]])
    assert err.splitlines() == [f"{prog}: error: argument {flag}: must be {rule}, got "
                                f"{value} (see {prog} --help)"]
    assert list(tmp_path.iterdir()) == []


def test_a_sn_ia_specialist_refused_where_it_does_not_apply(tmp_path, capsys):
    """``--ia-leaves 1`` and ``--ia-leaves`` with ``--real``: one line, status 2, before any
    work."""
    for argv, says in ((["--ia-leaves", "1"], "ia_leaves must be 0"),
                       (["--ia-leaves", "4", "--real", str(tmp_path)], "flat class mix")):
        assert main(["companion", "--model", str(tmp_path), *argv]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and says in err[0]
    assert list(tmp_path.iterdir()) == []


def test_help_shows_the_defaults(capsys):
    """``--help`` gives each option's default (those that have one)."""
    assert main(["classify", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("light curves per chunk (default: 8192)",
                  "reject light curves with fewer points (default: 1)",
                  "(default: all cores)", "(default: off)"):
        assert shown in text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert main(["spark", "stream", "--help"]) == 0
    assert "seconds between micro-batches (default: 10.0)" in " ".join(
        capsys.readouterr().out.split())
    assert main(["companion", "--help"]) == 0  # a default of 0 is shown too
    assert "(0: none; 1 is refused) (default: 0)" in " ".join(capsys.readouterr().out.split())


def _unwritable_places(tmp_path):
    """(output path, the end of the error) for each kind of place no file can be written:
    a missing folder, a folder, a file taken for a folder, a folder without write access
    (for root, which may write anywhere else, /sys)."""
    import os

    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    if os.geteuid() == 0:
        read_only = Path("/sys")
    else:
        read_only = tmp_path / "read_only"
        read_only.mkdir(mode=0o555)
    return [(tmp_path / "missing" / "o.parquet",
             f"folder {tmp_path / 'missing'} does not exist; create it first"),
            (tmp_path / "a_folder", "is a folder; give a file name"),
            (tmp_path / "a_file" / "o.parquet", f"{tmp_path / 'a_file'} is not a folder"),
            (read_only / "o.parquet", f"cannot write in folder {read_only} (Permission "
             "denied)")]


@pytest.mark.parametrize("command", ["read", "classify", "errors-file", "simulate"])
def test_unwritable_output_is_one_line_before_any_work(fixtures, tmp_path, capsys, command):
    """``-o`` (or ``--errors-file``) where no file can be written: status 2, one line
    naming the flag and the path, nothing printed or written (no ``.part`` file)."""
    alerts = str(fixtures / "ztf" / "ztf_3.3_single.avro")
    for place, problem in _unwritable_places(tmp_path):
        before = sorted(tmp_path.rglob("*"))
        flag = "--errors-file" if command == "errors-file" else "-o"
        argv = {"read": ["read", alerts, "-o", str(place)],
                "classify": ["classify", alerts, "-o", str(place), "--quiet"],
                "errors-file": ["classify", alerts, "-o", str(tmp_path / "ok.parquet"),
                                "--on-error", "skip", "--errors-file", str(place)],
                "simulate": ["simulate", "-o", str(place), "--n", "2"]}[command]
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.splitlines() == [f"astrot2: error: {flag} {place}: {problem}"]
        assert sorted(tmp_path.rglob("*")) == before  # hidden .part files included


def test_no_alert_files_is_an_error(fixtures, tmp_path, capsys):
    """An empty input folder, or one that holds only the job's own earlier outputs: status
    2 and one line (before, 0 rows and a model picked at random), nothing written."""
    night = tmp_path / "night"
    night.mkdir()
    (night / "notes.txt").write_text("not an alert file")
    expected = (f"astrot2: error: no alert files in {night} (alert files end in .avro, "
                ".avro.gz, .parquet, .csv, .csv.gz)")
    out = night / "classified.parquet"
    for command in (["classify", str(night), "-o", str(out), "--quiet"], ["read", str(night)]):
        assert main(command) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.splitlines() == [expected]
        assert sorted(p.name for p in night.iterdir()) == ["notes.txt"]
    # the folder holds only what an earlier job wrote there: the same message
    assert main(["classify", str(fixtures / "ztf" / "ztf_3.3_single.avro"), "-o", str(out),
                 "--quiet", "--on-error", "skip"]) == 0
    capsys.readouterr()
    before = out.read_bytes()
    assert main(["classify", str(night), "-o", str(out), "--quiet", "--on-error", "skip"]) == 2
    assert capsys.readouterr().err.splitlines() == [expected]
    assert out.read_bytes() == before


def test_a_simulated_file_other_than_the_networks_is_refused(tmp_path):
    """``--simulated``: absent, nothing is read; a file whose sha256 is not the one the
    network's manifest records is refused (one-line ConfigError) before it is read."""
    from astrot2.cli import _read_simulated
    from astrot2.errors import ConfigError

    assert _read_simulated(None) == (None, None)
    with pytest.raises(ConfigError, match="no such file"):
        _read_simulated(tmp_path / "missing.parquet")
    with pytest.raises(ConfigError, match="no such file"):
        _read_simulated(tmp_path)
    other = tmp_path / "other.parquet"
    other.write_bytes(b"not the simulation")
    with pytest.raises(ConfigError, match="not the file the network was trained on"):
        _read_simulated(other, "0" * 64)


def test_set_reads_numbers_and_flags_of_a_config():
    """``--set KEY=VALUE``: ints, floats and booleans of the config's own fields; anything
    else is a ConfigError that lists the keys it takes."""
    from astrot2.errors import ConfigError
    from astrot2.manifest import settings_from
    from astrot2.train_representative import RepresentativeTrainConfig

    got = settings_from(["steps=9000", "plain_no_photoz=0.25", "gp_statistics=false"],
                        RepresentativeTrainConfig)
    assert got == {"steps": 9000, "plain_no_photoz": 0.25, "gp_statistics": False}
    assert type(got["steps"]) is int
    for bad in (["bogus=1"], ["steps"], ["steps=1.5"], ["gp_statistics=maybe"],
                ["name=x"], ["representative=1"]):
        with pytest.raises(ConfigError, match="--set"):
            settings_from(bad, RepresentativeTrainConfig)


def test_set_reaches_nested_settings():
    """A dotted ``--set`` key reaches a nested config: how the runs recorded before the
    (1+z) flux term re-create (``representative.redshift.bandwidth=false``,
    ``real.fainter.bandwidth=false``); a wrong nested key is a ConfigError."""
    from astrot2.errors import ConfigError
    from astrot2.manifest import with_settings
    from astrot2.train_real import FinetuneConfig
    from astrot2.train_representative import RepresentativeTrainConfig

    base = RepresentativeTrainConfig()
    got = with_settings(base, ["steps=10", "representative.redshift.bandwidth=false",
                               "representative.n_train=2"])
    assert got.steps == 10 and got.representative.n_train == 2
    assert got.representative.redshift.bandwidth is False
    assert base.representative.redshift.bandwidth is True  # the default is untouched
    real = with_settings(FinetuneConfig(), ["real.fainter.bandwidth=false"])
    assert real.real.fainter.bandwidth is False
    for bad in (["representative.redshift.bogus=1"], ["steps.x=1"],
                ["representative.redshift.bandwidth=2"]):
        with pytest.raises(ConfigError, match="--set"):
            with_settings(base, bad)


@pytest.mark.parametrize("args", [
    ["train", "--model", "lsst", "--representative", "--set", "bogus=1"],
    ["train", "--model", "lsst", "--representative", "--set", "sparsity=1.5"],
    ["train", "--model", "lsst", "--set", "steps=10"],
    ["train", "--model", "lsst", "--no-test-split"],
])
def test_train_set_errors_are_one_line(args, capsys):
    """A wrong ``--set`` (unknown key, out of range, or without fine-tuning), or
    ``--no-test-split`` without fine-tuning, ends ``astrot2 train`` with one line and
    status 2, before any data is read."""
    pytest.importorskip("torch")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
