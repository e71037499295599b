"""Class priors: Bayes re-weighting of the probabilities (astrot2 classify --prior)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from astrot2.classes import CLASSES
from astrot2.cli import main
from astrot2.errors import ConfigError
from astrot2.priors import PRIORS, as_prior, load_prior, reweight, training_prior

NAMES = [c.name for c in CLASSES]
ZTF_ALERTS = Path(__file__).resolve().parent / "data" / "ztf" / "fink_multi_flat_11.avro"


def _probs(n: int = 50, seed: int = 0) -> np.ndarray:
    p = np.random.default_rng(seed).dirichlet(np.ones(len(NAMES)), n).astype(np.float32)
    p[3] = 0.0  # a rejected alert
    return p


def test_bayes_rule_against_a_direct_computation():
    p = _probs()
    prior = as_prior(PRIORS["bts"])
    train = np.linspace(1, 2, len(NAMES))
    train /= train.sum()
    out = reweight(p, prior, train)
    expected = p * prior / train
    total = expected.sum(axis=1, keepdims=True)
    expected = np.divide(expected, total, out=np.zeros_like(expected), where=total > 0)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    ok = p.sum(axis=1) > 0
    np.testing.assert_allclose(out[ok].sum(axis=1), 1.0, rtol=1e-6)
    assert (out[~ok] == 0).all() and np.isfinite(out).all()


def test_same_prior_is_bit_identical():
    p = _probs()
    assert reweight(p, as_prior(PRIORS["flat"])) is p
    assert reweight(p, None, np.full(len(NAMES), 0.5)) is p


def test_round_trip_between_priors():
    p = _probs()
    bts = as_prior(PRIORS["bts"])
    back = reweight(reweight(p, bts), as_prior(PRIORS["flat"]), bts)
    np.testing.assert_allclose(back, p, rtol=1e-5, atol=1e-6)


def test_bts_prior_raises_snia_share():
    p = _probs()
    out = reweight(p, as_prior(PRIORS["bts"]))
    ia = NAMES.index("SNIa")
    assert (out[p.sum(1) > 0, ia] > p[p.sum(1) > 0, ia]).all()


def test_classes_absent_from_training_stay_impossible():
    p = _probs()
    train = np.ones(len(NAMES))
    train[NAMES.index("KN")] = 0.0
    p[:, NAMES.index("KN")] = 0.0
    out = reweight(p, as_prior(PRIORS["flat"]), train / train.sum())
    assert (out[:, NAMES.index("KN")] == 0).all()


def test_load_prior(tmp_path):
    assert load_prior("model") is None
    np.testing.assert_allclose(load_prior("flat"), 1 / len(NAMES))
    bts = load_prior("bts")
    assert bts.sum() == pytest.approx(1.0)
    assert bts[NAMES.index("SNIa")] == pytest.approx(0.72, abs=0.01)
    f = tmp_path / "mix.json"
    f.write_text(json.dumps({"SNIa": 3, "SNII": 1}))
    mine = load_prior(f)
    assert mine.sum() == pytest.approx(1.0)
    assert mine[NAMES.index("SNIa")] == pytest.approx(3 * mine[NAMES.index("SNII")])
    assert mine[NAMES.index("AGN")] == pytest.approx(0.001)


@pytest.mark.parametrize(("doc", "match"), [
    ({"SNIa": 1, "Dragon": 1}, "unknown classes"), ({"SNIa": -1}, "> 0"),
    ({"SNIa": "x"}, "numbers"), ([1, 2], "JSON object")])
def test_bad_priors(tmp_path, doc, match):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=match):
        load_prior(f)
    with pytest.raises(ConfigError, match="not one of"):
        load_prior(tmp_path / "missing.json")


def test_training_prior_from_manifest():
    assert training_prior({"training": {}}) is None
    vec = training_prior({"training": {"class_prior": {"SNIa": 3.0, "SNII": 1.0}}})
    assert vec[NAMES.index("SNIa")] == pytest.approx(0.75) and vec.sum() == pytest.approx(1)


def test_classify_prior_flag(tmp_path):
    rows = {}
    for prior in ("flat", "bts"):
        out = tmp_path / f"{prior}.parquet"
        assert main(["classify", str(ZTF_ALERTS), "-o", str(out), "--model", "ztf",
                     "--prior", prior, "--quiet"]) == 0
        rows[prior] = pq.read_table(out).to_pandas()
    flat, bts = rows["flat"], rows["bts"]
    cols = [f"p_{c.slug}" for c in CLASSES]
    ok = flat["status"] == "ok"
    assert ok.any()
    np.testing.assert_allclose(bts.loc[ok, cols].sum(axis=1), 1.0, rtol=1e-5)
    assert (bts.loc[ok, "p_snia"] > flat.loc[ok, "p_snia"]).all()
    assert main(["classify", str(ZTF_ALERTS), "-o", str(tmp_path / "x.parquet"),
                 "--prior", "nonsense", "--quiet"]) == 2
