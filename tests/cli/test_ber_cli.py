"""The ``semsim ber`` command, through ``semsim.cli.main.main``."""

import csv
import json

import numpy as np
import pytest
from scipy.stats import binom

from semsim.cli.ber import closed_form_ber
from semsim.cli.main import main
from semsim.phy import theory
from semsim.phy.ber import clopper_pearson, simulate_ber
from semsim.phy.digital import DigitalLink


def _run_json(capsys, *argv):
    assert main(["ber", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1  # exactly one JSON object on stdout
    return json.loads(out)


def test_uncoded_qpsk_awgn_matches_theory(capsys):
    """400k bits per point: >= 9000 expected errors, so 5 % relative is >= 4.7 sigma."""
    res = _run_json(capsys, "--modulation", "qpsk", "--fading", "none",
                    "--snr-db", "2,6", "--bits", "400000", "--seed", "1")
    assert set(res) == {"snr_db", "ber", "bler", "bits", "errors", "blocks", "block_errors",
                        "confidence", "ber_ci", "bler_ci"}
    assert res["snr_db"] == [2.0, 6.0] and res["bler"] is None
    assert all(b >= 400_000 for b in res["bits"])
    for snr, ber, bits, errors in zip(res["snr_db"], res["ber"], res["bits"], res["errors"],
                                      strict=True):
        assert ber == pytest.approx(errors / bits)
        assert ber == pytest.approx(float(theory.ber_awgn("qpsk", snr)), rel=0.05)


def test_seed_reproducible_and_mimo(capsys):
    argv = ["--nt", "2", "--nr", "2", "--modulation", "16qam", "--snr-db", "10",
            "--bits", "20000", "--seed", "3"]
    first = _run_json(capsys, *argv)
    assert first == _run_json(capsys, *argv)
    assert 0.01 < first["ber"][0] < 0.5


def test_coded_link_reports_bler(capsys):
    res = _run_json(capsys, "--code", "ldpc5g", "--k", "128", "--n", "256", "--fading", "none",
                    "--snr-db=-3,12", "--bits", "2560")  # "=" for a leading minus
    assert res["bits"] == [2560, 2560]
    assert res["bler"][1] == 0.0 and res["errors"][1] == 0
    assert res["bler"][0] > 0.5  # -3 dB Es/N0 is below what a rate-1/2 code can decode


def test_multi_user_option(capsys):
    res = _run_json(capsys, "--users", "2", "--nr", "4", "--csi", "ls", "--pilots", "4",
                    "--detector", "zf", "--snr-db", "30", "--bits", "2000")
    assert res["ber"][0] < 1e-2


def test_table_output(capsys):
    assert main(["ber", "--fading", "none", "--snr-db", "0,3", "--bits", "1000"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert "BER" in lines[1] and len(lines) == 4
    cells = lines[2].split()
    assert cells[0] == "0.00" and cells[4] == "-"
    low, high = float(cells[2].strip("[,")), float(cells[3].strip("]"))
    assert low <= float(cells[1]) <= high
    assert "{" not in captured.out


@pytest.mark.parametrize("argv,message", [
    (["--k", "100"], "--k/--n are only used with --code ldpc5g"),
    (["--code", "ldpc5g", "--k", "100"], "needs both --k and --n"),
    (["--code", "ldpc5g", "--k", "100", "--n", "1000"], "code rate"),
    (["--frame", "short"], "--frame is only used with --code dvbs2"),
    (["--nt", "2", "--users", "2"], "not both"),
    (["--pilots", "4"], "--pilots is only used with --csi ls"),
    (["--csi-error-var", "0.1"], "--csi-error-var is only used with --csi noisy"),
    (["--fading", "none", "--nt", "1", "--nr", "2"], "num_rx_ant == num_tx_ant"),
    (["--nt", "4", "--nr", "2", "--detector", "zf"], "num_rx_ant >= streams"),
])
def test_bad_combinations_exit_2(capsys, argv, message):
    assert main(["ber", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("semsim ber: error:")


@pytest.mark.parametrize("argv", [["--snr-db", "1,x"], ["--bits", "0"],
                                  ["--modulation", "8psk"], ["--code", "turbo"]])
def test_bad_values_exit_2(argv):
    with pytest.raises(SystemExit) as info:
        main(["ber", *argv])
    assert info.value.code == 2


@pytest.mark.parametrize("errors, trials", [(5, 100), (1, 1000), (37, 40)])
def test_clopper_pearson_bounds_are_the_binomial_tail_quantiles(errors, trials):
    """At the upper (lower) end, seeing <= errors (>= errors) has probability 2.5 %."""
    low, high = clopper_pearson(errors, trials, 0.95)
    assert binom.cdf(errors, trials, high) == pytest.approx(0.025, rel=1e-6)
    assert binom.sf(errors - 1, trials, low) == pytest.approx(0.025, rel=1e-6)


def test_no_error_gives_the_rule_of_three_bound():
    low, high = clopper_pearson(0, 200_000, 0.95)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 200_000), rel=1e-9)
    assert high == pytest.approx(3.689 / 200_000, rel=1e-3)


def test_points_stop_at_the_target_and_high_snr_points_report_an_interval():
    """QPSK over AWGN, 200k-bit budget in 1000-bit batches, target 100 bit errors:
    at 2 dB (BER 3.75e-2) the point stops after ~3 batches; at 12 dB (BER 3.4e-5,
    ~7 errors expected) it spends the budget and its interval holds the exact BER; at
    16 dB (BER 1.4e-10) no error is seen and the interval's upper end is reported."""
    link = DigitalLink("qpsk", fading="none", k=1000)
    res = simulate_ber(link, [2.0, 12.0, 16.0], 200_000, batch_size=1, seed=4,
                       target_bit_errors=100)
    assert res.errors[0] >= 100 and res.bits[0] < 10_000
    assert res.errors[0] - 1000 * theory.ber_awgn("qpsk", 2.0) * 3 < 100  # ~37 per batch
    assert res.bits[1:] == [200_000, 200_000]
    exact = theory.ber_awgn("qpsk", [12.0, 16.0])
    (low12, high12), (low16, high16) = res.ber_interval()[1:]
    assert low12 <= exact[0] <= high12 and 0 < res.errors[1] < 100
    assert res.errors[2] == 0 and low16 == 0.0 and high16 == pytest.approx(1.844e-5, rel=1e-3)


def test_out_writes_csv_json_and_plot_with_the_closed_form(tmp_path, capsys):
    out = tmp_path / "ber"
    assert main(["ber", "--modulation", "16qam", "--fading", "none", "--snr-db", "4,8",
                 "--bits", "20000", "--seed", "2", "--out", str(out)]) == 0
    data = json.loads((out / "ber.json").read_text())
    np.testing.assert_allclose(data["closed_form_ber"], theory.ber_awgn("16qam", [4.0, 8.0]))
    rows = list(csv.DictReader((out / "ber.csv").open()))
    assert [float(r["snr_db"]) for r in rows] == [4.0, 8.0]
    assert [int(r["errors"]) for r in rows] == data["errors"]
    for row, (low, high) in zip(rows, data["ber_ci"], strict=True):
        assert float(row["ber_ci_low"]) == low <= float(row["ber"]) <= high
    assert (out / "ber.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_closed_form_only_where_theory_applies():
    np.testing.assert_allclose(closed_form_ber(DigitalLink("qpsk", fading="block"), [5.0]),
                               theory.ber_rayleigh("qpsk", [5.0]))
    for link in (DigitalLink("qpsk", num_tx_ant=2, num_rx_ant=2),
                 DigitalLink("qpsk", num_tx_ant=1, num_rx_ant=2),
                 DigitalLink("qpsk", code="ldpc5g", k=64, n=128),
                 DigitalLink("qpsk", csi="ls")):
        assert closed_form_ber(link, [5.0]) is None
