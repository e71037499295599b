"""Manifest + ONNX Runtime classifier: the shipped models and a real (tiny) trained one.

The runtime needs no torch, and neither do these tests, except the ones on a freshly
trained model (the ``ztf_model`` fixture skips them without torch): tests/test_packaging.py
runs this file in a fresh venv holding the wheel and pytest alone.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from astrot2.demo import demo_alerts_dir
from astrot2.errors import ModelError
from astrot2.io import read_alerts
from astrot2.io.plasticc import read_plasticc
from astrot2.runtime import Classifier

# ztf_model: the tiny trained model of conftest.py (session-scoped, shared with other tests;
# needs torch, skipped without it); the shipped ``ztf`` model needs nothing beyond the core.


@pytest.fixture(scope="module")
def shipped_ztf() -> Path:
    """The folder of the shipped real-sky ``ztf`` model."""
    from astrot2.runtime import shipped_models

    if "ztf" not in shipped_models():
        pytest.skip("no shipped ztf model")
    return shipped_models()["ztf"]


def test_runtime_does_not_import_torch():
    import subprocess

    code = "import sys, astrot2.runtime, astrot2.manifest; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_companion_inference_needs_neither_torch_nor_scikit_learn():
    """Classifying with ``ztf-plasticc+companion`` imports neither torch nor scikit-learn
    (nor the onnx package): the trees run in ONNX Runtime; nor does the real-sky ``ztf``."""
    import subprocess

    code = ("import sys; from astrot2.runtime import Classifier; "
            "from astrot2.demo import demo_alerts_dir; from astrot2.io import read_alerts; "
            "b = read_alerts(demo_alerts_dir()); "
            "p = Classifier.load('ztf-plasticc+companion').predict(b); "
            "Classifier.load('ztf').predict(b); "
            "print(int((p.status == 'ok').sum()), "
            "[m for m in ('torch', 'sklearn', 'onnx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out.endswith("[]") and int(out.split()[0]) > 50


def test_classifies_real_ztf_alerts(ztf_model):
    clf = Classifier.load(ztf_model, threads=1)
    batch = read_alerts(demo_alerts_dir())
    pred = clf.predict(batch)
    assert pred.probabilities.shape == (len(batch), 14)
    ok = pred.status == "ok"
    assert ok.sum() >= len(batch) - 2
    np.testing.assert_allclose(pred.probabilities[ok].sum(axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(pred.probabilities).all()
    assert clf.name == "ztf@0.1.0"
    manifest = json.loads((ztf_model / "manifest.json").read_text())
    assert manifest["survey"]["bands"] == ["g", "r", "i"]
    assert manifest["features"]["bands"] == ["g", "r"]
    assert len(manifest["training"]["data_sha256"]) == 64


def test_wrong_survey_is_refused(shipped_ztf, fixtures):
    lsst = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz")
    with pytest.raises(ModelError, match="ztf alerts"):
        Classifier.load(shipped_ztf).predict(lsst)


def test_tampered_model_is_refused(shipped_ztf, tmp_path):
    """One flipped bit of the weights file (here ``model.t2c``) fails the checksum; an
    unknown manifest setting is refused; a missing folder is named."""
    weights = json.loads((shipped_ztf / "manifest.json").read_text())["onnx"]["file"]
    copy = tmp_path / "m"
    shutil.copytree(shipped_ztf, copy)
    data = bytearray((copy / weights).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / weights).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        Classifier.load(copy)
    doc = json.loads((shipped_ztf / "manifest.json").read_text())
    doc["features"]["bands"] = ["r", "g"]  # a mismatch the checksum cannot see...
    doc["gp"]["secret"] = 1  # ...but unknown settings are refused
    shutil.copy(shipped_ztf / weights, copy / weights)
    (copy / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="unknown settings"):
        Classifier.load(copy)
    with pytest.raises(ModelError, match="no model folder"):
        Classifier.load(tmp_path / "nowhere")


def test_classify_cli_one_row_per_alert(ztf_model, fixtures, tmp_path, capsys):
    import pyarrow.parquet as pq

    from astrot2.cli import main
    from astrot2.io import expand_inputs, read_file

    out = tmp_path / "out.parquet"
    assert main(["classify", str(fixtures / "ztf"), "-o", str(out), "--model", str(ztf_model),
                 "--batch-size", "3", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    ids = [a for p in expand_inputs(fixtures / "ztf") for a in read_file(p).alert_id]
    table = pq.read_table(out)
    assert table.column("alert_id").to_pylist() == ids == [str(i) for i in ids]
    assert summary["alerts_in"] == len(ids) == table.num_rows
    assert summary["classified"] + sum(summary["rejected"].values()) == len(ids)
    probs = np.column_stack([table.column(c).to_numpy() for c in table.column_names
                             if c.startswith("p_")])
    assert probs.shape[1] == 14 and np.isfinite(probs).all()
    ok = np.array(table.column("status").to_pylist()) == "ok"
    np.testing.assert_allclose(probs[ok].sum(axis=1), 1.0, rtol=1e-5)
    assert set(table.column("model").to_pylist()) == {"ztf@0.1.0"}
    csv_out = tmp_path / "out.csv"
    assert main(["classify", str(fixtures / "ztf"), "-o", str(csv_out), "--model",
                 str(ztf_model), "--quiet", "--min-points", "10"]) == 0
    rejected = json.loads(capsys.readouterr().out)["rejected"]
    assert rejected.get("fewer_than_10_points", 0) >= 1


@pytest.mark.shared
def test_shipped_lsst_model_reproduces_its_test_metrics(shared_data):
    """Through the torch-free runtime, the shipped model gives its manifest's figure."""
    from astrot2.classes import class_index
    from astrot2.metrics import weighted_log_loss
    from astrot2.runtime import shipped_models

    if "lsst" not in shipped_models():
        pytest.skip("no shipped lsst model")
    clf = Classifier.load("lsst")
    folder = shipped_models()["lsst"]
    test_ids = json.loads((folder / "split.json").read_text())["test"]
    batch = read_plasticc(shared_data / "plasticc" / "training_set.csv.gz",
                          shared_data / "plasticc" / "training_set_metadata.csv")
    test = batch.take(np.flatnonzero(np.isin(batch.object_id, test_ids)))
    pred = clf.predict(test)
    assert (pred.status == "ok").all()
    got = weighted_log_loss(class_index(test.extra["target"]), pred.probabilities)
    expected = clf.manifest.raw["metrics"]["test_split"]["whole"]["flat_log_loss"]
    assert got == pytest.approx(expected, abs=1e-3)


