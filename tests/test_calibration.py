"""Temperature scaling, ECE, entropy and risk-coverage; the manifest round trip."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest

from astrot2.calibration import (
    calibrate_model,
    ece_bootstrap,
    expected_calibration_error,
    fit_temperature,
    predictive_entropy,
    raw_logits,
    refresh_metrics,
    reliability,
    risk_coverage,
    softmax,
    write_calibration,
)
from astrot2.classify import classify_batch
from astrot2.errors import ModelError
from astrot2.io.plasticc import read_plasticc
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


def test_ece_matches_a_loop_implementation():
    """Top-label ECE against a direct per-bin loop; 0 for an exact toy case."""
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4) * 0.5, 500)
    y = rng.integers(0, 4, 500)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    edges = np.linspace(0, 1, 16)
    expected = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            expected += sel.mean() * abs((pred[sel] == y[sel]).mean() - conf[sel].mean())
    assert expected_calibration_error(p, y) == pytest.approx(expected, abs=1e-12)
    # 4 samples at confidence 0.75, 3 right: perfectly calibrated
    p4 = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(p4, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(p4, np.array([1, 1, 1, 1])) == pytest.approx(0.75)
    assert sum(reliability(p, y)["count"]) == 500


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


def test_entropy_and_risk_coverage():
    """Entropy bounds; a ranking that puts every error last gives accuracy 1 up to acc."""
    k = 14
    assert predictive_entropy(np.full((1, k), 1 / k))[0] == pytest.approx(np.log(k))
    assert predictive_entropy(np.eye(k)[:2]).tolist() == [0.0, 0.0]
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(k), 1000)
    y = rng.integers(0, k, 1000)
    correct = p.argmax(axis=1) == y
    rc = risk_coverage(p, y, uncertainty=(~correct).astype(float),
                       coverages=np.array([correct.mean() * 0.99, 1.0]))
    assert rc["accuracy"][0] == 1.0 and rc["accuracy"][1] == pytest.approx(correct.mean())
    worst = risk_coverage(p, y, uncertainty=correct.astype(float))
    assert worst["aurc"] > rc["aurc"]


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


def test_classify_batch_entropy_column(lsst_classifier, fixtures):
    """``uncertainty=True`` appends ``entropy``; the other columns are unchanged, in order."""
    batch = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                          fixtures / "plasticc" / "plasticc_meta_sample.csv")
    batch = batch.with_reject(np.arange(len(batch)) == 0, "test_reject")
    plain = classify_batch(lsst_classifier, batch)
    table = classify_batch(lsst_classifier, batch, uncertainty=True)
    assert table.column_names == [*plain.column_names, "entropy"]
    assert table.drop(["entropy"]).equals(plain)
    prob = np.column_stack([table.column(c).to_numpy() for c in table.column_names
                            if c.startswith("p_")])
    entropy = table.column("entropy").to_numpy(zero_copy_only=False)
    assert np.isnan(entropy[0])
    np.testing.assert_allclose(entropy[1:], predictive_entropy(prob[1:]), rtol=1e-5)
    assert ((entropy[1:] >= 0) & (entropy[1:] <= np.log(14) + 1e-6)).all()


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


def test_classify_batch_tta_columns(lsst_classifier, fixtures):
    """``tta=K`` appends four columns after ``entropy``; seeded, so reproducible."""
    from astrot2.calibration import tta_probabilities

    batch = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                          fixtures / "plasticc" / "plasticc_meta_sample.csv").take(range(12))
    plain = classify_batch(lsst_classifier, batch, uncertainty=True)
    table = classify_batch(lsst_classifier, batch, uncertainty=True, tta=2)
    assert table.column_names == [*plain.column_names, "tta_top_class", "tta_top_prob",
                                  "tta_top_std", "tta_entropy"]
    assert table.select(plain.column_names).equals(plain)
    mean, std = tta_probabilities(lsst_classifier, batch, 2)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(table.column("tta_top_prob").to_numpy(), mean.max(axis=1),
                               rtol=1e-6)
    np.testing.assert_allclose(table.column("tta_top_std").to_numpy(),
                               std[np.arange(12), mean.argmax(axis=1)], rtol=1e-5, atol=1e-7)
    assert (std >= 0).all() and (std <= 0.5).all()
    # one copy without dropping anything would be the prediction itself: with drops, the
    # mean stays close to it for most light curves
    agree = (mean.argmax(axis=1) == lsst_classifier.predict(batch).probabilities.argmax(axis=1))
    assert agree.mean() >= 0.5
    with pytest.raises(ValueError, match="n_copies must be >= 1"):
        tta_probabilities(lsst_classifier, batch, 0)


@pytest.mark.shared
@pytest.mark.slow
def test_cli_calibrate_dry_run_reproduces_the_stored_temperature(shared_data, tmp_path,
                                                                 capsys, monkeypatch):
    """``astrot2 calibrate --dry-run`` on the shipped lsst model: same T, manifest kept."""
    from astrot2.cli import main
    from astrot2.runtime import shipped_models

    if "lsst" not in shipped_models() or "calibration" not in json.loads(
            (shipped_models()["lsst"] / "manifest.json").read_text()):
        pytest.skip("no calibrated shipped lsst model")
    manifest = shipped_models()["lsst"] / "manifest.json"
    before = manifest.read_bytes()
    monkeypatch.setenv("ASTROT2_DATA", str(shared_data))
    out = tmp_path / "report"
    assert main(["calibrate", "--model", "lsst", "--dry-run", "-o", str(out), "--data",
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
