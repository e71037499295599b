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
    """The published test vector (18.9, 0.07) -> (2754.2287, 177.5718)."""
    flux, err = mag_to_fluxcal([18.9], [0.07])
    np.testing.assert_allclose(flux, [2754.2287], rtol=1e-7)
    np.testing.assert_allclose(err, [177.5718], rtol=1e-7)
    # and the same formulas written out independently
    assert flux[0] == pytest.approx(10 ** (-0.4 * (18.9 - 27.5)), rel=1e-12)
    assert err[0] == pytest.approx(9.21034e10 * np.exp(-0.921034 * 18.9) * 0.07, rel=1e-12)


def test_error_is_first_order_propagation():
    """0.921034 = 0.4 ln 10 to 6 digits: err ~ |d flux / d mag| * sigma."""
    mag = np.linspace(14.0, 22.0, 9)
    flux, err = mag_to_fluxcal(mag, np.full(9, 0.01))
    np.testing.assert_allclose(err, 0.4 * np.log(10) * flux * 0.01, rtol=1e-6)
    assert (np.diff(flux) < 0).all()  # fainter is less flux


@pytest.mark.parametrize("sign, expected", [("t", 1), ("1", 1), ("f", -1), ("0", -1)])
def test_isdiffpos_sign(sign, expected):
    flux, err = mag_to_fluxcal([20.0], [0.1], [sign])
    assert np.sign(flux[0]) == expected
    assert err[0] > 0


def test_limit_is_five_sigma_of_the_limiting_flux():
    assert limit_to_fluxcal_err([27.5])[0] == pytest.approx(0.2)
    lim = np.array([19.5, 20.0, 21.3])
    np.testing.assert_allclose(limit_to_fluxcal_err(lim), 10 ** (-0.4 * (lim - 27.5)) / 5,
                               rtol=1e-12)


def test_njy_zero_points():
    # 31.4 AB in nJy is 1 nJy; 27.5 AB in FLUXCAL is 1: the same source.
    assert NJY_TO_FLUXCAL == pytest.approx(10 ** (-3.9 / 2.5))
    assert njy_to_fluxcal([10 ** (0.4 * 3.9)])[0] == pytest.approx(1.0)


def test_contradicted_limits():
    """A limit goes only when a detection of the same light curve and band within half a
    day is brighter than it (|flux| > 5 x its error, either sign)."""
    from astrot2.photometry import contradicted_limits

    #          limit  det: brighter  fainter  other band  other lc  1 d away  negative
    owner = np.array([0, 0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 6])
    time = np.array([10.0, 10.01, 10.0, 10.01, 10.0, 10.01, 10.01, 10.0, 10.0, 11.0,
                     10.0, 9.6])
    band = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0])
    flux = np.array([0.0, 600.0, 0.0, 400.0, 0.0, 900.0, 900.0, 0.0, 0.0, 900.0,
                     0.0, -700.0])
    err = np.array([100.0, 30.0, 100.0, 30.0, 100.0, 30.0, 30.0, 100.0, 100.0, 30.0,
                    100.0, 30.0])
    det = flux != 0.0
    got = contradicted_limits(owner, time, band, flux, err, det)
    assert got.tolist() == [True] + [False] * 9 + [True, False]
    assert not contradicted_limits(owner, time, band, flux, err, np.zeros(12, bool)).any()
