"""Class activation maps from the ONNX graph (torch-free): consistency with the logits."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from astrot2.calibration import raw_logits
from astrot2.classes import CLASSES
from astrot2.cli import main
from astrot2.errors import ModelError
from astrot2.explain import cam_model, explain, find_alert, plot_explanation
from astrot2.features import prepare
from astrot2.io import read_alerts
from astrot2.io.plasticc import read_plasticc
from astrot2.runtime import Classifier, shipped_models
from astrot2.utils import sha256_file

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def plasticc_sample(fixtures):
    """The committed real PLAsTiCC objects (LSST bands, with host photo-z)."""
    folder = fixtures / "plasticc"
    return read_plasticc(folder / "plasticc_lc_sample.csv.gz",
                         folder / "plasticc_meta_sample.csv")


@pytest.fixture(scope="module")
def ztf_alerts(fixtures):
    """The committed real ZTF alerts."""
    return read_alerts(sorted((fixtures / "ztf").glob("*")))


def _check_decomposition(clf: Classifier, batch) -> np.ndarray:
    """Assert logit = mean_t CAM + extra part + bias, and agreement with the runtime."""
    expl = explain(clf, batch)
    ok = expl.status == "ok"
    assert ok.sum() >= 5
    assert expl.cam.shape == (len(batch), 14, clf.manifest.gp.n_steps)
    recon = expl.cam.mean(axis=2) + expl.extra_contribution + expl.bias
    np.testing.assert_allclose(recon[ok], expl.logits[ok], atol=1e-4, rtol=0)
    # the logits are those of the shipped graph through the runtime's own session
    x, extra, _, _ = prepare(batch, clf.manifest.gp, clf.manifest.features)
    feeds = {"x": x, "extra": extra} if clf.manifest.n_extra else {"x": x}
    np.testing.assert_allclose(expl.logits[ok], raw_logits(clf, feeds)[ok], atol=1e-5, rtol=0)
    pred = clf.predict(batch)
    np.testing.assert_array_equal(expl.status, pred.status)
    np.testing.assert_allclose(expl.probabilities, pred.probabilities, atol=1e-6)
    assert np.isnan(expl.cam[~ok]).all() and np.isfinite(expl.cam[ok]).all()
    return expl.cam


def test_cam_decomposes_the_lsst_logits(lsst_classifier, plasticc_sample):
    """Real PLAsTiCC objects, shipped lsst model: the CAM sums back to the ONNX logits.

    (A patched student has one encoder step per ``patch`` grid steps: its CAM is constant
    over each patch.)
    """
    _check_decomposition(lsst_classifier, plasticc_sample)


@pytest.mark.parametrize("suffix", [".onnx", ".t2c"])
def test_cam_decomposes_a_hidden_head(suffix, plasticc_sample, tmp_path):
    """A head with a hidden ReLU layer (``head_hidden``: Gemm -> Relu -> Gemm in the
    ``.onnx`` graph, one FusedGemm in the optimised ``.t2c``): each alert's active hidden
    units make its head linear, and the CAM still sums back to the logits."""
    pytest.importorskip("torch")
    from astrot2.compress.artefact import write_compact
    from astrot2.model import export_onnx
    from astrot2.train_real import network_of, widened

    if "lsst" not in shipped_models():
        pytest.skip("no shipped lsst model")
    source = shipped_models()["lsst"]
    network, section = network_of(source)
    network, section = widened(network, section, section["n_extra"], head_hidden=16)
    folder = tmp_path / "hidden"
    shutil.copytree(source, folder)
    export_onnx(network, str(folder / "model.onnx"))
    if suffix == ".t2c":
        write_compact(folder / "model.onnx", folder / "model.t2c")
        (folder / "model.onnx").unlink()
    else:
        (folder / "model.t2c").unlink()
    doc = json.loads((folder / "manifest.json").read_text())
    doc["model"] = section
    doc["onnx"].update(file=f"model{suffix}", sha256=sha256_file(folder / f"model{suffix}"),
                       kind="compact" if suffix == ".t2c" else "onnx")
    (folder / "manifest.json").write_text(json.dumps(doc))
    clf = Classifier.load(folder, threads=1)
    cm = cam_model(clf.manifest.model_file)
    assert cm.hidden is not None and cm.hidden[0].shape == (16, 32 + section["n_extra"])
    _check_decomposition(clf, plasticc_sample)
    expl = explain(clf, plasticc_sample)  # the mask matters: no single linear head
    ok = expl.status == "ok"
    assert np.ptp(expl.bias[ok], axis=0).max() > 1e-3


def test_cam_decomposes_the_logits_of_real_ztf_alerts(ztf_model, ztf_alerts):
    """Real ZTF alerts, a ztf model folder (tiny, trained on the PLAsTiCC fixture)."""
    _check_decomposition(Classifier.load(ztf_model, threads=1), ztf_alerts)


def test_explain_with_the_companion(ztf_alerts, tmp_path):
    """``ztf-plasticc+companion``: the CAM still decomposes the network's logits, the
    probabilities are those of predict (the combination), the companion's own ones are
    returned and the figure says so."""
    clf = Classifier.load("ztf-plasticc+companion", threads=1)
    _check_decomposition(clf, ztf_alerts)
    expl = explain(clf, ztf_alerts)
    ok = expl.status == "ok"
    assert expl.companion is not None and expl.companion.shape == expl.probabilities.shape
    np.testing.assert_allclose(expl.companion[ok].sum(axis=1), 1.0, atol=1e-5)
    alone = explain(Classifier.load("ztf-plasticc", threads=1), ztf_alerts)
    assert alone.companion is None
    np.testing.assert_allclose(alone.logits, expl.logits)  # same network
    assert np.abs(alone.probabilities[ok] - expl.probabilities[ok]).max() > 0.01
    i = int(np.flatnonzero(ok)[0])
    assert plot_explanation(expl, i, tmp_path / "c.png").stat().st_size > 10_000


def test_cam_does_not_depend_on_batch_composition(lsst_classifier, plasticc_sample):
    """One light curve's CAM is the same alone as in a batch (and in reverse order)."""
    whole = explain(lsst_classifier, plasticc_sample).cam
    order = np.arange(len(plasticc_sample))[::-1][:7]
    part = explain(lsst_classifier, plasticc_sample.take(order)).cam
    np.testing.assert_allclose(part, whole[order], atol=1e-5, equal_nan=True)


