"""Photometric conversions to FLUXCAL."""

from __future__ import annotations

import numpy as np
import pytest

from astrot2.photometry import (
    NJY_TO_FLUXCAL,
    limit_to_fluxcal_err,
    mag_to_fluxcal,
    njy_to_fluxcal,
)


def test_reference_vector():
    flux, err = mag_to_fluxcal([18.9], [0.07])
    assert flux[0] == pytest.approx(2754.2287, abs=5e-5)
    assert err[0] == pytest.approx(177.5718, abs=5e-5)


@pytest.mark.parametrize("sign, expected", [("t", 1), ("1", 1), ("f", -1), ("0", -1)])
def test_isdiffpos_sign(sign, expected):
    flux, err = mag_to_fluxcal([20.0], [0.1], [sign])
    assert np.sign(flux[0]) == expected
    assert err[0] > 0


def test_limit_is_five_sigma_of_the_limiting_flux():
    assert limit_to_fluxcal_err([27.5])[0] == pytest.approx(0.2)
    assert limit_to_fluxcal_err([20.0])[0] == pytest.approx(10 ** (0.4 * 7.5) / 5)


def test_njy_zero_points():
    # 31.4 AB in nJy is 1 nJy; 27.5 AB in FLUXCAL is 1: the same source.
    assert NJY_TO_FLUXCAL == pytest.approx(10 ** (-3.9 / 2.5))
    assert njy_to_fluxcal([10 ** (0.4 * 3.9)])[0] == pytest.approx(1.0)
