"""The feature companion: features, ONNX export, combination, attach / load / calibrate."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from astrot2.classes import CLASSES
from astrot2.companion import (
    COMPANION_FILE,
    Combination,
    companion_feature_names,
    feature_names,
    summary_features,
)
from astrot2.companion_fit import fit_combination
from astrot2.errors import ModelError
from astrot2.lightcurves import LightCurveBatch
from astrot2.surveys import get_survey


def _batch() -> LightCurveBatch:
    """Two ZTF light curves: one with g and r points, one with r points only."""
    ztf = get_survey("ztf")
    g, r = ztf.bands.index("g"), ztf.bands.index("r")
    return LightCurveBatch.from_observations(
        ztf, ["a1", "a2"], ["o1", "o2"],
        owner=np.array([0, 0, 0, 0, 1, 1]),
        time=np.array([0.0, 1.0, 3.0, 4.0, 10.0, 12.5]),
        flux=np.array([10.0, 40.0, 20.0, -5.0, 8.0, 16.0]),
        flux_err=np.array([1.0, 2.0, 4.0, 5.0, 2.0, 4.0]),
        band=np.array([g, g, r, r, r, r], dtype=np.int8),
        detected=np.array([True, True, True, False, True, True]))


def test_summary_features_by_hand():
    batch = _batch()
    extra = np.zeros((2, 0), dtype=np.float32)
    f = summary_features(batch, extra, ("g", "r"))
    names = feature_names(("g", "r"), 0)
    assert f.shape == (2, len(names)) and f.dtype == np.float32
    row = dict(zip(names, f[0].astype(float), strict=True))
    # peak over both bands 40: g points 10, 40 -> 0.25, 1.0; r points 20, -5 -> 0.5, -0.125
    assert row["g_max"] == pytest.approx(1.0) and row["g_min"] == pytest.approx(0.25)
    assert row["g_mean"] == pytest.approx(0.625) and row["g_std"] == pytest.approx(0.375)
    assert row["r_max_snr"] == pytest.approx(5.0) and row["g_max_snr"] == pytest.approx(20.0)
    assert row["r_n_detections"] == 1 and row["g_detected_days"] == pytest.approx(1.0)
    assert row["r_detected_days"] == pytest.approx(0.0) and row["n_points"] == 4
    second = dict(zip(names, f[1].astype(float), strict=True))
    for stat in ("max", "min", "mean", "std", "max_snr", "detected_days"):
        assert np.isnan(second[f"g_{stat}"])  # no g point: missing, for the trees
    assert second["g_n_detections"] == 0 and second["r_max"] == pytest.approx(1.0)
    assert second["r_detected_days"] == pytest.approx(2.5)


def test_trees_to_onnx_matches_scikit_learn():
    """The exported trees give scikit-learn's probabilities, NaN routes and threshold ties
    included (inputs equal to the training values, where the bin edges lie)."""
    pytest.importorskip("onnx")
    sklearn = pytest.importorskip("sklearn.ensemble")
    import onnxruntime as ort

    from astrot2.companion import onnx_probabilities
    from astrot2.companion_fit import trees_to_onnx

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int) * 2
    x[rng.random(x.shape) < 0.1] = np.nan
    gbm = sklearn.HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=4,
                                                 random_state=0).fit(x, y)
    session = ort.InferenceSession(trees_to_onnx(gbm, 5).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    x_test = np.concatenate([x, rng.normal(size=(200, 5)).astype(np.float32)])
    got = onnx_probabilities(session, x_test)
    want = gbm.predict_proba(x_test)
    assert np.abs(got - want).max() <= 1e-5
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()


def test_specialist_gives_its_class_probability_and_the_trees_share_the_rest():
    """With a binary specialist for one column, the exported model gives that column the
    specialist's probability for the flat class mix (its odds / (n_classes - 1)) and the
    other columns the multi-class trees' softmax over them times the rest (scikit-learn's
    numbers, NaN routes included); rows sum to 1 and the label is the most probable
    class."""
    pytest.importorskip("onnx")
    sklearn = pytest.importorskip("sklearn.ensemble")
    import onnxruntime as ort

    from astrot2.companion_fit import hierarchical_probabilities, trees_to_onnx

    rng = np.random.default_rng(2)
    x = rng.normal(size=(800, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int) * 2
    x[rng.random(x.shape) < 0.1] = np.nan
    gbm = sklearn.HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=4,
                                                 random_state=0).fit(x, y)
    column = 2
    specialist = sklearn.HistGradientBoostingClassifier(
        max_iter=40, max_leaf_nodes=8, random_state=0).fit(x, y == column)
    session = ort.InferenceSession(
        trees_to_onnx(gbm, 5, specialist, column).SerializeToString(),
        providers=["CPUExecutionProvider"])
    x_test = np.concatenate([x, rng.normal(size=(200, 5)).astype(np.float32)])
    label, got = session.run(None, {"features": x_test})
    want = hierarchical_probabilities(gbm, specialist, column, x_test)
    assert np.abs(got - want).max() <= 1e-5
    q = specialist.predict_proba(x_test)[:, 1]  # even odds; the flat mix's are 1 : 3
    np.testing.assert_allclose(got[:, column], q / (q + 3.0 * (1.0 - q)), atol=1e-5)
    others = np.delete(got, column, axis=1)
    trees = np.delete(gbm.predict_proba(x_test), column, axis=1)
    np.testing.assert_allclose(others / others.sum(axis=1, keepdims=True),
                               trees / trees.sum(axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)
    assert (label == gbm.classes_[got.argmax(axis=1)]).all()
    with pytest.raises(ModelError, match="binary"):
        trees_to_onnx(gbm, 5, gbm, column)


def test_combination_trusts_each_expert_where_it_is_informative():
    """The fit finds which expert to trust, and how that changes with the number of points:
    here the network is informative on long light curves only, the companion everywhere."""
    from astrot2.metrics import softmax

    rng = np.random.default_rng(1)
    n = 4000
    y = rng.integers(0, 4, n)
    n_points = np.where(rng.random(n) < 0.5, 3, 300)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += np.where(n_points == 300, 3.0, 0.0)
    peak = np.where(rng.random(n) < 0.7, y, (y + rng.integers(1, 4, n)) % 4)
    prob = np.full((n, 4), 0.1)
    prob[np.arange(n), peak] = 0.7
    fit, nll = fit_combination(logits, prob, n_points, y)
    assert fit.t2_slope > 0.1  # the network weighs more on long light curves
    combined = fit.logits(logits, prob, n_points)
    rows = np.arange(n)
    for other in (logits, np.log(prob)):
        assert nll < -np.log(softmax(other)[rows, y]).mean()
    assert nll == pytest.approx(-np.log(softmax(combined)[rows, y]).mean(), rel=1e-6)
    constant = Combination(fit.t2, 0.0, fit.companion, 0.0, fit.center)
    assert nll < -np.log(softmax(constant.logits(logits, prob, n_points))[rows, y]).mean()


def test_companion_attach_load_and_calibrate(ztf_model, fixtures, tmp_path):
    """fit_companion writes companion.onnx + manifest section; ``NAME+companion`` combines
    the two experts exactly; the default stays the network; the file is verified; the
    combination has its own calibration and metrics."""
    pytest.importorskip("sklearn")
    from astrot2.calibration import calibrate_model, write_calibration
    from astrot2.companion_fit import CompanionConfig, fit_companion
    from astrot2.evaluate import evaluate_model
    from astrot2.features import prepare
    from astrot2.io.plasticc import read_plasticc
    from astrot2.metrics import softmax as softmax_t
    from astrot2.runtime import Classifier

    folder = tmp_path / "ztf"
    shutil.copytree(ztf_model, folder)
    spec = f"{folder}+companion"
    sample = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                           fixtures / "plasticc" / "plasticc_meta_sample.csv")
    with pytest.raises(ModelError, match="no feature companion"):
        Classifier.load(spec)
    write_calibration(folder, {"method": "temperature_scaling", "temperature": 1.5})
    section = fit_companion(folder, sample, CompanionConfig(feature_set="points+gp"),
                            log=lambda *_: None)
    assert section["feature_set"] == "points+gp" and "gp_rise_50" in section["features"]
    assert "gp_peak_absolute_mag" not in section["features"]  # ztf reads no brightness
    assert (folder / COMPANION_FILE).is_file() and section["onnx_vs_sklearn_max_abs_diff"] < 1e-5
    doc = json.loads((folder / "manifest.json").read_text())
    assert doc["calibration"]["temperature"] == 1.5  # the network's, untouched
    assert doc["companion"]["sha256"] == section["sha256"]

    clf = Classifier.load(spec, threads=1)
    alone = Classifier.load(folder, threads=1)
    assert clf.companion is not None and alone.companion is None
    assert Classifier.load(folder, companion=True).companion is not None
    assert clf.name.endswith("+companion") and not alone.name.endswith("+companion")
    assert clf.temperature == 1.0 and alone.temperature == 1.5
    view = sample.take(np.arange(20))
    pred = clf.predict(view, check_survey=False)
    ok = pred.status == "ok"
    assert ok.sum() > 10
    network, _ = alone.scores(view, check_survey=False)
    _, extra, selected, gp = prepare(view, clf.manifest.gp, clf.manifest.features)
    prob_c = clf.companion.probabilities(selected, extra, gp)
    c = section["combination"]
    x = (np.log1p(np.diff(selected.offsets)) - c["center"])[:, None]
    want = softmax_t((c["t2"] + c["t2_slope"] * x) * network
                     + (c["companion"] + c["companion_slope"] * x)
                     * np.log(np.clip(prob_c, 1e-7, 1)))
    np.testing.assert_allclose(pred.probabilities[ok], want[ok], atol=1e-6)
    np.testing.assert_allclose(alone.predict(view, check_survey=False).probabilities[ok],
                               softmax_t(network[ok], 1.5), atol=1e-6)

    # the combination's temperature and metrics live in the companion section
    cal, _ = calibrate_model(spec, sample)
    write_calibration(spec, cal)
    doc = json.loads((folder / "manifest.json").read_text())
    assert doc["companion"]["calibration"]["temperature"] == cal["temperature"]
    assert doc["calibration"]["temperature"] == 1.5
    assert Classifier.load(spec, threads=1).temperature == cal["temperature"]
    both = evaluate_model(spec, sample)
    network_only = evaluate_model(folder, sample)
    assert both["model"].endswith("+companion")
    assert both["whole"]["flat_log_loss"] != network_only["whole"]["flat_log_loss"]

    # a companion fitted on other features is refused
    doc = json.loads((folder / "manifest.json").read_text())
    good = json.dumps(doc, indent=2)
    doc["companion"]["features"] = doc["companion"]["features"][:-1]
    (folder / "manifest.json").write_text(json.dumps(doc, indent=2))
    with pytest.raises(ModelError, match="other features"):
        Classifier.load(spec)
    (folder / "manifest.json").write_text(good)

    # a modified companion file is refused; the network alone still loads
    data = bytearray((folder / COMPANION_FILE).read_bytes())
    data[-1] ^= 1
    (folder / COMPANION_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        Classifier.load(spec)
    assert Classifier.load(folder).companion is None
    (folder / COMPANION_FILE).unlink()
    with pytest.raises(ModelError, match="missing"):
        Classifier.load(spec)


def test_companion_with_a_sn_ia_specialist(ztf_model, fixtures, tmp_path, monkeypatch):
    """``ia_leaves``: the fit adds binary trees that learned SN Ia against the rest, for
    SN Ia's column, records them, and the exported file gives what scikit-learn's two
    models give; a one-leaf specialist and one for a real-sky companion are refused."""
    pytest.importorskip("sklearn")
    from sklearn.metrics import roc_auc_score

    from astrot2 import companion_fit
    from astrot2.classes import class_index
    from astrot2.companion_fit import CompanionConfig, fit_companion

    seen, original = [], companion_fit._fit_specialist

    def spy(config, x_train, y_train, *rest):
        seen.append((x_train, y_train, *original(config, x_train, y_train, *rest)))
        return seen[-1][2:]

    monkeypatch.setattr(companion_fit, "_fit_specialist", spy)
    from astrot2.errors import ConfigError
    from astrot2.io.plasticc import read_plasticc

    with pytest.raises(ConfigError, match="ia_leaves"):
        CompanionConfig(ia_leaves=1)
    folder = tmp_path / "ztf"
    shutil.copytree(ztf_model, folder)
    with pytest.raises(ConfigError, match="flat class mix"):  # before any work
        fit_companion(folder, None, CompanionConfig(ia_leaves=4), real_views=([], {}))
    sample = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                           fixtures / "plasticc" / "plasticc_meta_sample.csv")
    section = fit_companion(folder, sample, CompanionConfig(ia_leaves=4), write=False,
                            log=lambda *_: None)
    assert section["ia_specialist"]["leaves"] == 4 and section["config"]["ia_leaves"] == 4
    assert section["ia_specialist"]["n_iter"] >= 1
    assert section["onnx_vs_sklearn_max_abs_diff"] <= 1e-5
    (x_train, y_train, specialist, column), = seen
    ia = int(class_index(np.array([90]))[0])
    assert column == ia and (y_train == ia).any()
    assert roc_auc_score(y_train == ia, specialist.predict_proba(x_train)[:, 1]) > 0.9


@pytest.mark.parametrize("name", ["lsst", "lsst-plasticc", "ztf-plasticc", "ztf"])
def test_shipped_models_carry_a_verified_opt_in_companion(name):
    from astrot2.runtime import Classifier, shipped_models

    if name not in shipped_models():
        pytest.skip(f"no shipped {name} model")
    assert Classifier.load(name, threads=1).companion is None  # the default: network alone
    clf = Classifier.load(f"{name}+companion", threads=1)
    section = clf.manifest.raw["companion"]
    assert section["onnx_vs_sklearn_max_abs_diff"] <= 1e-5
    assert section["features"] == companion_feature_names(
        clf.manifest.features, clf.manifest.n_extra, section.get("feature_set", "points"))
    fit = section["validation_flat_log_loss"]
    if section["fitted_on"]["split"] == "real_validation":
        # the real-sky ztf: the trees learned the classes its network learned (not TDE,
        # SN Iax, SN Ia-91bg, KN), were combined on the real validation cuts
        learned = {CLASSES[i].name for i in section["classes"]}
        assert {"SNIa", "SNII", "SNIbc", "AGN"} <= learned
        assert not learned & {"TDE", "SNIax", "SNIa-91bg", "KN"}
        assert section["feature_set"] == "points+gp"
        return
    assert fit["combined"] < min(fit["t2"], fit["companion"])
    if (clf.manifest.model_file.parent / "representative_config.json").is_file():
        # a representative run's companion learned and was combined on its views too
        assert "representative/whole" in section["fitted_on"]["views"]


def test_companion_feature_sets():
    """Only the known feature sets: a config naming another is refused at once; the GP
    set adds the luminosity columns only for a network reading brightness and photo-z."""
    from astrot2.companion_fit import CompanionConfig
    from astrot2.errors import ConfigError
    from astrot2.features import FeatureConfig

    with pytest.raises(ConfigError, match="feature_set"):
        CompanionConfig(feature_set="gp")
    lsst = FeatureConfig()
    ztf = FeatureConfig(bands=("g", "r"), use_brightness=False, use_redshift=False)
    assert companion_feature_names(lsst, 4, "points") == feature_names(lsst.bands, 4)
    with_gp = companion_feature_names(lsst, 4, "points+gp")
    assert with_gp[:len(feature_names(lsst.bands, 4))] == feature_names(lsst.bands, 4)
    assert "gp_peak_absolute_mag" in with_gp
    assert "gp_peak_absolute_mag" not in companion_feature_names(ztf, 0, "points+gp")
    with_salt2 = companion_feature_names(lsst, 4, "points+gp+salt2")
    assert with_salt2[:len(with_gp)] == with_gp and with_salt2[-1] == "salt2_pz_log_x0_mu"
    with_cc = companion_feature_names(lsst, 4, "points+gp+salt2+cc")
    assert with_cc[:len(with_salt2)] == with_salt2 and with_cc[-1] == "cc_pz_ia_minus_cc"


@pytest.mark.parametrize("name, folder", [("lsst", "elasticc"), ("ztf", "ztf")])
def test_the_companion_reuses_the_networks_statistics(name, folder, fixtures):
    """The columns the companion shares with its network's statistics inputs (raw points'
    statistics; GP-shape ones where the network reads them, as `lsst` does) come from
    the network's own computation: the same features, to the bit, as computed anew."""
    from astrot2.companion import companion_features
    from astrot2.io import read_alerts
    from astrot2.runtime import Classifier

    clf = Classifier.load(f"{name}+companion", threads=1)
    files = sorted(p for p in (fixtures / folder).rglob("*")
                   if p.suffix in (".avro", ".parquet"))
    inputs = clf.model_inputs(read_alerts(files))
    assert inputs.statistics is not None
    m, section = clf.manifest, clf.companion.section
    args = (inputs.selected, inputs.extra, inputs.gp, m.features, section["feature_set"])
    grid = {"templates": clf.companion.templates,  # the tables of "+salt2" and "+cc" sets
            "cc_templates": clf.companion.cc_templates}
    reused = companion_features(*args, inputs.statistics, **grid)
    np.testing.assert_array_equal(reused, companion_features(*args, **grid))
    if "+salt2" in section["feature_set"]:  # the shipped lsst's: the fit ran
        fitted = np.isfinite(reused[:, section["features"].index("salt2_chi2_per_point")])
        assert fitted.mean() > 0.5