def test_explain_leaves_the_model_file_unchanged(lsst_classifier, plasticc_sample):
    """The extra graph output is added in memory only."""
    file = lsst_classifier.manifest.model_file
    before = sha256_file(file)
    cam_model(file)
    explain(lsst_classifier, plasticc_sample.take([0]))
    assert sha256_file(file) == before == lsst_classifier.manifest.sha256


def test_ort_files_and_foreign_graphs_are_refused(tmp_path):
    """``.ort`` keeps no ONNX graph; a graph without t2's pooled head is not explained."""
    from onnx import TensorProto, helper, save

    ort_file = tmp_path / "model.ort"
    ort_file.write_bytes(b"not used")
    with pytest.raises(ModelError, match="does not keep it"):
        cam_model(ort_file)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["logits"])], "g", [x], [y])
    save(helper.make_model(graph), str(tmp_path / "relu.onnx"))
    with pytest.raises(ModelError, match="not made by a Gemm"):
        cam_model(tmp_path / "relu.onnx")


def test_find_alert_names_the_missing_id(ztf_alerts):
    """An unknown id is a clear error; object ids work too."""
    assert find_alert(ztf_alerts, ztf_alerts.alert_id[3]) >= 3
    assert ztf_alerts.object_id[find_alert(ztf_alerts, ztf_alerts.object_id[2])] == \
        ztf_alerts.object_id[2]
    with pytest.raises(ValueError, match=r"no alert .* 'nope'"):
        find_alert(ztf_alerts, "nope")


