"""ModelRef: a user's model string parsed once; the one default-model rule."""

from __future__ import annotations

import shutil

import pytest

from astrot2.errors import ModelError
from astrot2.modelref import ModelRef, default_model, shipped_models


@pytest.fixture(scope="module")
def lsst_folder():
    """The shipped lsst-plasticc model (it has a feature companion)."""
    if "lsst-plasticc" not in shipped_models():
        pytest.skip("no shipped lsst-plasticc model")
    return shipped_models()["lsst-plasticc"]


def test_a_shipped_name_with_and_without_companion(lsst_folder):
    plain = ModelRef.parse("lsst-plasticc")
    assert plain == ModelRef(lsst_folder, False, "lsst-plasticc", "shipped")
    both = ModelRef.parse("lsst-plasticc+companion")
    assert (both.folder, both.companion, both.name, str(both)) == (
        lsst_folder, True, "lsst-plasticc", "lsst-plasticc+companion")
    assert ModelRef.parse("lsst-plasticc+companion", companion=False).companion is False
    assert ModelRef.parse("lsst-plasticc", companion=True) == both


def test_a_path_its_manifest_and_the_name_share_one_key(lsst_folder, tmp_path):
    by_path = ModelRef.parse(str(lsst_folder))
    by_file = ModelRef.parse(lsst_folder / "manifest.json")
    assert by_path.rule == by_file.rule == "path"
    assert by_path.folder == by_file.folder == lsst_folder
    assert by_path.key == by_file.key == ModelRef.parse("lsst-plasticc").key
    assert ModelRef.parse(f"{lsst_folder}+companion").key == ModelRef.parse(
        "lsst-plasticc+companion").key != by_path.key
    assert ModelRef.parse(by_path) is by_path  # a ModelRef is not parsed again


def test_a_folder_without_manifest_is_refused_with_the_file_it_lacks(tmp_path):
    with pytest.raises(ModelError, match=r"no model manifest at .*manifest\.json"):
        ModelRef.parse(str(tmp_path))
    with pytest.raises(ModelError, match=r"no model folder .*\(shipped: "):
        ModelRef.parse("no-such-model+companion")


def test_the_default_model_is_the_shipped_model_of_the_inputs_survey(fixtures, tmp_path):
    if not {"ztf", "lsst"} <= set(shipped_models()):
        pytest.skip("no shipped ztf / lsst models")
    rubin = default_model([fixtures / "rubin"])
    assert (rubin.name, rubin.rule, rubin.companion) == ("lsst", "default", False)
    assert default_model([fixtures / "ztf"]).name == "ztf"
    assert default_model([fixtures / "ztf"], "elasticc").name == "lsst"
    assert default_model(format="plasticc", companion=True).key == ModelRef.parse(
        "lsst+companion").key
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    shutil.copy(next((fixtures / "rubin").iterdir()), tmp_path / "z.parquet")
    assert default_model([tmp_path]).name == "lsst"  # the unreadable file is passed over
    assert default_model([]).name == "ztf"


def test_classifier_load_takes_a_modelref(lsst_folder):
    from astrot2.runtime import Classifier

    clf = Classifier.load(ModelRef.parse("lsst-plasticc+companion"), threads=1)
    assert clf.companion is not None and clf.name.endswith("+companion")
    assert Classifier.load(ModelRef.parse("lsst-plasticc"), threads=1).companion is None
