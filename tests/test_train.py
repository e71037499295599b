"""A tiny real training run on the PLAsTiCC fixture: outputs, reproducibility, split."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from astrot2.classes import class_index  # noqa: E402
from astrot2.io.plasticc import read_plasticc  # noqa: E402
from astrot2.train import preset, stratified_split, train, train_command  # noqa: E402


@pytest.fixture(scope="module")
def sample(fixtures):
    folder = fixtures / "plasticc"
    return read_plasticc(folder / "plasticc_lc_sample.csv.gz", folder / "plasticc_meta_sample.csv")


def test_train_command_recreates_a_run_configuration():
    """A run's train_config.json -> the ``astrot2 train`` line that re-creates it; fields
    an older run lacks count as the preset's; other settings -> no command, named."""
    doc = json.loads(json.dumps(asdict(preset("ztf", epochs=30, init_seed=1)), default=str))
    assert train_command(doc) == ("astrot2 train --model ztf --epochs 30 --init-seed 1", [])
    del doc["redshift_dropout"], doc["features"]["use_brightness"]
    assert train_command(doc)[0] == "astrot2 train --model ztf --epochs 30 --init-seed 1"
    assert train_command({**doc, "lr": 0.01}) == (None, ["lr"])
    assert train_command({**doc, "name": "other"}) == (None, ["name"])


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(5), [10, 20, 30, 7, 3])
    tr, va, te = stratified_split(labels, (0.7, 0.15, 0.15), seed=3)
    assert len(np.intersect1d(tr, va)) == len(np.intersect1d(tr, te)) == 0
    assert len(tr) + len(va) + len(te) == len(labels)
    assert np.bincount(labels[tr]).tolist() == [7, 14, 21, 5, 2]
    again = stratified_split(labels, (0.7, 0.15, 0.15), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again, strict=True))


@pytest.mark.parametrize("name", ["ztf", "lsst"])
def test_tiny_training_run_is_reproducible(sample, tmp_path, name):
    cfg = preset(name, epochs=2, n_augment=1, steps_per_epoch=2, batch_size=32,
                 n_resample=min(preset(name).n_resample, 1))
    m1 = train(sample, cfg, tmp_path / "a", log=lambda *_: None)
    m2 = train(sample, cfg, tmp_path / "b", log=lambda *_: None)
    assert m1["whole"]["flat_log_loss"] == m2["whole"]["flat_log_loss"]
    assert np.isfinite(m1["alert_windows"]["flat_log_loss"])
    split = json.loads((tmp_path / "a" / "split.json").read_text())
    assert sum(len(v) for v in split.values()) == len(sample)
    assert not set(split["train"]) & set(split["test"])
    y = class_index(sample.extra["target"])
    assert m1["whole"]["n"] == len(split["test"]) and len(np.unique(y)) == 14
    session = ort.InferenceSession(str(tmp_path / "a" / "model.onnx"))
    # lsst: host photo-z and brightness as extra inputs; ztf: the GP grid alone
    expected = ["x", "extra"] if name == "lsst" else ["x"]
    assert [i.name for i in session.get_inputs()] == expected
    if name == "ztf":  # scored on its own survey's alerts too
        assert np.isfinite(m1["survey_windows"]["flat_log_loss"])
        assert m1["survey_windows"]["flat_log_loss"] == m2["survey_windows"]["flat_log_loss"]