def test_an_object_id_names_its_latest_alert():
    """Real ZTF objects with several alerts (the bundled demo alerts; files in name
    order read ZTF18aaqfhlj's oldest alert last): an object id picks the alert whose light
    curve ends last, the one a broker classifies last."""
    from astrot2.demo import demo_alerts_dir

    batch = read_alerts(demo_alerts_dir())
    objects = batch.object_id.astype(str)
    several = sorted({o for o in objects if (objects == o).sum() > 1})
    assert len(several) >= 5 and "ZTF18aaqfhlj" in several
    for obj in several:
        rows = np.flatnonzero(objects == obj)
        latest = max(rows, key=lambda i: batch.time[batch.offsets[i]:batch.offsets[i + 1]][-1])
        assert find_alert(batch, obj) == latest
    i = find_alert(batch, "ZTF18aaqfhlj")
    assert (str(batch.alert_id[i]), batch.n_points[i]) == ("1786555201115010001", 5)  # not 1


def test_plot_has_the_three_panels(lsst_classifier, plasticc_sample, tmp_path):
    """The figure is drawn (non-blank) with a light-curve, a CAM strip and a bar panel."""
    import matplotlib.image as mpimg

    expl = explain(lsst_classifier, plasticc_sample.take([0, 1]))
    path = plot_explanation(expl, 1, tmp_path / "cam.png", n_classes=2)
    img = mpimg.imread(path)
    assert img.shape[0] > 400 and img.shape[1] > 1000
    assert img[..., :3].std() > 0.05
    with pytest.raises(ModelError, match="not classified"):
        bad = expl._replace(status=np.array(["no_points_in_model_bands", "ok"], dtype=object))
        plot_explanation(bad, 0, tmp_path / "bad.png")


