"""Model compression: Huffman coder, compact artefact, every method round-tripped.

The methods run on a tiny real t2 model trained on the committed PLAsTiCC sample
(``tests/data/plasticc``), with a few fine-tuning steps each: these tests check
correctness (round trips, exact decoding, bounded drift, refusal of tampered files),
not accuracy, which ``astrot2 compress`` measures on the full data.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrot2.compress import huffman
from astrot2.compress.artefact import read_compact, sinusoidal
from astrot2.errors import ModelError
from astrot2.io.plasticc import read_plasticc

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")


# --- Huffman ------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=600), st.integers(0, 20))
def test_huffman_decode_is_exact(symbols, extra_alphabet):
    symbols = np.array(symbols, dtype=np.int64)
    alphabet = (int(symbols.max()) + 1 if symbols.size else 1) + extra_alphabet
    data = huffman.encode(symbols, alphabet)
    np.testing.assert_array_equal(huffman.decode(data), symbols)


def test_huffman_is_optimal_and_canonical():
    """Total code length equals the Huffman cost (sum of merged weights), an independent
    computation; lengths satisfy Kraft's equality; skewed data beats 4-bit packing."""
    import heapq

    rng = np.random.default_rng(0)
    counts = rng.integers(1, 1000, size=37)
    lengths = huffman.code_lengths(counts)
    heap = [int(c) for c in counts]
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    assert int((counts * lengths).sum()) == cost
    assert (2.0 ** -lengths.astype(float)).sum() == pytest.approx(1.0)
    skewed = np.minimum(rng.geometric(0.5, size=10_000) - 1, 15)
    assert len(huffman.encode(skewed, 16)) < 10_000 * 4 / 8 * 0.6


def test_huffman_length_limit_and_errors():
    counts = np.array([2 ** i for i in range(30)])  # optimal code would be 29 bits deep
    lengths = huffman.code_lengths(counts, max_length=16)
    assert lengths.max() <= 16 and (2.0 ** -lengths.astype(float)).sum() <= 1.0
    symbols = np.repeat(np.arange(30), np.minimum(counts, 3000))
    np.testing.assert_array_equal(huffman.decode(huffman.encode(symbols)), symbols)
    data = huffman.encode(np.arange(100) % 7)
    with pytest.raises(ValueError):
        huffman.decode(data[:-3])
    with pytest.raises(ValueError):
        huffman.encode(np.array([-1]))


def test_sinusoidal_matches_the_torch_model():
    from astrot2.model import sinusoidal_encoding

    np.testing.assert_allclose(sinusoidal(100, 32), sinusoidal_encoding(100, 32).numpy(),
                               atol=1e-6)


def test_kmeans_1d_matches_scikit_learn():
    """Lloyd's iterations from the same linear initialisation reach sklearn's centroids."""
    from sklearn.cluster import KMeans

    from astrot2.compress.finetune import kmeans_1d

    values = np.random.default_rng(1).normal(size=2000) ** 3
    centroids, labels = kmeans_1d(values, 8, iters=300)
    init = np.linspace(values.min(), values.max(), 8)[:, None]
    ref = KMeans(8, init=init, n_init=1, max_iter=300, tol=0).fit(values[:, None])
    np.testing.assert_allclose(centroids, np.sort(ref.cluster_centers_.ravel()), rtol=1e-6)
    assert ((values - centroids[labels]) ** 2).sum() == pytest.approx(ref.inertia_, rel=1e-6)
    assert np.all(np.diff(centroids) > 0) and set(np.unique(labels)) == set(range(8))


# --- the methods on a tiny real model -------------------------------------------------------

FAST = dict(prune_steps=30, cluster_steps=20, distill_steps=40, distill_augment=1,
            student_prune_steps=30, student_cluster_steps=20, calibration=32, sparsity=0.5,
            clusters=16, batch_size=32)


@pytest.fixture(scope="module")
def sample(fixtures):
    folder = fixtures / "plasticc"
    return read_plasticc(folder / "plasticc_lc_sample.csv.gz", folder / "plasticc_meta_sample.csv")


@pytest.fixture(scope="module")
def compressed(tmp_path_factory, sample):
    from astrot2.compress.pipeline import CompressConfig, compress_model
    from astrot2.train import preset, train

    root = tmp_path_factory.mktemp("compress")
    parent = root / "lsst"
    train(sample, preset("lsst", epochs=2, n_augment=1, steps_per_epoch=2, batch_size=32),
          parent, log=lambda *_: None)
    folders = compress_model(parent, root / "variants", sample,
                             config=CompressConfig(**FAST), log=lambda *_: None)
    return parent, folders


@pytest.fixture(scope="module")
def real_inputs(compressed, sample):
    from astrot2.features import prepare
    from astrot2.manifest import read_manifest

    m = read_manifest(compressed[0])
    x, extra, _, _ = prepare(sample, m.gp, m.features)
    return x, extra


def _logits(folder, x, extra):
    from astrot2.runtime import Classifier

    session = Classifier.load(folder, threads=1).session
    return session.run(None, {"x": x, "extra": extra})[0]