def test_forecast_targets_are_the_whole_curve_after_the_view(sample):
    """An augmented view's targets equal the whole light curve's own GP input where the
    grids coincide, and cover only the steps after the view's last observation."""
    from astrot2.augment import AugmentConfig, augment
    from astrot2.features import prepare
    from astrot2.train import forecast_targets

    cfg = preset("lsst")
    x_w, _, whole, gp_w = prepare(sample, cfg.gp, cfg.features)
    bands = list(range(6))
    # the whole light curve as its own view: target == its input wherever the mask is on
    target, mask = forecast_targets(whole, gp_w, whole, gp_w, bands)
    assert mask.any() and np.allclose(target[mask], x_w[:, :, :6][mask], atol=1e-5)
    last = whole.reduce(whole.time, np.fmax)
    assert np.all(gp_w.times[mask] > np.repeat(last, mask.sum(axis=1)))
    # truncated, shifted views: the mask starts after the cut; targets stay finite
    view = augment(sample, AugmentConfig(p_truncate=1.0, min_days=5.0, max_days=30.0), 3)
    _, _, view_sel, gp_v = prepare(view, cfg.gp, cfg.features)
    target, mask = forecast_targets(view_sel, gp_v, whole, gp_w, bands)
    assert np.isfinite(target).all() and mask.sum(axis=1).min() >= 1
    assert np.all(target[~mask] == 0.0)


def test_tiny_training_run_with_the_forecasting_objective(sample, tmp_path):
    cfg = preset("lsst", epochs=2, n_augment=1, steps_per_epoch=2, batch_size=32,
                 forecast_weight=1.0)
    m1 = train(sample, cfg, tmp_path / "a", log=lambda *_: None)
    m2 = train(sample, cfg, tmp_path / "b", log=lambda *_: None)
    assert m1["whole"]["flat_log_loss"] == m2["whole"]["flat_log_loss"]
    base = train(sample, preset("lsst", epochs=2, n_augment=1, steps_per_epoch=2,
                                batch_size=32), tmp_path / "c", log=lambda *_: None)
    assert m1["whole"]["flat_log_loss"] != base["whole"]["flat_log_loss"]  # it acts
    session = ort.InferenceSession(str(tmp_path / "a" / "model.onnx"))
    assert [o.name for o in session.get_outputs()] == ["logits"]  # decoder not exported
    assert json.loads((tmp_path / "a" / "train_config.json").read_text())[
        "forecast_weight"] == 1.0


def test_init_seed_changes_the_weights_only(sample, tmp_path):
    """``init_seed`` draws other weights and batches on the same split and data."""
    cfg = preset("lsst", epochs=2, n_augment=1, steps_per_epoch=2, batch_size=32)
    m0 = train(sample, cfg, tmp_path / "a", log=lambda *_: None)
    m1 = train(sample, preset("lsst", epochs=2, n_augment=1, steps_per_epoch=2,
                              batch_size=32, init_seed=1), tmp_path / "b", log=lambda *_: None)
    split = [(tmp_path / d / "split.json").read_text() for d in ("a", "b")]
    assert split[0] == split[1]
    assert m0["whole"]["n"] == m1["whole"]["n"]
    assert m0["whole"]["flat_log_loss"] != m1["whole"]["flat_log_loss"]
    assert json.loads((tmp_path / "b" / "train_config.json").read_text())["init_seed"] == 1


def test_redshift_dropout_hides_photoz_in_augmented_copies_only(sample, tmp_path):
    """``redshift_dropout``: some objects of the augmented copies lose their host photo-z
    (the originals keep it); the run differs from one without, and is recorded."""
    from astrot2.augment import without_redshift

    which = np.zeros(len(sample), dtype=bool)
    which[::2] = True
    half = without_redshift(sample, which)
    assert np.isnan(half.metadata["hostgal_photoz"][which]).all()
    np.testing.assert_array_equal(half.metadata["hostgal_photoz"][~which],
                                  sample.metadata["hostgal_photoz"][~which])
    tiny = dict(epochs=2, n_augment=1, steps_per_epoch=2, batch_size=32)
    m0 = train(sample, preset("lsst", **tiny), tmp_path / "a", log=lambda *_: None)
    m1 = train(sample, preset("lsst", redshift_dropout=0.5, **tiny), tmp_path / "b",
               log=lambda *_: None)
    assert m0["whole"]["flat_log_loss"] != m1["whole"]["flat_log_loss"]
    assert json.loads((tmp_path / "b" / "train_config.json").read_text())[
        "redshift_dropout"] == 0.5
