"""A model folder's data recipe: its split and the held-out views built from it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from astrot2.errors import ModelError
from astrot2.io.plasticc import read_plasticc
from astrot2.recipe import split_indices, split_views
from astrot2.runtime import Classifier


def test_split_indices_refuses_foreign_data(fixtures, tmp_path):
    """A split naming objects that are not in the data is a clear error, not a subset."""
    batch = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                          fixtures / "plasticc" / "plasticc_meta_sample.csv")
    ids = batch.object_id.astype(str).tolist()
    (tmp_path / "split.json").write_text(json.dumps({"test": ids[:3]}))
    np.testing.assert_array_equal(split_indices(batch, tmp_path), [0, 1, 2])
    (tmp_path / "split.json").write_text(json.dumps({"test": [*ids[:3], "no-such-id"]}))
    with pytest.raises(ModelError, match="not in the data"):
        split_indices(batch, tmp_path)


def test_split_views_draws_cut_the_same_objects_at_other_times(ztf_model, fixtures):
    """``draw`` 0 is the views every figure uses; another draw keeps the objects and
    labels and the whole light curves, and cuts the alert and survey windows elsewhere."""
    batch = read_plasticc(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz",
                          fixtures / "plasticc" / "plasticc_meta_sample.csv")
    clf = Classifier.load(ztf_model)
    default = split_views(clf, batch, "test")
    again, other = (split_views(clf, batch, "test", draw) for draw in (0, 1))
    assert set(default) == {"whole", "alert_windows", "survey_windows"}
    for view in default:
        np.testing.assert_array_equal(default[view][1], other[view][1])
        np.testing.assert_array_equal(default[view][0].object_id, other[view][0].object_id)
        np.testing.assert_array_equal(default[view][0].time, again[view][0].time)
    np.testing.assert_array_equal(default["whole"][0].time, other["whole"][0].time)
    for view in ("alert_windows", "survey_windows"):
        a, b = default[view][0], other[view][0]
        assert len(a.time) != len(b.time) or not np.array_equal(a.time, b.time)
