"""Temperature scaling and its ECE bootstrap; the manifest round trip."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from astrot2.calibration import (
    calibrate_model,
    fit_temperature,
    raw_logits,
    refresh_metrics,
    write_calibration,
)
from astrot2.errors import ModelError
from astrot2.io.plasticc import read_plasticc
from astrot2.metrics import ece_bootstrap, expected_calibration_error, softmax
from astrot2.runtime import Classifier
from astrot2.utils import sha256_file


def _sample(temperature: float, n: int, k: int = 5, seed: int = 0):
    """Logits and labels drawn from ``softmax(logits / temperature)``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, (n, k))
    p = softmax(z, temperature)
    y = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return z, y


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_generating_temperature(true_t):
    """Labels drawn at temperature T: the NLL fit finds T (rtol 10 %, n = 20,000)."""
    z, y = _sample(true_t, 20_000)
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.1)


def test_ece_bootstrap_interval_bias_and_groups():
    """Calibrated labels: the bias-corrected ECE is below the raw one and the interval
    reaches down to ~0; an overconfident model's interval excludes 0.  Five copies of
    every row, grouped, are no more precise than the rows themselves; ungrouped they
    would look ~sqrt(5) x more precise."""
    z, y = _sample(1.0, 2_000, seed=4)
    calibrated = ece_bootstrap(softmax(z), y, n_boot=300)
    assert calibrated["ece_debiased"] < calibrated["ece"]
    assert calibrated["ci"][0] < 0.01 < calibrated["ci"][1] < 0.05
    sharp = ece_bootstrap(softmax(2.0 * z), y, n_boot=300)
    assert sharp["ci"][0] > 0.05 and sharp["ci"][0] <= sharp["ece"] <= sharp["ci"][1] + 0.01
    p5, y5 = np.repeat(softmax(2.0 * z), 5, axis=0), np.repeat(y, 5)
    grouped = ece_bootstrap(p5, y5, np.repeat(np.arange(len(y)), 5), n_boot=300)
    independent = ece_bootstrap(p5, y5, n_boot=300)
    width = np.diff(sharp["ci"])[0]
    assert grouped["ece"] == pytest.approx(sharp["ece"])
    assert np.diff(grouped["ci"])[0] == pytest.approx(width, rel=0.35)
    assert np.diff(independent["ci"])[0] < 0.7 * width


def test_temperature_scaling_lowers_ece_of_an_overconfident_model():
    """Logits sharpened x2 (overconfident): T ~ 2 and the ECE drops to sampling noise."""
    z, y = _sample(1.0, 20_000, seed=2)
    t = fit_temperature(2.0 * z, y)
    assert t == pytest.approx(2.0, rel=0.1)
    before = expected_calibration_error(softmax(2.0 * z), y)
    after = expected_calibration_error(softmax(2.0 * z, t), y)
    assert before > 0.05 and after < 0.015
    np.testing.assert_array_equal(softmax(z, t).argmax(axis=1), z.argmax(axis=1))


def _copy(folder, tmp_path):
    dest = tmp_path / folder.name
    shutil.copytree(folder, dest)
    return dest


def test_manifest_temperature_is_applied_and_model_file_kept(lsst_classifier, fixtures,
                                                             tmp_path):
    """``calibration.temperature`` divides the logits in predict; the ONNX file is untouched."""
    folder = _copy(lsst_classifier.manifest.model_file.parent, tmp_path)
    file = folder / lsst_classifier.manifest.model_file.name
    sha = sha256_file(file)
    write_calibration(folder, {"method": "temperature_scaling", "temperature": 2.0})
    calibrated = Classifier.load(folder, threads=1)
    assert sha256_file(file) == sha == calibrated.manifest.sha256
    batch = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                          fixtures / "plasticc" / "plasticc_meta_sample.csv")
    from astrot2.features import prepare

    m = calibrated.manifest
    x, extra, _, _ = prepare(batch, m.gp, m.features)
    logits = raw_logits(calibrated, {"x": x, "extra": extra})
    cal = calibrated.predict(batch).probabilities.astype(np.float64)
    np.testing.assert_allclose(cal, softmax(logits, 2.0), atol=2e-6)
    np.testing.assert_array_equal(cal.argmax(axis=1), logits.argmax(axis=1))
    with pytest.raises(ModelError, match="positive temperature"):
        write_calibration(folder, {"temperature": -1.0})


