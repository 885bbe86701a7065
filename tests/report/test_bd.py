"""Bjontegaard deltas against curves with a known shift."""

import json

import numpy as np
import pytest

from semsim.report.bd import (
    bd_quality,
    bd_rate,
    bd_section,
    bd_table,
    envelope,
    main,
    ms_ssim_db,
)
from semsim.report.markdown import write_report
from semsim.report.results import BDResults, ResultsFile

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


# ---- best configuration per CBR (eval.bd_envelope) -----------------------------------
def _dominated(rates, quality, i) -> bool:
    """Brute force: another point at a CBR <= and a quality >=, strictly better in one,
    or an identical point listed before ``i``."""
    for j in range(len(rates)):
        if j == i:
            continue
        no_worse = rates[j] <= rates[i] and quality[j] >= quality[i]
        better = rates[j] < rates[i] or quality[j] > quality[i]
        if no_worse and (better or j < i):
            return True
    return False


def test_envelope_drops_dominated_points():
    # point 2 (CBR 0.04, 22 dB) is beaten by point 1 (less CBR, more PSNR)
    rates = [0.02, 0.03, 0.04, 0.05]
    quality = [20.0, 24.0, 22.0, 27.0]
    assert envelope(rates, quality).tolist() == [0, 1, 3]
    # unsorted input: indices into the input, returned in increasing CBR
    assert envelope([0.05, 0.02, 0.04, 0.03], [27.0, 20.0, 22.0, 24.0]).tolist() == [1, 3, 0]


def test_envelope_of_a_curve_broken_by_one_failing_configuration_is_increasing():
    """A configuration that loses its images (PSNR near the mean colour at a high CBR)
    makes the curve non-monotone; the envelope drops it and is strictly increasing."""
    rates = np.array([0.02, 0.03, 0.04, 0.05, 0.06, 0.07])
    quality = np.array([20.0, 23.0, 12.5, 26.0, 28.0, 12.5])
    keep = envelope(rates, quality)
    assert keep.tolist() == [0, 1, 3, 4]
    assert np.all(np.diff(rates[keep]) > 0) and np.all(np.diff(quality[keep]) > 0)


def test_envelope_ties():
    # same CBR: the higher PSNR stays; same PSNR: the lower CBR stays; identical: the first
    assert envelope([0.03, 0.03, 0.05], [20.0, 22.0, 25.0]).tolist() == [1, 2]
    assert envelope([0.03, 0.04, 0.05], [22.0, 22.0, 25.0]).tolist() == [0, 2]
    assert envelope([0.05, 0.03, 0.03], [25.0, 22.0, 22.0]).tolist() == [1, 0]
    # CBRs equal to 12 decimals count as equal (as _too_few counts distinct rates)
    assert envelope([0.03, 0.03 + 1e-15, 0.05], [22.0, 22.0, 25.0]).tolist() == [0, 2]
    with pytest.raises(ValueError, match="one length"):
        envelope([0.1, 0.2], [20.0])


