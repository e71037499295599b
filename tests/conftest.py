"""Shared fixtures: the committed small real-data fixtures, the optional full data, models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """``tests/data``: small real alerts and PLAsTiCC objects committed with the project."""
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full real-data folder (``$ASTROT2_DATA``; ``.ci/run`` sets it), else skip."""
    env = os.environ.get("ASTROT2_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    pytest.skip("real data folder not available (set ASTROT2_DATA)")


@pytest.fixture(scope="session")
def sncosmo_dir(shared_data, tmp_path_factory) -> Path:
    """sncosmo's templates unpacked from the data folder (astrot2 data fetch sncosmo), and
    sncosmo pointed at them; skips without sncosmo."""
    sncosmo = pytest.importorskip("sncosmo")
    from astrot2.data import fetch_dataset

    old = os.environ.get("ASTROT2_DATA")
    os.environ["ASTROT2_DATA"] = str(shared_data)
    try:
        path = fetch_dataset("sncosmo", tmp_path_factory.mktemp("cache"), source="local",
                             progress=False)
    finally:
        if old is None:
            os.environ.pop("ASTROT2_DATA")
        else:
            os.environ["ASTROT2_DATA"] = old
    sncosmo.conf.data_dir = str(path)
    return path


@pytest.fixture(scope="session")
def ztf_model(tmp_path_factory, fixtures) -> Path:
    """A real (tiny) ztf model folder trained on the PLAsTiCC fixture; needs torch."""
    pytest.importorskip("torch")
    from astrot2.io.plasticc import read_plasticc
    from astrot2.train import preset, train

    folder = fixtures / "plasticc"
    sample = read_plasticc(folder / "plasticc_lc_sample.csv.gz",
                           folder / "plasticc_meta_sample.csv")
    out = tmp_path_factory.mktemp("model") / "ztf"
    train(sample, preset("ztf", epochs=2, n_augment=1, steps_per_epoch=2, batch_size=32), out,
          log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def lsst_classifier():
    """The shipped ``lsst`` model, loaded with one ONNX Runtime thread."""
    from astrot2.runtime import Classifier, shipped_models

    if "lsst" not in shipped_models():
        pytest.skip("no shipped lsst model")
    return Classifier.load("lsst", threads=1)
