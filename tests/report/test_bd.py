"""Bjontegaard deltas against curves with a known shift."""

import numpy as np
import pytest

from semsim.report.bd import bd_quality, bd_rate, bd_table, ms_ssim_db

CBR = np.array([1 / 48, 1 / 24, 1 / 12, 1 / 6])
PSNR = np.array([22.0, 25.5, 28.0, 31.5])


def test_self_is_zero():
    assert bd_rate(CBR, PSNR, CBR, PSNR) == pytest.approx(0.0, abs=1e-9)
    assert bd_quality(CBR, PSNR, CBR, PSNR) == pytest.approx(0.0, abs=1e-9)


def test_known_rate_shift():
    """The same qualities at 0.8x the CBR: 20 % bandwidth saved at every quality, so
    BD-rate = -20 % exactly (the shift is constant in log-rate)."""
    assert bd_rate(CBR, PSNR, 0.8 * CBR, PSNR) == pytest.approx(-20.0, abs=1e-6)
    assert bd_rate(CBR, PSNR, 1.25 * CBR, PSNR) == pytest.approx(25.0, abs=1e-6)


def test_known_quality_shift():
    """1.5 dB better at every CBR: BD-PSNR = 1.5 dB."""
    assert bd_quality(CBR, PSNR, CBR, PSNR + 1.5) == pytest.approx(1.5, abs=1e-6)


def test_table_and_ms_ssim_scale():
    table = bd_table({"chain": (CBR, PSNR), "better": (CBR, PSNR + 1.0)}, anchor="chain")
    assert set(table) == {"better"}
    assert table["better"]["bd_quality_db"] == pytest.approx(1.0, abs=1e-6)
    assert table["better"]["bd_rate_percent"] < 0
    np.testing.assert_allclose(ms_ssim_db([0.9, 0.99]), [10.0, 20.0])


def test_bad_curves_are_rejected():
    with pytest.raises(ValueError, match="increase"):
        bd_rate(CBR, PSNR[::-1], CBR, PSNR)
    with pytest.raises(ValueError, match="at least 2"):
        bd_rate([0.1], [20.0], CBR, PSNR)
    with pytest.raises(ValueError, match="anchor"):
        bd_table({"a": (CBR, PSNR)}, anchor="b")
    with pytest.raises(ValueError, match="method"):
        bd_rate(CBR, PSNR, CBR, PSNR, method="linear")
