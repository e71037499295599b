"""Fine-tuning the lsst network on its representative views (astrot2.train_representative)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from astrot2.io.plasticc import read_plasticc
from astrot2.representative import RepresentativeConfig
from astrot2.runtime import Classifier
from astrot2.train_representative import RepresentativeTrainConfig, train_representative


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, fixtures):
    from astrot2.train import preset, train

    folder = fixtures / "plasticc"
    sample = read_plasticc(folder / "plasticc_lc_sample.csv.gz",
                           folder / "plasticc_meta_sample.csv")
    root = tmp_path_factory.mktemp("rep")
    train(sample, preset("lsst", epochs=2, n_augment=1, steps_per_epoch=2, batch_size=32),
          root / "parent", log=lambda *_: None)
    config = RepresentativeTrainConfig(
        init=str(root / "parent"), steps=20, eval_every=10, prune_steps=10, cluster_steps=5,
        batch_size=32, representative=RepresentativeConfig(n_train=1, n_validation=1))
    train_representative(sample, config, root / "tuned", command="astrot2 train ...",
                         log=lambda *_: None)
    return sample, root / "parent", root / "tuned"


def test_writes_a_compressed_loadable_model_with_statistics_inputs(tuned):
    sample, parent, out = tuned
    clf = Classifier.load(out, threads=1)
    assert clf.name == "lsst@0.4.0"
    assert clf.manifest.features.use_statistics
    base = Classifier.load(parent, threads=1).manifest.n_extra
    assert clf.manifest.n_extra == base + 2 * len(clf.manifest.features.statistics_center)
    pred = clf.predict(sample)
    ok = pred.status == "ok"
    assert ok.sum() > len(sample) // 2
    np.testing.assert_allclose(pred.probabilities[ok].sum(axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(pred.probabilities).all()


def test_keeps_the_split_and_records_the_recipe(tuned):
    _, parent, out = tuned
    assert (out / "split.json").read_text() == (parent / "split.json").read_text()
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["training"]["command"] == "astrot2 train ..."
    assert doc["training"]["representative"] == "representative_config.json"
    recipe = json.loads((out / "representative_config.json").read_text())
    assert recipe["representative"]["n_train"] == 1 and recipe["statistics"] is True
    views = doc["calibration"]["fitted_on"]["views"]
    assert doc["calibration"]["fitted_on"]["split"] == "validation"
    assert views and all(v.startswith("representative/") for v in views)
    assert doc["onnx"]["kind"] == "compact"
    assert str(out.parent) not in json.dumps(doc["training"]["pretrained"])


def test_gp_shape_statistics_as_network_inputs(tuned, tmp_path):
    """``gp_statistics`` (the default since 0.4): the GP shape features (colours,
    timescales, peak luminosity) join the light-curve statistics inputs; the manifest says
    so and the runtime rebuilds them.  Without it, only the raw points' statistics."""
    from dataclasses import replace

    from astrot2.features import gp_summary_names, light_curve_statistics

    sample, _, out = tuned
    config = replace(json_config(out), gp_statistics=False)
    train_representative(sample, config, tmp_path / "plain", command="astrot2 train ...",
                         log=lambda *_: None)
    clf = Classifier.load(out, threads=1)
    features = clf.manifest.features
    assert features.gp_statistics
    assert not Classifier.load(tmp_path / "plain").manifest.features.gp_statistics
    n_plain = len(Classifier.load(tmp_path / "plain").manifest.features.statistics_center)
    n_gp = len(gp_summary_names(features.bands, luminosity=True))
    assert len(features.statistics_center) == n_plain + n_gp
    inputs = clf.model_inputs(sample)
    stats = light_curve_statistics(inputs.selected, inputs.gp, features.bands, features)
    assert stats.shape[1] == n_plain + n_gp


def test_plain_copies_without_photoz(tuned):
    """``plain_no_photoz``: that share of the pre-training views' augmented copies lose
    their host photo-z; recorded in the recipe."""
    from dataclasses import replace

    from astrot2.train_representative import _views

    sample, parent, out = tuned
    manifest = Classifier.load(parent, threads=1).manifest
    assert json.loads((out / "representative_config.json").read_text())[
        "plain_no_photoz"] == 0.5
    known_col = int(manifest.features.use_brightness) + 2  # log scale, z, z_err, known
    arrays = {f: _views(sample, parent, manifest, replace(json_config(out),
                                                             plain_no_photoz=f), None)
              for f in (0.0, 1.0)}
    known = {f: a["extra_train"][:, known_col] for f, a in arrays.items()}
    assert set(np.unique(known[0.0])) <= {0.0, 1.0}
    assert known[0.0].mean() > known[1.0].mean()


def json_config(folder) -> RepresentativeTrainConfig:
    """The fixture run's settings (as the test fixture made them)."""
    return RepresentativeTrainConfig(
        init=json.loads((folder / "representative_config.json").read_text())["init"],
        steps=20, eval_every=10, prune_steps=10, cluster_steps=5, batch_size=32,
        representative=RepresentativeConfig(n_train=1, n_validation=1))


@pytest.mark.parametrize("settings", [
    {"plain_no_photoz": 1.5}, {"plain_no_photoz": -0.1}, {"steps": 0}, {"lr": 0.0},
    {"sparsity": 1.0}, {"clusters": 1}, {"distill_alpha": 2.0}, {"members": 0},
    {"prune_steps": -1},
    {"representative": {"n_train": 0}}, {"representative": {"no_photoz": 1.01}},
])
def test_out_of_range_settings_are_refused_by_name(settings):
    """A share outside [0, 1] or a count below its least value is a ConfigError that names
    the setting, before any view is built."""
    from astrot2.errors import ConfigError

    key, value = next(iter(settings.items()))
    with pytest.raises(ConfigError, match=next(iter(value)) if isinstance(value, dict) else key):
        if isinstance(value, dict):
            RepresentativeTrainConfig(representative=RepresentativeConfig(**value))
        else:
            RepresentativeTrainConfig(**settings)


def test_the_companion_learns_from_simulated_light_curves_too(tuned):
    """``companion_data(..., simulated=...)`` of a representative run: ``n_sim_cuts`` alert
    cuts of each simulated light curve join the trees' training rows, with their labels;
    validation is unchanged.  A folder that is not a representative run refuses them."""
    from astrot2.classes import class_index
    from astrot2.companion_fit import CompanionConfig, companion_data
    from astrot2.errors import ConfigError

    sample, parent, out = tuned
    clf = Classifier.load(out, threads=1)
    supernovae = sample.take(np.flatnonzero(np.isin(sample.extra["target"], [90, 42])))
    config = CompanionConfig(feature_set="points+gp", n_sim_cuts=2)
    base = companion_data(clf, out, sample, config)
    more = companion_data(clf, out, sample, config, simulated=supernovae)
    added = more.y_train[len(base.y_train):]
    assert supernovae.n_objects // 2 < len(added) <= 2 * supernovae.n_objects
    assert set(added) <= set(class_index(np.array([90, 42])))
    np.testing.assert_array_equal(more.x_train[:len(base.y_train)], base.x_train)
    np.testing.assert_array_equal(more.x_val, base.x_val)
    with pytest.raises(ConfigError, match="representative"):
        companion_data(Classifier.load(parent, threads=1), parent, sample, config,
                       simulated=supernovae)