def test_calibrate_model_folder_round_trip(ztf_model, fixtures, tmp_path):
    """calibrate -> manifest section -> Classifier applies it; metrics re-measured."""
    folder = _copy(ztf_model, tmp_path)
    batch = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                          fixtures / "plasticc" / "plasticc_meta_sample.csv")
    sha = sha256_file(folder / "model.onnx")
    section, logits = calibrate_model(folder, batch)
    assert set(section["ece"]) == {"validation", "test"}
    assert "survey_windows" in section["ece"]["test"]  # the ztf preset's re-observed view
    views = ("whole", "alert_windows", "survey_windows")
    assert section["fitted_on"]["views"] == list(views)
    z = np.concatenate([logits["validation"][v][0] for v in views])
    y = np.concatenate([logits["validation"][v][1] for v in views])
    assert section["temperature"] == pytest.approx(fit_temperature(z, y))
    for views in section["ece"].values():
        for row in views.values():
            assert 0.0 <= row["after"] <= 1.0 and row["n"] > 0
    old = json.loads((folder / "manifest.json").read_text())["metrics"]["test_split"]
    write_calibration(folder, section)
    refresh_metrics(folder, batch)
    doc = json.loads((folder / "manifest.json").read_text())
    assert doc["calibration"]["temperature"] == section["temperature"]
    assert doc["metrics"]["test_split_uncalibrated"] == old
    assert sha256_file(folder / "model.onnx") == sha == doc["onnx"]["sha256"]
    clf = Classifier.load(folder)
    from astrot2.evaluate import evaluate_model

    report = evaluate_model(folder, batch)
    for view, stored in doc["metrics"]["test_split"].items():
        assert report[view]["flat_log_loss"] == pytest.approx(stored["flat_log_loss"],
                                                              abs=1e-9)
    assert clf.manifest.raw["calibration"]["n_bins"] == 15


@pytest.mark.shared
@pytest.mark.slow
def test_cli_calibrate_dry_run_reproduces_the_stored_temperature(shared_data, tmp_path,
                                                                 capsys, monkeypatch):
    """``astrot2 calibrate --dry-run`` on the shipped lsst-plasticc model (calibrated on its
    plain validation split): same T, manifest kept."""
    from astrot2.cli import main
    from astrot2.runtime import shipped_models

    if "lsst-plasticc" not in shipped_models() or "calibration" not in json.loads(
            (shipped_models()["lsst-plasticc"] / "manifest.json").read_text()):
        pytest.skip("no calibrated shipped lsst-plasticc model")
    manifest = shipped_models()["lsst-plasticc"] / "manifest.json"
    before = manifest.read_bytes()
    monkeypatch.setenv("ASTROT2_DATA", str(shared_data))
    out = tmp_path / "report"
    assert main(["calibrate", "--model", "lsst-plasticc", "--dry-run", "-o", str(out), "--data",
                 str(tmp_path / "cache"), "--threads", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    stored = json.loads(before)["calibration"]
    assert summary["temperature"] == pytest.approx(stored["temperature"], abs=1e-4)
    # 1e-6: the GP core's summation order is free to change at the 1e-9 level
    assert summary["ece"]["test"]["whole"]["after"] == pytest.approx(
        stored["ece"]["test"]["whole"]["after"], abs=1e-6)
    assert manifest.read_bytes() == before and summary["manifest"] is None
    report = json.loads((out / "calibration.json").read_text())
    assert report["risk_coverage_test"]["whole: entropy"]["accuracy"][-1] == pytest.approx(
        json.loads(before)["metrics"]["test_split"]["whole"]["accuracy"], abs=1e-9)