# Max |logit difference| from the parent for the post-training methods, on real inputs.
DRIFT = {"onnx": 0.0, "ort": 1e-5, "fp16": 2e-2, "dynamic_int8": 0.5, "static_int8": 2.0,
         "int8_huffman": 0.5}


@pytest.mark.parametrize("method", sorted(DRIFT))
def test_post_training_methods_round_trip(method, compressed, real_inputs):
    parent, folders = compressed
    x, extra = real_inputs
    want = _logits(parent, x, extra)
    got = _logits(folders[method], x, extra)
    assert got.shape == want.shape and np.isfinite(got).all()
    assert np.abs(got - want).max() <= DRIFT[method]


@pytest.mark.parametrize("method", ["ort", "deep"])
def test_classifier_predicts_from_ort_and_compact_files(method, compressed, sample):
    from astrot2.runtime import Classifier

    _, folders = compressed
    clf = Classifier.load(folders[method])
    assert clf.manifest.model_file.suffix == {"ort": ".ort", "deep": ".t2c"}[method]
    pred = clf.predict(sample)
    ok = pred.status == "ok"
    assert ok.sum() >= len(sample) - 2
    np.testing.assert_allclose(pred.probabilities[ok].sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("method", ["pruned", "clustered", "deep", "distilled",
                                    "distilled_deep", "distilled_ort"])
def test_retrained_methods_round_trip(method, compressed, real_inputs):
    """The loaded artefact computes what the trained torch model computes."""
    import onnxruntime as ort

    _, folders = compressed
    folder = folders[method]
    x, extra = real_inputs
    doc = json.loads((folder / "manifest.json").read_text())
    got = _logits(folder, x, extra)
    reference = {"deep": "uncompressed.onnx", "distilled_deep": "uncompressed.onnx",
                 "distilled_ort": "../distilled/model.onnx"}.get(method, "model.onnx")
    session = ort.InferenceSession(str(folder / reference), providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x, "extra": extra})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    info = doc["compression"]
    if method in ("pruned", "deep", "distilled_deep"):
        assert info["weight_sparsity"] == pytest.approx(0.5, abs=0.02)
    if method in ("clustered", "deep", "distilled_deep"):
        assert info["max_distinct_values_per_matrix"] <= 16
    if method.startswith("distilled"):
        assert doc["model"]["architecture"] == "PatchT2" and doc["model"]["n_tokens"] == 25


def test_compact_artefact_is_smaller_and_decodes_exactly(compressed, tmp_path):
    """Deep compression's artefact is a fraction of the ONNX size, and decodes to exactly
    the weights of the ONNX it was made from (the positional encoding, recomputed, to
    1e-6)."""
    import struct

    import onnx
    from onnx import numpy_helper

    from astrot2.compress.artefact import decode_tensors, write_compact

    _, folders = compressed
    deep = folders["deep"]
    plain = deep / "uncompressed.onnx"
    assert (deep / "model.t2c").stat().st_size < 0.25 * plain.stat().st_size
    file = tmp_path / "plain.t2c"  # without graph optimisation: same tensors as plain
    write_compact(plain, file, optimise=False)
    data = file.read_bytes()
    (n,) = struct.unpack_from("<I", data, 4)
    header = json.loads(data[8:8 + n])
    decoded = decode_tensors(header, memoryview(data)[8 + n:])
    model = onnx.load(str(plain))
    want = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    want.update({node.output[0]: numpy_helper.to_array(node.attribute[0].t)
                 for node in model.graph.node if node.op_type == "Constant"})
    codecs = {t["name"]: t["codec"] for t in header["tensors"]}
    assert "cluster" in codecs.values() and "sinusoidal" in codecs.values()
    for name, arr in decoded.items():
        if codecs[name] == "sinusoidal":
            np.testing.assert_allclose(arr, want[name], atol=1e-6)
        else:
            np.testing.assert_array_equal(arr, want[name])
    import onnxruntime as ort

    x = np.random.default_rng(0).random((4, 100, 12), dtype=np.float32)
    feeds = {"x": x, "extra": np.ones((4, 4), dtype=np.float32)}
    ref = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"]).run(None, feeds)
    for artefact in (file, deep / "model.t2c"):  # plain, and graph-optimised (shipped kind)
        got = ort.InferenceSession(read_compact(artefact), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(got.run(None, feeds)[0], ref[0], atol=1e-5)


def test_variant_manifests_keep_the_lineage(compressed):
    parent, folders = compressed
    parent_doc = json.loads((parent / "manifest.json").read_text())
    for method, folder in folders.items():
        doc = json.loads((folder / "manifest.json").read_text())
        assert doc["parent"]["sha256"] == parent_doc["onnx"]["sha256"]
        assert doc["parent"]["metrics"] == parent_doc["metrics"]
        assert doc["compression"]["method"] == method
        assert doc["metrics"]["test_split"]["whole"]["flat_log_loss"] > 0
        assert (folder / "split.json").read_text() == (parent / "split.json").read_text()


def test_tampered_artefacts_are_refused(compressed, tmp_path):
    from astrot2.runtime import Classifier
    from astrot2.utils import sha256_file

    _, folders = compressed
    for method, name in (("deep", "model.t2c"), ("ort", "model.ort")):
        copy = tmp_path / method
        shutil.copytree(folders[method], copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) - 5] ^= 0x10
        (copy / name).write_bytes(bytes(data))
        with pytest.raises(ModelError, match="sha256"):
            Classifier.load(copy)
    # a compact file altered *and* re-registered in the manifest: its own check refuses it
    copy = tmp_path / "deep"
    doc = json.loads((copy / "manifest.json").read_text())
    doc["onnx"]["sha256"] = sha256_file(copy / "model.t2c")
    (copy / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="decoded model differs"):
        Classifier.load(copy)


