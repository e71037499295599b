"""``classify_files`` / ``astrot2 classify``: streamed output identical to one write, atomic
on failure, ``--on-error fail|skip`` with an errors file; the shipped lsst model on real
Rubin and ELAsTiCC alerts."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import csv

from astrot2.classes import CLASSES
from astrot2.classify import _TableSink, classify_batch, classify_files
from astrot2.cli import main
from astrot2.errors import AlertFormatError, ConfigError
from astrot2.io import expand_inputs, read_file


@pytest.fixture
def inputs(fixtures, tmp_path):
    """Two real lsst alert files and one truncated copy of the second, sorted between them."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(fixtures / "elasticc" / "elasticc_snia_20.parquet", folder / "a.parquet")
    data = (fixtures / "rubin" / "rubin_raw_5.parquet").read_bytes()
    (folder / "b_truncated.parquet").write_bytes(data[: len(data) // 2])
    shutil.copy(fixtures / "rubin" / "rubin_raw_5.parquet", folder / "c.parquet")
    return folder


def _reference(clf, paths, batch_size):
    """What classify_files must write: classify_batch of every chunk, concatenated (Rubin
    forced photometry read as non-detections, classify's default)."""
    tables = [classify_batch(clf, chunk) for p in paths for chunk in
              read_file(p, include_forced=True).chunks(batch_size)]
    return pa.concat_tables(tables)


@pytest.mark.parametrize("kind", ["parquet", "csv", "json"])
def test_sink_streams_what_one_write_would_write(lsst_classifier, fixtures, tmp_path, kind):
    """Flushing every 4 rows gives the bytes (CSV, JSON) or rows (Parquet) of one write."""
    ref = _reference(lsst_classifier, [fixtures / "elasticc" / "elasticc_snia_20.parquet",
                                       fixtures / "rubin" / "rubin_raw_5.parquet"], 3)
    path = tmp_path / f"out.{kind}"
    sink = _TableSink(path, kind, flush_rows=4)
    for batch in ref.to_batches(max_chunksize=3):
        sink.write(pa.Table.from_batches([batch]))
    sink.close(ref.slice(0, 0))
    assert sink.rows_written == ref.num_rows == 25
    one = tmp_path / f"one.{kind}"
    if kind == "parquet":
        written = pq.read_table(path)
        assert written.equals(ref)
        assert pq.ParquetFile(path).num_row_groups == 5  # chunks of 3 flushed by 6: 6+6+6+6+1
    elif kind == "csv":
        csv.write_csv(ref, one)
        assert path.read_bytes() == one.read_bytes()
    else:
        assert path.read_text() == json.dumps(ref.to_pylist())


@pytest.mark.parametrize("kind", ["parquet", "csv", "json"])
def test_no_alerts_writes_the_columns(lsst_classifier, fixtures, tmp_path, kind):
    """An alert file holding no alert (a quiet night): the columns, no row."""
    path = tmp_path / f"out.{kind}"
    empty = tmp_path / "quiet_night.parquet"
    pq.write_table(pq.read_table(fixtures / "elasticc" / "elasticc_snia_20.parquet")
                   .slice(0, 0), empty)
    summary = classify_files([empty], path, lsst_classifier, progress=False)
    assert summary["alerts_in"] == 0 and summary["files"] == 1
    if kind == "parquet":
        table = pq.read_table(path)
        assert table.num_rows == 0 and table.column_names[:3] == ["alert_id", "object_id",
                                                                  "status"]
    elif kind == "csv":
        assert path.read_text().startswith('"alert_id","object_id","status"')
    else:
        assert path.read_text() == "[]"


def test_output_equals_the_batch_function(lsst_classifier, fixtures, tmp_path):
    files = expand_inputs([fixtures / "elasticc", fixtures / "rubin"])
    out = tmp_path / "out.parquet"
    summary = classify_files(files, out, lsst_classifier, batch_size=4, progress=False)
    ref = _reference(lsst_classifier, files, 4)
    assert pq.read_table(out).equals(ref)
    assert summary["alerts_in"] == ref.num_rows == 31 and summary["skipped_files"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]  # nothing else


@pytest.mark.parametrize("kind", ["parquet", "csv", "json"])
def test_fail_mid_run_leaves_no_output(lsst_classifier, inputs, tmp_path, kind):
    """The good first file was streamed to the temporary file; the bad second stops the run."""
    out = tmp_path / "out" / f"classified.{kind}"
    out.parent.mkdir()
    with pytest.raises(AlertFormatError, match=r"b_truncated\.parquet") as info:
        classify_files([inputs], out, lsst_classifier, batch_size=4, progress=False)
    assert info.value.path == str(inputs / "b_truncated.parquet")
    assert list(out.parent.iterdir()) == []  # neither the output nor a temporary file


def test_failed_run_keeps_the_previous_output(lsst_classifier, inputs, tmp_path):
    out = tmp_path / "classified.parquet"
    classify_files([inputs / "a.parquet"], out, lsst_classifier, progress=False)
    before = out.read_bytes()
    with pytest.raises(AlertFormatError):
        classify_files([inputs], out, lsst_classifier, progress=False)
    assert out.read_bytes() == before


def test_skip_lists_the_bad_file_and_classifies_the_rest(lsst_classifier, inputs, tmp_path):
    out = tmp_path / "classified.csv"
    summary = classify_files([inputs], out, lsst_classifier, on_error="skip", progress=False)
    bad = str(inputs / "b_truncated.parquet")
    assert [s["path"] for s in summary["skipped_files"]] == [bad]
    assert "truncated or corrupt Parquet" in summary["skipped_files"][0]["error"]
    errors = json.loads((tmp_path / "classified.csv.errors.json").read_text())
    assert errors == summary["skipped_files"]
    assert summary["errors_file"] == str(tmp_path / "classified.csv.errors.json")
    ids = [*read_file(inputs / "a.parquet").alert_id, "",  # the bad file's one row
           *read_file(inputs / "c.parquet").alert_id]
    table = csv.read_csv(out, convert_options=csv.ConvertOptions(
        column_types={"alert_id": pa.string()}))
    assert table.column("alert_id").to_pylist() == ids
    assert summary["alerts_in"] == len(ids) - 1 == 25 and summary["files"] == 3
    bad_row = table.slice(20, 1).to_pylist()[0]
    assert bad_row["status"] == f"bad_file: {summary['skipped_files'][0]['error']}"
    assert bad_row["top_class"] == "" and bad_row["top_prob"] is None  # CSV: empty fields
    assert all(bad_row[f"p_{c.slug}"] == 0 for c in CLASSES)
    assert summary["rejected"]["bad_file"] == 1


def test_skip_refuses_files_of_another_survey(lsst_classifier, inputs, fixtures, tmp_path):
    """A ZTF file given to the lsst model: listed, and a ``wrong_survey`` row per alert."""
    shutil.copy(fixtures / "ztf" / "fink_4.02_10.parquet", inputs / "d_ztf.parquet")
    errors = tmp_path / "errors" / "skipped.json"
    errors.parent.mkdir()
    summary = classify_files([inputs], tmp_path / "o.json", lsst_classifier, on_error="skip",
                             errors_file=errors, progress=False)
    skipped = {s["path"]: s["error"] for s in json.loads(errors.read_text())}
    assert set(skipped) == {str(inputs / "b_truncated.parquet"), str(inputs / "d_ztf.parquet")}
    assert "ztf alerts, but model lsst@" in skipped[str(inputs / "d_ztf.parquet")]
    rows = json.loads((tmp_path / "o.json").read_text())
    ztf = read_file(inputs / "d_ztf.parquet")
    assert len(rows) == summary["alerts_in"] + 1 == 25 + len(ztf) + 1  # + the bad_file row
    wrong = rows[-len(ztf):]
    assert [(r["alert_id"], r["object_id"]) for r in wrong] == list(
        zip(ztf.alert_id.astype(str), ztf.object_id.astype(str), strict=True))
    assert all(r["status"] == "wrong_survey" and r["top_class"] is None
               and r["top_prob"] is None and r["p_snia"] == 0 for r in wrong)
    assert summary["rejected"]["wrong_survey"] == len(ztf) == 10


def test_bad_settings_are_config_errors(lsst_classifier, inputs, tmp_path):
    with pytest.raises(ConfigError, match="on_error"):
        classify_files([inputs], tmp_path / "o.csv", lsst_classifier, on_error="ignore")
    with pytest.raises(ConfigError, match=r"\.parquet, \.csv or \.json"):
        classify_files([inputs], tmp_path / "o.txt", lsst_classifier)
    with pytest.raises(ConfigError, match="batch_size must be >= 1, got 0"):
        classify_files([inputs], tmp_path / "o.csv", lsst_classifier, batch_size=0)
    (tmp_path / "d.csv").mkdir()
    for output, problem in [(tmp_path / "no" / "o.csv", "folder .* does not exist"),
                            (tmp_path / "d.csv", "is a folder")]:
        with pytest.raises(ConfigError, match=f"output {output}: {problem}"):
            classify_files([inputs], output, lsst_classifier)
        with pytest.raises(ConfigError, match=f"errors file {output}: {problem}"):
            classify_files([inputs], tmp_path / "o.csv", lsst_classifier, on_error="skip",
                           errors_file=output)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "d.csv", inputs]  # nothing written
    assert list((tmp_path / "d.csv").iterdir()) == []


def test_cli_on_error(inputs, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    assert main(["classify", str(inputs), "-o", str(out), "--quiet", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("astrot2: error: file ") and "b_truncated.parquet" in err
    assert not out.exists()
    assert main(["classify", str(inputs), "-o", str(out), "--quiet", "--threads", "1",
                 "--on-error", "skip", "--errors-file", str(tmp_path / "e.json")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["alerts_in"] == pq.read_table(out).num_rows - 1 == 25  # + bad_file
    assert [s["path"] for s in json.loads((tmp_path / "e.json").read_text())] == [
        str(inputs / "b_truncated.parquet")]


def test_cli_default_model_passes_over_unreadable_files(inputs, tmp_path, capsys):
    """The survey is told from the first readable file, so skip mode can pick the model."""
    out = tmp_path / "out.json"
    (inputs / "0_junk.parquet").write_bytes(b"PAR1 not parquet")
    assert main(["classify", str(inputs), "-o", str(out), "--quiet", "--on-error",
                 "skip"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"].startswith("lsst@") and len(summary["skipped_files"]) == 2
    rows = json.loads(out.read_text())
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(rows) == 25 + 2 and len(ok) >= 20  # two unreadable files: a row each
    np.testing.assert_allclose([sum(v for k, v in r.items() if k.startswith("p_"))
                                for r in ok], 1.0, rtol=1e-5)


def test_killed_run_leaves_no_output(fixtures, tmp_path):
    """SIGKILL in the middle of a run (rows already streamed to the temporary file): the
    output path does not exist; only the hidden ``.part`` file is left."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2000):  # 40,000 real alerts: far more than is classified before the kill
        (folder / f"{i:04d}.parquet").symlink_to(fixtures / "elasticc" /
                                                 "elasticc_snia_20.parquet")
    out = tmp_path / "out" / "classified.csv"
    out.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "astrot2.cli", "classify", str(folder),
                             "-o", str(out), "--model", "lsst", "--threads", "1",
                             "--batch-size", "20", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        part = []
        while proc.poll() is None and not any(p.stat().st_size > 10_000 for p in part):
            time.sleep(0.05)
            part = list(out.parent.glob(".classified.csv.*.part"))
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    assert [p.name.startswith(".classified.csv.") for p in out.parent.iterdir()] == [True]


def test_forced_photometry_is_read_unless_detections_only(lsst_classifier, fixtures, tmp_path):
    """Rubin / ELAsTiCC alerts: classify reads ``prvDiaForcedSources`` as non-detections
    (as the training light curves have them); ``include_forced=False`` (the CLI's
    ``--detections-only``) reads detections only.  Rows equal classify_batch of each."""
    path = fixtures / "elasticc" / "elasticc_snia_20.parquet"
    both = read_file(path, include_forced=True)
    detections = read_file(path)
    assert both.n_points.sum() > detections.n_points.sum() and detections.detected.all()
    out = {}
    for forced in (True, False):
        out[forced] = tmp_path / f"o-{forced}.parquet"
        classify_files([path], out[forced], lsst_classifier, progress=False,
                       include_forced=forced)
    for forced, batch in ((True, both), (False, detections)):
        got = pq.read_table(out[forced])
        assert got.equals(classify_batch(lsst_classifier, batch))
    assert not pq.read_table(out[True]).column("p_snia").equals(
        pq.read_table(out[False]).column("p_snia"))


def test_never_overwrites_an_input_and_skips_its_own_outputs(tmp_path, fixtures):
    """``-o`` naming an input file is refused (the input intact); a re-run whose output sits
    in the input folder does not read its own earlier output back as alerts."""
    from astrot2.cli import main

    src = tmp_path / "night"
    shutil.copytree(fixtures / "ztf", src)
    target = src / "fink_4.02_10.parquet"
    before = target.read_bytes()
    assert main(["classify", str(target), "-o", str(target), "--model", "ztf",
                 "--quiet"]) == 2
    assert target.read_bytes() == before
    out = src / "classified.parquet"
    for _ in range(2):  # the second run finds the first one's output in the folder
        assert main(["classify", str(src), "-o", str(out), "--model", "ztf", "--quiet",
                     "--on-error", "skip"]) == 0
        table = pq.read_table(out)
        assert table.num_rows == 30  # the fixture folder's alerts, not more
        assert json.loads((src / "classified.parquet.errors.json").read_text()) == []


def _singular_light_curve(survey):
    """Three points at one time and band with errors 1e-12 of the flux: the GP breaks down
    at every start and falls back (tests/test_gp.py)."""
    from astrot2.lightcurves import LightCurveBatch

    return LightCurveBatch.from_observations(
        survey, ["singular"], ["singular"], np.zeros(3, int), [60000.0] * 3,
        [100.0, 90.0, 80.0], [1e-10] * 3, [0] * 3, np.ones(3, bool))


def test_status_tells_the_gp_truth(fixtures, tmp_path):
    """Real ZTF alerts whose GP stops at max_iter, and a light curve that forces the GP's
    fallback, keep one row each with probabilities and a flagged status."""
    from dataclasses import replace

    from astrot2.lightcurves import LightCurveBatch
    from astrot2.runtime import Classifier

    clf = Classifier.load("ztf", threads=1)
    alerts = read_file(fixtures / "ztf" / "fink_4.02_10.parquet")
    batch = LightCurveBatch.concat([alerts, _singular_light_curve(alerts.survey)])
    table = classify_batch(clf, batch)
    status = table.column("status").to_pylist()
    assert table.num_rows == len(batch)
    assert status[-1] == "gp_fallback" and set(status[:-1]) == {"ok"}
    prob = np.column_stack([table.column(f"p_{s}").to_numpy() for s in
                            (c.removeprefix("p_") for c in clf.manifest.slug_columns)])
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)
    assert table.column("top_class").null_count == 0

    stopped = Classifier(replace(clf.manifest, gp=replace(clf.manifest.gp, max_iter=1)),
                         clf.session, threads=1)
    status = classify_batch(stopped, alerts).column("status").to_pylist()
    assert "gp_max_iter" in status and set(status) <= {"ok", "gp_max_iter"}

    summary = classify_files([fixtures / "ztf" / "fink_4.02_10.parquet"],
                             tmp_path / "out.parquet", stopped, progress=False)
    assert summary["classified"] == len(alerts) and summary["rejected"] == {}
    assert summary["flagged"] == {"gp_max_iter": status.count("gp_max_iter")}
