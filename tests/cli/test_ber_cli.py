"""The ``semsim ber`` command, through ``semsim.cli.main.main``."""

import json

import pytest

from semsim.cli.main import main
from semsim.phy import theory


def _run_json(capsys, *argv):
    assert main(["ber", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1  # exactly one JSON object on stdout
    return json.loads(out)


def test_uncoded_qpsk_awgn_matches_theory(capsys):
    """400k bits per point: >= 9000 expected errors, so 5 % relative is >= 4.7 sigma."""
    res = _run_json(capsys, "--modulation", "qpsk", "--fading", "none",
                    "--snr-db", "2,6", "--bits", "400000", "--seed", "1")
    assert set(res) == {"snr_db", "ber", "bler", "bits", "errors"}
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
    assert lines[2].split()[0] == "0.00" and lines[2].split()[2] == "-"
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