def test_ship_choice_rule():
    from astrot2.compress.pipeline import ship_choice

    rows = {"onnx": {"flat_log_loss": 0.76, "bytes": 77_000, "alerts_per_s": 1},
            "a": {"flat_log_loss": 0.775, "bytes": 5_000, "alerts_per_s": 9},
            "b": {"flat_log_loss": 0.769, "bytes": 9_000, "alerts_per_s": 2},
            "c": {"flat_log_loss": 0.75, "bytes": 9_000, "alerts_per_s": 5}}
    assert ship_choice(rows) == "c"
    assert ship_choice(rows, tolerance=0.02) == "a"


def test_students_learn_from_an_ensemble_of_teachers(compressed, sample, tmp_path):
    """Extra teachers on the parent's split change the student and are recorded; a teacher
    trained on another split (it may have seen the test objects) is refused."""
    from astrot2.compress.pipeline import CompressConfig, compress_model
    from astrot2.train import preset, train

    parent, folders = compressed
    tiny = dict(epochs=2, n_augment=1, steps_per_epoch=2, batch_size=32)
    other = tmp_path / "init1"
    train(sample, preset("lsst", init_seed=1, **tiny), other, log=lambda *_: None)
    config = CompressConfig(**FAST, teachers=(str(other),))
    got = compress_model(parent, tmp_path / "variants", sample, methods=["distilled"],
                         config=config, log=lambda *_: None)
    doc = json.loads((got["distilled"] / "manifest.json").read_text())
    teachers = doc["compression"]["teachers"]
    assert [t["sha256"] for t in teachers] == [
        json.loads((f / "manifest.json").read_text())["onnx"]["sha256"]
        for f in (parent, other)]
    # the tiny runs' batch settings are not command-line options: the whole config is kept
    assert teachers[1]["train_command"] is None
    assert teachers[1]["differs_from_preset"] == ["batch_size", "steps_per_epoch"]
    assert teachers[1]["train_config"]["init_seed"] == 1
    single = json.loads((folders["distilled"] / "manifest.json").read_text())
    assert (doc["metrics"]["test_split"]["whole"]["flat_log_loss"]
            != single["metrics"]["test_split"]["whole"]["flat_log_loss"])
    leaky = tmp_path / "seed1"
    train(sample, preset("lsst", seed=1, **tiny), leaky, log=lambda *_: None)
    with pytest.raises(ValueError, match="another split"):
        compress_model(parent, tmp_path / "leaky", sample, methods=["distilled"],
                       config=CompressConfig(**FAST, teachers=(str(leaky),)),
                       log=lambda *_: None)


def test_config_from_key_value_settings():
    from astrot2.compress.pipeline import CompressConfig, config_from

    got = config_from(["sparsity=0.35", "clusters=24"], teachers=("a",))
    assert got == CompressConfig(sparsity=0.35, clusters=24, teachers=("a",))
    for bad in (["clusters=2.5"], ["nope=1"], ["sparsity"], ["teachers=x"]):
        with pytest.raises(ValueError, match="--set"):
            config_from(bad)


def test_ship_to_installs_the_variant_and_drops_a_stale_companion(compressed, sample,
                                                                  tmp_path):
    """``ship_to``: the chosen variant with its parent in ``parent/``, loadable; shipping
    over a model with a feature companion says that the companion is not kept (it was
    fitted to the replaced network) and leaves none behind."""
    pytest.importorskip("sklearn")
    from astrot2.companion import COMPANION_FILE
    from astrot2.companion_fit import fit_companion
    from astrot2.compress.pipeline import ship_to
    from astrot2.runtime import Classifier

    parent, folders = compressed
    results = {"variants": {m: {"folder": str(f)} for m, f in folders.items()},
               "ship": "distilled_deep", "parent": str(parent)}
    dest = tmp_path / "shipped"
    messages: list[str] = []
    assert ship_to(results, dest, log=messages.append) == dest and not messages
    assert (dest / "parent" / "manifest.json").is_file()
    assert Classifier.load(dest).manifest.model_file.suffix == ".t2c"
    fit_companion(dest, sample, log=lambda *_: None)
    assert Classifier.load(f"{dest}+companion").companion is not None
    ship_to(results, dest, log=messages.append)
    assert len(messages) == 1 and "companion" in messages[0]
    assert not (dest / COMPANION_FILE).exists()
    assert "companion" not in json.loads((dest / "manifest.json").read_text())