def test_cli_explain_real_ztf_alert(ztf_model, fixtures, tmp_path, capsys):
    """``astrot2 explain`` on a real ZTF alert: a PNG and the probabilities of classify."""
    from astrot2.classify import classify_batch

    src = fixtures / "ztf" / "fink_4.02_10.parquet"
    batch = read_alerts([src])
    clf = Classifier.load(ztf_model, threads=1)
    table = classify_batch(clf, batch)
    i = int(np.argmax(batch.n_points))
    alert = str(batch.alert_id[i])
    out = tmp_path / "fig.png"
    assert main(["explain", str(src), "--alert-id", alert, "--model", str(ztf_model),
                 "-o", str(out), "--classes", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["alert_id"] == alert and out.stat().st_size > 20_000
    row = table.slice(i, 1).to_pylist()[0]
    for name, p in summary["top_classes"].items():
        slug = {c.name: c.slug for c in CLASSES}[name]
        assert p == pytest.approx(row[f"p_{slug}"], abs=1e-4)
    assert next(iter(summary["top_classes"])) == row["top_class"]
    assert main(["explain", str(src), "--alert-id", "nope", "--model", str(ztf_model),
                 "-o", str(out)]) == 2
    assert "no alert" in capsys.readouterr().err
    # -o a folder (existing, or written with a trailing /): FOLDER/ALERT_ID.png in it
    figures = tmp_path / "figures"
    figures.mkdir()
    for given in (str(figures), f"{figures}/"):
        assert main(["explain", str(src), "--alert-id", alert, "--model", str(ztf_model),
                     "-o", given]) == 0
        assert json.loads(capsys.readouterr().out)["figure"] == str(figures / f"{alert}.png")
        assert [p.name for p in figures.iterdir()] == [f"{alert}.png"]
    assert not (tmp_path / "figures.png").exists()
    missing = tmp_path / "missing"
    assert main(["explain", str(src), "--alert-id", alert, "--model", str(ztf_model),
                 "-o", f"{missing}/"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"astrot2: error: -o {missing / alert}.png: folder {missing} does not exist; "
        "create it first"]


@pytest.fixture(scope="module")
def onnx_lsst() -> Classifier:
    """An ``.onnx`` lsst model: the uncompressed parent of the shipped ``lsst-plasticc``."""
    from astrot2.runtime import shipped_models

    folder = shipped_models().get("lsst-plasticc")
    if folder is None or not (folder / "parent" / "manifest.json").is_file():
        pytest.skip("no .onnx lsst model")
    return Classifier.load(folder / "parent", threads=1)


def test_cam_decomposes_the_logits_of_the_onnx_parent(onnx_lsst, plasticc_sample):
    """The uncompressed t2 (one encoder step per grid step) decomposes too."""
    cam = _check_decomposition(onnx_lsst, plasticc_sample)
    assert not np.allclose(cam[:, :, 0::2], cam[:, :, 1::2], equal_nan=True)


def test_compact_model_file_is_explained(onnx_lsst, plasticc_sample, tmp_path):
    """A lossless ``.t2c`` copy of an ``.onnx`` model gives the same CAM."""
    artefact = pytest.importorskip("astrot2.compress.artefact")
    folder = tmp_path / "lsst"
    shutil.copytree(onnx_lsst.manifest.model_file.parent, folder, dirs_exist_ok=True)
    artefact.write_compact(onnx_lsst.manifest.model_file, folder / "model.t2c")
    doc = json.loads((folder / "manifest.json").read_text())
    doc["onnx"].update(file="model.t2c", sha256=sha256_file(folder / "model.t2c"))
    (folder / "manifest.json").write_text(json.dumps(doc))
    compact = Classifier.load(folder, threads=1)
    assert compact.manifest.model_file.suffix == ".t2c"
    sample = plasticc_sample.take(np.arange(6))
    np.testing.assert_allclose(explain(compact, sample).cam, explain(onnx_lsst,
                                                                     sample).cam, atol=1e-4)


def test_explain_scores_the_light_curve_classify_scored(fixtures, tmp_path):
    """A real Rubin alert with forced photometry (125 points with it, 43 without): explain
    reads it as ``astrot2 classify`` does and scores it with the classifier's own steps.
    On the same batch its probabilities are classify's bit for bit; alone, to ONNX
    Runtime's batch-size rounding (1 float32 ulp), far from the detections-only ones."""
    import pyarrow.parquet as pq

    from astrot2.classify import INCLUDE_FORCED
    from astrot2.explain import explain_alert

    if "lsst" not in shipped_models():
        pytest.skip("no shipped lsst model")
    path = fixtures / "rubin" / "rubin_fink_3.parquet"
    alert = "170112073309093904"
    out = tmp_path / "classified.parquet"
    assert main(["classify", str(path), "-o", str(out), "--model", "lsst", "--quiet"]) == 0
    table = pq.read_table(out).to_pandas()
    classified = table[[f"p_{c.slug}" for c in CLASSES]].to_numpy()
    batch = read_alerts([path], include_forced=INCLUDE_FORCED)  # as classify reads it
    assert list(batch.alert_id.astype(str)) == list(table["alert_id"])
    clf = Classifier.load("lsst")
    expl = explain(clf, batch)
    np.testing.assert_array_equal(expl.probabilities.astype(np.float32), classified)
    assert list(expl.status) == list(table["status"])

    one_expl, one, _ = explain_alert(path, alert, model="lsst")
    i = find_alert(batch, alert)
    assert one.n_points[0] == batch.n_points[i] == 125
    for column in ("time", "flux", "flux_err", "band", "detected"):
        np.testing.assert_array_equal(getattr(one[0], column), getattr(batch[i], column))
    np.testing.assert_allclose(one_expl.probabilities[0], classified[i], atol=1e-7, rtol=0)
    without, _, _ = explain_alert(path, alert, model="lsst", include_forced=False)
    assert np.abs(without.probabilities[0] - classified[i]).max() > 1e-3