def test_a_shipped_name_is_the_shipped_model_whatever_the_current_folder(tmp_path,
                                                                          monkeypatch,
                                                                          fixtures):
    """One rule for model names: ``ztf`` is the shipped model even beside a folder
    ``ztf/`` (of alerts, say); a path is a model folder only when it holds a manifest."""
    from astrot2.cli import main
    from astrot2.errors import ModelError
    from astrot2.runtime import resolve_model, shipped_models

    if "ztf" not in shipped_models():
        pytest.skip("no shipped ztf model")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(fixtures / "ztf", tmp_path / "ztf")  # alerts, in a folder named ztf
    assert resolve_model("ztf") == shipped_models()["ztf"]
    with pytest.raises(ModelError, match=r"no model manifest at ztf/manifest\.json"):
        resolve_model("./ztf")
    assert main(["classify", "ztf", "-o", "out.parquet", "--quiet"]) == 0
    assert main(["classify", "ztf", "-o", "out2.parquet", "--model", "./ztf",
                 "--quiet"]) == 2
    model = tmp_path / "my_model"
    shutil.copytree(shipped_models()["ztf"], model)
    assert resolve_model(str(model)) == model
    assert resolve_model(model / "manifest.json") == model  # the folder of a manifest


def test_an_overflowing_light_curve_still_gets_a_valid_row(shipped_ztf):
    """A flux of -1.8e308 overflows the GP to -inf (found by tests/test_properties.py): the
    inputs stay finite and the row sums to 1; and a non-finite output is flagged even
    where the model re-weights to its training prior (the shipped ``ztf`` does)."""
    from astrot2.lightcurves import LightCurveBatch
    from astrot2.surveys import get_survey

    clf = Classifier.load(shipped_ztf, threads=1)
    ztf = get_survey("ztf")
    batch = LightCurveBatch.from_observations(
        ztf, ["a0"], ["o0"], owner=np.zeros(8, dtype=int),
        time=np.array([59000.0] * 5 + [59001.0, 59002.0, 59003.0]),
        flux=np.array([0.0, 0.0, -1.79769313e308, 0.0, 0.0, 0.0, 0.0, 0.0]),
        flux_err=np.ones(8), band=np.array([0, 0, 1, 0, 1, 0, 0, 0], dtype=np.int8),
        detected=np.zeros(8, dtype=bool))
    inputs = clf.model_inputs(batch)
    assert all(np.isfinite(v).all() for v in inputs.feeds.values())
    pred = clf.predict(batch)
    assert pred.status[0] in ("ok", "gp_fallback", "gp_max_iter")
    assert pred.probabilities[0].sum() == pytest.approx(1.0, abs=1e-5)
    status = np.array(["gp_fallback"], dtype=object)
    flagged = clf.calibrated(np.full((1, 14), np.nan), status)
    assert flagged.status[0] == "non_finite_output" and flagged.probabilities.sum() == 0.0
