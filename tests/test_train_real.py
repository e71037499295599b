"""Fine-tuning a pre-trained network on real labelled light curves (astrot2.train_real)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from astrot2.classes import CLASSES
from astrot2.compress.features import TrainingInputs
from astrot2.io.labelled import read_labelled
from astrot2.realsky import RealSkyConfig, evaluation_cut
from astrot2.runtime import Classifier, shipped_models
from astrot2.train_real import FinetuneConfig, train_real

DATA = Path(__file__).resolve().parent / "data" / "labelled" / "bts"
TINY = FinetuneConfig(steps=20, eval_every=10, prune_steps=10, cluster_steps=5,
                      real=RealSkyConfig(split=(0.5, 0.25, 0.25), n_cuts=2, n_fainter=1,
                                         min_objects=2))


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    if "ztf-plasticc" not in shipped_models():
        pytest.skip("no shipped ztf-plasticc model to fine-tune")
    real = read_labelled(DATA).batch
    out = tmp_path_factory.mktemp("ft") / "m"
    train_real(real, TINY, out, data_name="bts", command="astrot2 train ...", log=lambda m: 0)
    return real, out


def test_writes_a_compressed_loadable_model(finetuned):
    real, out = finetuned
    clf = Classifier.load(out, threads=1)
    assert clf.name == "ztf@0.2.0"  # its own name, not the pre-trained model's
    assert clf.manifest.features.use_statistics
    assert clf.manifest.n_extra == 2 * len(clf.manifest.features.statistics_center)
    assert (out / "model.t2c").stat().st_size <= 16_000
    pred = clf.predict(evaluation_cut(real, "peak+5"))
    ok = pred.status == "ok"
    assert ok.any()
    np.testing.assert_allclose(pred.probabilities[ok].sum(axis=1), 1.0, rtol=1e-5)
    doc = json.loads((out / "manifest.json").read_text())
    prior = doc["training"]["class_prior"]
    assert sum(prior.values()) == pytest.approx(1.0)
    # one SN Ibc among the fixture's train objects (< min_objects): left out; the one
    # SLSN-I is not a train object at all: neither is ever predicted
    assert doc["training"]["classes_left_out"] == ["SNIbc"]
    names = [c["name"] for c in doc["classes"]]
    for name in ("SNIbc", "SLSN-I"):
        assert prior[name] == 0.0
        assert (pred.probabilities[:, names.index(name)] == 0).all()
    assert doc["calibration"]["temperature"] > 0
    assert doc["training"]["command"] == "astrot2 train ..."
    assert "/tmp" not in json.dumps(doc["training"])


def test_split_keeps_the_pretraining_split_and_is_disjoint(finetuned):
    real, out = finetuned
    split = json.loads((out / "split.json").read_text())
    init = shipped_models()["ztf-plasticc"]
    pre = json.loads((init / "split.json").read_text())
    assert all(split[k] == pre[k] for k in pre)
    parts = [set(split[f"real_{k}"]) for k in ("train", "validation", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(real.object_id)
    assert (out / "train_config.json").read_text() == (init / "train_config.json").read_text()
    assert (out / "finetune_config.json").is_file()


def test_is_deterministic(finetuned, tmp_path):
    real, out = finetuned
    again = tmp_path / "again"
    train_real(real, TINY, again, data_name="bts", command="astrot2 train ...",
               log=lambda m: 0)
    assert (again / "model.t2c").read_bytes() == (out / "model.t2c").read_bytes()


def _tiny_inputs(model_section: dict, n_extra: int) -> TrainingInputs:
    """Seeded inputs of the shape a network of ``model_section`` reads (4 classes)."""
    rng = np.random.default_rng(3)
    shape = (96, int(model_section["input_steps"]), int(model_section["input_channels"]))

    def part(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (rng.normal(size=(n, *shape[1:])).astype(np.float32),
                rng.normal(size=(n, n_extra)).astype(np.float32),
                rng.choice([1, 3, 5, 7], size=n).astype(np.int64))

    return TrainingInputs(*part(shape[0]), *part(32))


def test_ensemble_teacher_is_the_members_mean_probability():
    torch = pytest.importorskip("torch")
    from dataclasses import replace

    from astrot2.compress.finetune import _forward, _snapshot, fit
    from astrot2.runtime import resolve_model
    from astrot2.train_real import ensemble_teacher, network_of

    if "ztf-plasticc" not in shipped_models():
        pytest.skip("no shipped ztf-plasticc model")
    model, section = network_of(resolve_model("ztf-plasticc"))
    data = _tiny_inputs(section, model.config.n_extra)
    config = replace(TINY, members=2, steps=6, eval_every=3)
    teacher = ensemble_teacher(model, data, config, "cpu", log=lambda m: 0)
    assert teacher.shape == (len(data.y_train), len(CLASSES))
    np.testing.assert_allclose(np.exp(teacher).sum(axis=1), 1.0, rtol=1e-5)
    # by hand: the two members, fine-tuned with seeds 1 and 2, their mean probability
    mean = np.zeros_like(teacher, dtype=np.float64)
    for seed in (1, 2):
        member = copy.deepcopy(model)
        torch.manual_seed(seed)
        fit(_forward(member), list(member.parameters()), data, steps=6, lr=config.lr,
            batch_size=config.batch_size, seed=seed, eval_every=3, state=_snapshot(member),
            restore=member.load_state_dict, log=lambda m: 0)
        with torch.no_grad():
            logits = _forward(member, train=False)(torch.from_numpy(data.x_train),
                                                   torch.from_numpy(data.extra_train))
        mean += torch.softmax(logits, dim=1).double().numpy() / 2
    np.testing.assert_allclose(np.exp(teacher), mean, atol=1e-6)
    # the members learned something different from the start (and from each other)
    with torch.no_grad():
        start = torch.softmax(_forward(model, train=False)(
            torch.from_numpy(data.x_train), torch.from_numpy(data.extra_train)), dim=1)
    assert not np.allclose(start.double().numpy(), mean, atol=1e-4)


def test_members_teach_the_compressed_network(finetuned, tmp_path):
    from dataclasses import replace

    real, out = finetuned
    config = replace(TINY, members=2)
    taught = tmp_path / "taught"
    train_real(real, config, taught, data_name="bts", command="astrot2 train ...",
               log=lambda m: 0)
    assert json.loads((taught / "finetune_config.json").read_text())["members"] == 2
    assert (taught / "model.t2c").read_bytes() != (out / "model.t2c").read_bytes()
    assert (taught / "model.t2c").stat().st_size <= 16_000
    again = tmp_path / "again"
    train_real(real, config, again, data_name="bts", command="astrot2 train ...",
               log=lambda m: 0)
    assert (again / "model.t2c").read_bytes() == (taught / "model.t2c").read_bytes()


def test_the_manifest_records_the_simulated_light_curves(finetuned, tmp_path):
    """``--simulated FILE``: its size, cuts and (from the CLI) sha256 are in the manifest,
    so the run names the file it needs (here the fixture's own curves stand in for it)."""
    real, _ = finetuned
    out = tmp_path / "with_sim"
    train_real(real, TINY, out, data_name="bts", simulated=real,
               simulated_record={"file_sha256": "0" * 64}, command="astrot2 train ...",
               log=lambda m: 0)
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["training"]["simulated"] == {"light_curves": real.n_objects,
                                            "cuts": TINY.n_sim_cuts, "file_sha256": "0" * 64}


def test_the_feature_companion_of_a_finetuned_network(finetuned, tmp_path, fixtures):
    """``astrot2 companion --real DIR``: the trees learn from the network's own real-sky
    views (its real train objects' cuts, the simulated cuts, the re-observed PLAsTiCC
    objects), only the classes those hold; without the real light curves it is refused
    (the PLAsTiCC recipe would be the wrong views)."""
    import shutil

    pytest.importorskip("sklearn")
    from astrot2.companion_fit import CompanionConfig, fit_companion
    from astrot2.errors import ConfigError
    from astrot2.io.plasticc import read_plasticc
    from astrot2.realsky import CUTS
    from astrot2.train_real import companion_views, read_finetune_config

    real, out = finetuned
    folder = tmp_path / "m"
    shutil.copytree(out, folder)
    assert read_finetune_config(folder) == TINY
    sample = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                           fixtures / "plasticc" / "plasticc_meta_sample.csv")  # metrics
    with pytest.raises(ConfigError, match="fine-tuned on real light curves"):
        fit_companion(folder, sample, log=lambda *_: None)
    # the fixture's ALeRCE curves stand in for the simulated ones (they add SLSN-I)
    simulated = read_labelled(DATA.parent / "alerce").batch
    train, val = companion_views(folder, real, simulated=simulated)
    assert list(val) == list(CUTS) and len(train) > len(CUTS)
    section = fit_companion(folder, sample, CompanionConfig(feature_set="points+gp"),
                            real_views=(train, val), metrics=False, log=lambda *_: None)
    learned = [CLASSES[i].name for i in section["classes"]]
    assert {"SNIa", "SNII", "SLSN-I"} <= set(learned) and "KN" not in learned
    assert section["fitted_on"]["split"] == "real_validation"
    clf = Classifier.load(f"{folder}+companion", threads=1)
    pred = clf.predict(evaluation_cut(real, "peak+5"))
    ok = pred.status == "ok"
    assert ok.any()
    np.testing.assert_allclose(pred.probabilities[ok].sum(axis=1), 1.0, rtol=1e-5)
    names = [c.name for c in CLASSES]
    for name in ("SNIbc", "KN"):  # left out of the network / never learned: 0
        assert (pred.probabilities[:, names.index(name)] == 0).all()
    own = clf.combine(np.zeros((0, len(CLASSES))), clf.model_inputs(real.take(np.arange(0))))
    assert own[0].shape == (0, len(CLASSES))
