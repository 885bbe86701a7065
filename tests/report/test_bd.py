"""Bjontegaard deltas against curves with a known shift."""

import json

import numpy as np
import pytest

from semsim.report.bd import (
    bd_from_results,
    bd_quality,
    bd_rate,
    bd_section,
    bd_table,
    main,
    ms_ssim_db,
)

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


# ---- the results.json section (bd_section) -------------------------------------------
RATES5 = np.array([1 / 48, 1 / 32, 1 / 24, 1 / 16, 1 / 12])
PSNR5 = np.array([21.0, 23.5, 25.0, 27.0, 28.5])
SNRS = [2.0, 10.0]


def _systems(prefix: str, rates, psnr) -> dict:
    """One system per rate point (``cr = 2 CBR``), the same PSNR at both SNRs but 3 dB
    more at the second."""
    return {f"{prefix}{i}": {"snr_db": SNRS, "cr": [2 * r, 2 * r], "psnr_db": [p, p + 3.0]}
            for i, (r, p) in enumerate(zip(rates, psnr, strict=True))}


def _eval(curves: dict, anchor: str = "chain") -> dict:
    return {"bd_anchor": anchor, "bd_curves": curves}


def test_section_deltas_against_known_curves():
    """The curves of the issue: identical to the anchor (0 and 0), +1 dB at every rate
    (BD-PSNR +1 dB within 1e-6), the anchor's rates times 0.8 at the same PSNR (BD-rate
    -20 % within 1e-6), at every SNR; a single-point system is null with its reason."""
    systems = {**_systems("chain", RATES5, PSNR5), **_systems("same", RATES5, PSNR5),
               **_systems("up", RATES5, PSNR5 + 1.0), **_systems("thin", 0.8 * RATES5, PSNR5),
               "single": {"snr_db": SNRS, "cr": [1 / 6, 1 / 6], "psnr_db": [24.0, 26.0]}}
    curves = {c: [f"{c}{i}" for i in range(5)] for c in ("chain", "same", "up", "thin")}
    section = bd_section(_eval(curves), systems)
    assert section["anchor"] == "chain" and section["snr_db"] == SNRS
    assert section["curves"]["single"] == ["single"]
    deltas = section["deltas"]
    assert set(deltas) == {"same", "up", "thin", "single"}
    np.testing.assert_allclose(deltas["same"]["bd_rate_percent"], [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(deltas["same"]["bd_psnr_db"], [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(deltas["up"]["bd_psnr_db"], [1.0, 1.0], atol=1e-6)
    assert all(r < 0 for r in deltas["up"]["bd_rate_percent"])
    np.testing.assert_allclose(deltas["thin"]["bd_rate_percent"], [-20.0, -20.0], atol=1e-6)
    assert deltas["same"]["notes"] == [None, None]
    single = deltas["single"]
    assert single["bd_rate_percent"] == [None, None] and single["bd_psnr_db"] == [None, None]
    assert "curve 'single' has 1 distinct rate point(s)" in single["notes"][0]


def test_section_too_few_points_and_bad_curves_are_null_with_the_reason():
    systems = {**_systems("chain", RATES5[:3], PSNR5[:3]), **_systems("t", RATES5, PSNR5)}
    section = bd_section(_eval({"chain": ["chain0", "chain1", "chain2"],
                                "test": [f"t{i}" for i in range(5)]}), systems)
    entry = section["deltas"]["test"]
    assert entry["bd_rate_percent"] == [None, None] and entry["bd_psnr_db"] == [None, None]
    assert entry["notes"][0] == ("curve 'chain' has 3 distinct rate point(s) at this SNR "
                                 "(BD needs >= 4)")
    # 5 points each but the test curve far above the anchor: no common PSNR range
    systems = {**_systems("chain", RATES5, PSNR5), **_systems("t", RATES5, PSNR5 + 30.0)}
    curves = {"chain": [f"chain{i}" for i in range(5)], "test": [f"t{i}" for i in range(5)]}
    entry = bd_section(_eval(curves), systems)["deltas"]["test"]
    assert entry["bd_rate_percent"] == [None, None]
    assert "do not overlap in quality" in entry["notes"][0]
    assert entry["bd_psnr_db"] == pytest.approx([30.0, 30.0], abs=1e-6)
    # PSNR not increasing with CBR on the test curve
    systems["t4"]["psnr_db"] = [0.5, 0.5]
    entry = bd_section(_eval(curves), systems)["deltas"]["test"]
    assert entry["bd_psnr_db"] == [None, None] and "increase strictly" in entry["notes"][0]
    # no anchor named: no section; anchor curve not in this run: null with the reason
    assert bd_section({"bd_anchor": None}, systems) is None
    partial = {k: v for k, v in systems.items() if not k.startswith("chain")}
    entry = bd_section(_eval(curves), partial)["deltas"]["test"]
    assert entry["bd_rate_percent"] == [None, None] and "'chain' was not evaluated" in entry["notes"][0]