@pytest.mark.shared
@pytest.mark.parametrize("feature_set", ["points+gp+salt2", "points+gp+salt2+cc"])
def test_template_companion_ships_its_checked_tables(ztf_model, fixtures, tmp_path,
                                                     sncosmo_dir, feature_set):
    """A "points+gp+salt2" companion writes the SALT2 table beside its trees (sha256 in the
    section; "+cc" the core-collapse templates' table too) and classifies with it (one
    finite row per light curve; light curves of another survey than the table's, here
    PLAsTiCC's LSST ones for a ZTF table, get the fit's columns missing, which the trees
    route), and is refused when a table is modified or missing."""
    pytest.importorskip("sklearn")
    from astrot2.companion import CC_TEMPLATES_FILE, TEMPLATES_FILE
    from astrot2.companion_fit import CompanionConfig, fit_companion
    from astrot2.io.plasticc import read_plasticc
    from astrot2.runtime import Classifier
    from astrot2.templates import CC_FEATURES, TEMPLATE_FEATURES, template_features

    folder = tmp_path / "ztf"
    shutil.copytree(ztf_model, folder)
    sample = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                           fixtures / "plasticc" / "plasticc_meta_sample.csv")
    section = fit_companion(folder, sample, CompanionConfig(feature_set=feature_set),
                            metrics=False, log=lambda *_: None)
    names = [f"salt2_{n}" for n in TEMPLATE_FEATURES]
    cc = feature_set.endswith("+cc")
    names += [f"cc_{n}" for n in CC_FEATURES] if cc else []
    assert section["features"][-len(names):] == names
    record = section["templates"]
    assert record["file"] == TEMPLATES_FILE and record["source"] == "salt2-2.4"
    assert ("cc_templates" in section) == cc
    clf = Classifier.load(f"{folder}+companion", threads=1)
    assert clf.companion.templates is not None
    assert (clf.companion.cc_templates is not None) == cc
    view = sample.take(np.arange(20))
    pred = clf.predict(view, check_survey=False)
    assert len(pred.status) == 20
    assert np.isfinite(pred.probabilities[pred.status == "ok"]).all()
    assert clf.companion.templates.bands == ("g", "r", "i")  # the ZTF survey's table
    assert np.isnan(template_features(view, clf.companion.templates)).all()

    grid = folder / (CC_TEMPLATES_FILE if cc else TEMPLATES_FILE)
    data = bytearray(grid.read_bytes())
    data[len(data) // 2] ^= 1
    grid.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        Classifier.load(f"{folder}+companion")
    grid.unlink()
    with pytest.raises(ModelError, match="missing"):
        Classifier.load(f"{folder}+companion")
    assert Classifier.load(folder).companion is None
    # refitted without templates: the tables it no longer reads are removed
    fit_companion(folder, sample, CompanionConfig(feature_set="points+gp"), metrics=False,
                  log=lambda *_: None)
    assert not (folder / TEMPLATES_FILE).exists() and not (folder / CC_TEMPLATES_FILE).exists()
    assert Classifier.load(f"{folder}+companion", threads=1).companion.templates is None


@pytest.mark.shared
def test_core_collapse_columns_reach_the_companion(fixtures, sncosmo_dir):
    """On ELAsTiCC alerts through the `lsst` network's preprocessing, a "points+gp+salt2+cc"
    set ends with the SALT2 fit's columns and then the core-collapse fits' (the same values
    as computed directly), finite wherever the SALT2 fit ran."""
    from astrot2.companion import companion_feature_names, companion_features
    from astrot2.io import read_alerts
    from astrot2.runtime import Classifier
    from astrot2.simulate import cc_grid, salt2_grid
    from astrot2.templates import CC_FEATURES, cc_features, template_features

    clf = Classifier.load("lsst", threads=1)
    files = sorted(p for p in (fixtures / "elasticc").rglob("*")
                   if p.suffix in (".avro", ".parquet"))
    inputs = clf.model_inputs(read_alerts(files))
    m = clf.manifest
    salt2, cc = salt2_grid("lsst", sncosmo_dir), cc_grid("lsst", sncosmo_dir)
    x = companion_features(inputs.selected, inputs.extra, inputs.gp, m.features,
                           "points+gp+salt2+cc", inputs.statistics, salt2, 1, cc)
    assert x.shape[1] == len(companion_feature_names(m.features, m.n_extra,
                                                     "points+gp+salt2+cc"))
    fit = template_features(inputs.selected, salt2, 1)
    k = len(CC_FEATURES)
    np.testing.assert_array_equal(x[:, -k - fit.shape[1]:-k], fit)
    np.testing.assert_array_equal(x[:, -k:], cc_features(inputs.selected, cc, fit, 1))
    fitted = np.isfinite(fit[:, 0])
    assert fitted.mean() > 0.5 and np.isfinite(x[fitted, -k:-k + 3]).all()
