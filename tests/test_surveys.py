"""Survey definitions: the band order is fixed once and never depends on hash order."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from astrot2.errors import ConfigError
from astrot2.surveys import LSST, ZTF, Survey, get_survey


def test_band_order_is_fixed_by_the_survey():
    assert ZTF.bands == ("g", "r", "i") and LSST.bands == ("u", "g", "r", "i", "z", "y")
    np.testing.assert_array_equal(LSST.band_index(["y", "Y", "u", "q"]), [5, 5, 0, -1])
    np.testing.assert_array_equal(ZTF.band_index(["i", "g", "r", "y", ""]), [2, 0, 1, -1, -1])
    assert list(LSST.wavelength_array) == sorted(LSST.wavelengths)
    assert get_survey("rubin") is LSST and get_survey("ZTF") is ZTF


def test_band_index_keeps_shape_and_order():
    labels = np.array([["r", "g"], ["Y", "u"]], dtype=object)
    np.testing.assert_array_equal(LSST.band_index(labels), [[2, 1], [5, 0]])
    assert LSST.band_index(labels).dtype == np.int8


def test_band_mapping_does_not_depend_on_hash_seed():
    code = ("from astrot2.surveys import LSST, ZTF; "
            "print(LSST.band_index(['z','g','Y','r','u','i','y']).tolist(), "
            "ZTF.band_index(['r','i','g']).tolist())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
            for seed in ("0", "1", "12345")}
    assert outs == {"[4, 1, 5, 2, 0, 3, 5] [1, 2, 0]\n"}


def test_invalid_surveys_are_config_errors():
    with pytest.raises(ConfigError, match="unknown survey"):
        get_survey("hst")
    with pytest.raises(ConfigError, match="blue to red"):
        Survey("bad", ("r", "g"), (6000.0, 4000.0))
    with pytest.raises(ConfigError, match="wavelengths"):
        Survey("bad", ("g",), (4000.0, 5000.0))
