"""``semsim validate``: one line per problem naming the field, exit code 2, no traceback."""

from __future__ import annotations

import pytest

from semsim.cli.main import main
from tests.scenario.toy_system import register

register()

GOOD = """\
name: good
description: valid test scenario
link: {nr: 2, nt: 2}
snr: {eval_db: [0, 10]}
systems:
  - {name: a, type: toy, params: {cr: 0.5}}
  - {name: b, type: toy, match_cr_of: a}
train: {steps: 2}
"""

CASES = {
    "missing_field": (GOOD.replace("link: {nr: 2, nt: 2}\n", ""),
                      ["link: required field is missing"]),
    "wrong_type": (GOOD.replace("train: {steps: 2}", "train: {steps: 2, batch_size: many}"),
                   ["train.batch_size: Input should be a valid integer, unable to parse string "
                    "as an integer (got 'many')"]),
    "snr_out_of_range": (GOOD.replace("eval_db: [0, 10]", "eval_db: [0, 10, 75]"),
                         ["snr.eval_db[2]: Input should be less than or equal to 60 (got 75)"]),
    "zf_with_more_users_than_antennas": (
        GOOD.replace("link: {nr: 2, nt: 2}", "link: {nr: 2, users: 4, detector: zf}")
            .replace("systems:", "eval: {batch_size: 32}\nsystems:"),
        ["link.detector: 'zf' cannot separate 4 transmit streams with nr=2 receive antennas "
         "(ZF needs nr >= streams); use detector: lmmse"]),
    "unknown_system_type": (GOOD.replace("type: toy, params", "type: warp_drive, params"),
                            ["systems[0].type: unknown system type 'warp_drive' (known: "]),
    "unknown_key": (GOOD.replace("link: {nr: 2, nt: 2}", "link: {nr: 2, nt: 2, fadding: fast}"),
                    ["link: unknown key 'fadding' (allowed: nr, nt, users, antennas_per_user, "
                     "fading, rx_correlation, tx_correlation, csi, detector, snr, model, "
                     "delay_spread_ns, precoding)"]),
    "bad_params": (GOOD.replace("params: {cr: 0.5}", "params: {cr: 2.0, colour: red}"),
                   ["systems[0].params.cr: Input should be less than or equal to 1 (got 2.0)",
                    "systems[0].params: unknown key 'colour' (allowed: cr, shrink, "
                    "interrupt_at_step)"]),
    "match_cr_of_unknown": (GOOD.replace("match_cr_of: a", "match_cr_of: zz"),
                            ["systems[1].match_cr_of: 'zz' is not a system of this scenario; "
                             "systems: a, b"]),
    "two_problems": (GOOD.replace("{nr: 2, nt: 2}", "{nr: 0, nt: 2}")
                         .replace("[0, 10]", "[0, 10, 10]"),
                     ["link.nr: Input should be greater than 0 (got 0)",
                      "snr.eval_db: values must be distinct, repeated: [10.0] "
                      "(got [0, 10, 10])"]),
    "yaml_syntax": ("name: [unclosed\n", ["YAML syntax error: line 2, column 1: "]),
    "not_a_mapping": ("- just\n- a list\n",
                      ["the file must hold a mapping of scenario keys, got list"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_file_gives_one_line_per_problem(case, tmp_path, capsys):
    text, expected = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert len(lines) == len(expected), err
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith(f"{path}: {want}"), line


def test_valid_file_passes(tmp_path, capsys):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{path}: ok - good; profiles: none; systems: a (toy), b (toy)")


def test_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory")


def test_run_rejects_invalid_file_without_running(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(CASES["unknown_key"][0])
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"{path}: link: unknown key 'fadding'")
    assert not (tmp_path / "out").exists()


def test_a_directory_stands_for_its_scenario_files(tmp_path, capsys):
    (tmp_path / "b_good.yaml").write_text(GOOD)
    (tmp_path / "a_bad.yaml").write_text(CASES["unknown_key"][0])
    (tmp_path / "notes.txt").write_text("not a scenario")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["validate", str(tmp_path), str(empty)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{tmp_path / 'b_good.yaml'}: ok - good; profiles: none; systems: a (toy), b (toy)"]
    assert captured.err.splitlines()[0] == f"{empty}: no *.yaml scenario in this directory"
    assert captured.err.splitlines()[1].startswith(
        f"{tmp_path / 'a_bad.yaml'}: link: unknown key 'fadding'")


def test_all_checks_every_shipped_scenario(capsys):
    from semsim.scenario import SCENARIOS_DIR

    assert main(["validate", "--all"]) == 0
    out = capsys.readouterr().out.splitlines()
    shipped = sorted(SCENARIOS_DIR.glob("*.yaml"))
    assert len(shipped) >= 10
    assert [line.split(": ok - ")[0] for line in out] == [str(p) for p in shipped]


def test_validate_without_files_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["validate"])
    assert exit_info.value.code == 2
    assert "--all" in capsys.readouterr().err
