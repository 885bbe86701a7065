"""Bjontegaard deltas against curves with a known shift."""

import json

import numpy as np
import pytest

from semsim.report.bd import bd_from_results, bd_quality, bd_rate, bd_table, main, ms_ssim_db

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
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="do not overlap in quality"):
        bd_rate(CBR, PSNR, CBR, PSNR + 20.0)
    with pytest.raises(ValueError, match="method"):
        bd_rate(CBR, PSNR, CBR, PSNR, method="linear")


def _system(cbr, psnr):
    return {"snr_db": [6.0], "cr": [2 * cbr], "psnr_db": [psnr]}


@pytest.mark.filterwarnings("ignore:Insufficient curve overlap")  # BD-PSNR overlap is 72 %
def test_bd_from_results_groups_families_and_writes_bd_json(tmp_path):
    systems = {f"chain_q{q}": _system(c, p) for q, c, p in zip((41, 34, 28), CBR[:3], PSNR[:3], strict=True)}
    systems.update({f"scsc_q{q}": _system(0.8 * c, p)
                    for q, c, p in zip((41, 34, 28), CBR[:3], PSNR[:3], strict=True)})
    systems["deepjscc"] = _system(1 / 12, 25.0)  # a single point: no curve, skipped
    results = {"systems": systems}
    table = bd_from_results(results, anchor="chain")
    assert set(table) == {"6.0"} and set(table["6.0"]) == {"scsc"}
    assert table["6.0"]["scsc"]["bd_rate_percent"] == pytest.approx(-20.0, abs=1e-6)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    assert main([str(path), "--anchor", "chain"]) == 0
    assert json.loads((tmp_path / "bd.json").read_text())["by_snr_db"] == table
    results["systems"]["scsc_q28"]["psnr_db"] = [10.0]  # no longer increasing with CBR
    bad = bd_from_results(results, anchor="chain")["6.0"]["scsc"]
    assert bad["bd_rate_percent"] is None and bad["bd_quality_db"] is None
    assert "increase strictly" in bad["errors"][0]
    with pytest.raises(ValueError, match="anchor family"):
        bd_from_results(results, anchor="deepjscc")