def test_envelope_matches_brute_force_dominance():
    """Random clouds with many ties (rounded values), seed 0: the kept set equals the
    points no other point dominates (brute force over all pairs)."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        rates = np.round(rng.uniform(0.01, 0.1, n), 2)
        quality = np.round(rng.uniform(10.0, 30.0, n), 0)
        expected = {i for i in range(n) if not _dominated(rates, quality, i)}
        keep = envelope(rates, quality)
        assert set(keep.tolist()) == expected
        assert np.all(np.diff(rates[keep]) > 0) and np.all(np.diff(quality[keep]) > 0)


def _best_systems() -> dict:
    """The 5-point anchor ``chain0..4`` and a 'best' scheme of 8 configurations ``b0..7``:
    ``b0..4`` the anchor's points 0.8x in CBR with 1 dB more, plus three dominated ones
    (b5 and b6 below b2 at a higher CBR, b7 a failed configuration at the top CBR), at
    SNR 2 and 10 dB (3 dB more at 10 dB)."""
    systems = _systems("chain", RATES5, PSNR5)
    rates = [*(0.8 * RATES5), 0.8 * RATES5[2] * 1.05, 0.8 * RATES5[3] * 1.01, 0.1]
    psnr = [*(PSNR5 + 1.0), PSNR5[2] + 0.5, PSNR5[2] + 1.0, 12.0]
    systems.update(_systems("b", rates, psnr))
    return systems


@pytest.mark.filterwarnings("ignore:Insufficient curve overlap")
def test_section_with_envelope_equals_the_kept_points_given_directly():
    systems = _best_systems()
    chain = [f"chain{i}" for i in range(5)]
    best = [f"b{i}" for i in range(8)]
    enveloped = bd_section({"bd_anchor": "chain", "bd_curves": {"chain": chain, "best": best},
                            "bd_envelope": ["best"]}, systems)
    direct = bd_section({"bd_anchor": "chain", "bd_curves": {
        "chain": chain, "best": [f"b{i}" for i in range(5)]}}, systems)
    for key in ("bd_rate_percent", "bd_psnr_db"):
        assert enveloped["deltas"]["best"][key] == pytest.approx(
            direct["deltas"]["best"][key], abs=1e-12)
    # the kept points: 0.8x the CBR at 1 dB more, so BD-PSNR > 1 dB and BD-rate < -20 %
    assert all(v > 1.0 for v in enveloped["deltas"]["best"]["bd_psnr_db"])
    assert all(v < -20.0 for v in enveloped["deltas"]["best"]["bd_rate_percent"])
    assert enveloped["envelope"] == {"best": [[f"b{i}" for i in range(5)]] * 2}
    assert enveloped["curves"]["best"] == best and direct["envelope"] == {}
    # without the envelope the same 8 points are not a curve (PSNR falls at the top CBR)
    plain = bd_section({"bd_anchor": "chain", "bd_curves": {"chain": chain, "best": best}},
                       systems)["deltas"]["best"]
    assert plain["bd_rate_percent"] == [None, None] and "increase strictly" in plain["notes"][0]


def test_envelope_of_a_monotone_curve_leaves_its_bd_unchanged():
    systems = {**_systems("chain", RATES5, PSNR5), **_systems("t", 0.9 * RATES5, PSNR5 + 0.7)}
    curves = {"chain": [f"chain{i}" for i in range(5)], "t": [f"t{i}" for i in range(5)]}
    own = bd_section(_eval(curves), systems)
    both = bd_section({**_eval(curves), "bd_envelope": ["chain", "t"]}, systems)
    assert both["deltas"] == own["deltas"]
    assert own["deltas"]["t"]["bd_psnr_db"][0] > 0.7  # a real number, not two nulls
    assert both["envelope"]["chain"] == [curves["chain"]] * 2


def test_envelope_with_too_few_points_left_is_null_with_the_reason():
    """6 configurations, 3 of them dominated: 3 distinct CBRs left, fewer than 4."""
    systems = _systems("chain", RATES5, PSNR5)
    systems.update(_systems("b", [0.02, 0.03, 0.04, 0.05, 0.06, 0.07],
                            [20.0, 23.0, 19.0, 26.0, 25.0, 22.0]))
    section = bd_section({"bd_anchor": "chain", "bd_envelope": ["b"], "bd_curves": {
        "chain": [f"chain{i}" for i in range(5)], "b": [f"b{i}" for i in range(6)]}}, systems)
    entry = section["deltas"]["b"]
    assert entry["bd_rate_percent"] == [None, None] and entry["bd_psnr_db"] == [None, None]
    assert entry["notes"][0] == (
        "curve 'b' has 3 distinct rate point(s) at this SNR (BD needs >= 4) after its "
        "envelope (best configuration per CBR) kept 3 of 6 points")
    assert section["envelope"]["b"] == [["b0", "b1", "b3"]] * 2
    # a curve member not evaluated at an SNR: the envelope there is None
    systems["b5"] = {"snr_db": [2.0], "cr": [0.14], "psnr_db": [22.0]}
    section = bd_section({"bd_anchor": "chain", "bd_envelope": ["b"], "bd_curves": {
        "chain": [f"chain{i}" for i in range(5)], "b": [f"b{i}" for i in range(6)]}}, systems)
    assert section["envelope"]["b"] == [["b0", "b1", "b3"], None]
    assert "'b' was not evaluated" in section["deltas"]["b"]["notes"][1]


@pytest.mark.filterwarnings("ignore:Insufficient curve overlap")
def test_results_and_report_record_the_envelope(tmp_path):
    from tests.report.test_results import make_results

    systems = _best_systems()
    section = bd_section({"bd_anchor": "chain", "bd_envelope": ["best"], "bd_curves": {
        "chain": [f"chain{i}" for i in range(5)], "best": [f"b{i}" for i in range(8)]}},
        systems)
    results = make_results().model_copy(update={"bd": BDResults(**section)})
    results.write(tmp_path / "results.json")
    assert ResultsFile.read(tmp_path / "results.json") == results
    report = write_report(results, [], tmp_path / "report.md").read_text()
    assert ("`best` is the scheme choosing its best configuration per CBR" in report
            and "kept: 2 dB: b0, b1, b2, b3, b4; 10 dB: b0, b1, b2, b3, b4." in report)
    bad = {**section, "envelope": {"best": [["b0"]]}}
    with pytest.raises(ValueError, match=r"bd.envelope\['best'\] has 1 values"):
        BDResults(**bad)
    with pytest.raises(ValueError, match="keeps a system outside the curve"):
        BDResults(**{**section, "envelope": {"best": [["chain0"], None]}})
    with pytest.raises(ValueError, match="'nope' is not a curve"):
        BDResults(**{**section, "envelope": {"nope": [None, None]}})


# ---- the command line: bd_section over the run's resolved scenario --------------------
@pytest.mark.filterwarnings("ignore:Insufficient curve overlap")
def test_cli_uses_the_runs_scenario(tmp_path, capsys):
    systems = _best_systems()
    systems["single"] = {"snr_db": SNRS, "cr": [1 / 6, 1 / 6], "psnr_db": [24.0, 26.0]}
    eval_config = {"batch_size": 8, "bd_anchor": "chain", "bd_envelope": ["best"],
                   "bd_curves": {"chain": [f"chain{i}" for i in range(5)],
                                 "best": [f"b{i}" for i in range(8)]}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"scenario": {"name": "s", "eval": eval_config},
                                "systems": systems}))
    assert main([str(path)]) == 0
    written = json.loads((tmp_path / "bd.json").read_text())
    assert json.loads(capsys.readouterr().out) == written
    assert written == json.loads(json.dumps(bd_section(eval_config, systems)))
    assert written["envelope"]["best"] == [[f"b{i}" for i in range(5)]] * 2
    assert all(v > 1.0 for v in written["deltas"]["best"]["bd_psnr_db"])
    assert "'single' has 1 distinct rate point(s)" in written["deltas"]["single"]["notes"][0]
    # another anchor and method: the anchor's curve now compared from the other side
    assert main([str(path), "--anchor", "best", "--method", "akima"]) == 0
    other = json.loads((tmp_path / "bd.json").read_text())
    assert other["anchor"] == "best" and other["method"] == "akima"
    assert all(v < -1.0 for v in other["deltas"]["chain"]["bd_psnr_db"])
    for anchor in ("nope", "chain0"):  # not a system; a system inside a curve
        with pytest.raises(SystemExit):
            main([str(path), "--anchor", anchor])
        assert "is not a curve of this run" in capsys.readouterr().err
    path.write_text(json.dumps({"scenario": {"name": "s", "eval": {}}, "systems": systems}))
    with pytest.raises(SystemExit):
        main([str(path)])
    assert "names no eval.bd_anchor; pass --anchor" in capsys.readouterr().err
