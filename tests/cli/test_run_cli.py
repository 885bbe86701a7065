"""``semsim run`` / ``eval`` / ``plot`` end to end on the test-only ``toy`` system."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semsim.cli.main import main
from semsim.report.results import ResultsFile
from tests.scenario.toy_system import register

register()

TINY = """\
name: tiny_cli
description: tiny CLI test scenario
seed: 11
link: {nr: 2, users: 2, csi: {mode: noisy, error_var: noise}}
snr: {eval_db: [0, 15]}
data: {train_images: 2, test_images: 12}
systems:
  - {name: a, type: toy, params: {cr: 0.4, interrupt_at_step: INTERRUPT}}
  - {name: b, type: toy, match_cr_of: a}
train: {steps: 5, batch_size: 8}
eval: {batch_size: 4, samples: 2}
profiles:
  quick: {train: {steps: 3}, systems: {b: {params: {shrink: 0.5}}}}
"""

OUTPUTS = ("results.json", "results.csv", "report.md", "scenario.resolved.yaml",
           "psnr_vs_snr.png", "psnr_vs_cr.png", "cr_vs_snr.png", "extras_vs_snr.png",
           "samples_a.png", "samples_b.png", "checkpoints/a/toy_state.json")


def scenario(tmp_path: Path, interrupt: str = "null") -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("INTERRUPT", interrupt))
    return path


def numbers(run_dir: Path) -> dict:
    results = ResultsFile.read(run_dir / "results.json")
    return {name: {k: v for k, v in s.model_dump().items()
                   if k not in ("train_seconds", "eval_seconds")}
            for name, s in results.systems.items()}


def test_run_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", str(scenario(tmp_path)), "--profile", "quick", "--out", str(out),
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    assert "tiny_cli: PSNR dB (CR)" in captured.out  # the summary table
    results = ResultsFile.read(out / "results.json")
    assert results.profile == "quick"
    assert results.scenario["train"]["steps"] == 3
    assert results.scenario["systems"][1]["params"]["shrink"] == 0.5
    assert json.loads((out / "checkpoints/a/toy_state.json").read_text())["step"] == 3
    assert results.systems["b"].cr == pytest.approx([0.4, 0.4], rel=1e-6)  # float32 CR
    report = (out / "report.md").read_text()
    assert "![samples_b](samples_b.png)" in report and "| a | toy |" in report
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header == ("system,type,steps_done,steps_planned,snr_db,psnr_db,psnr_ci95_db,"
                      "psnr_std_db,psnr_of_mean_mse_db,exact_images,ssim,ssim_ci95,ms_ssim,"
                      "ms_ssim_ci95,cr,n_images,failed,failure_rate,kept_symbols,target_cr")
    # a second run into the same directory is refused without --resume
    assert main(["run", str(scenario(tmp_path)), "--profile", "quick", "--out", str(out)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_interrupted_training_resumes_to_the_same_results(tmp_path, capsys):
    clean = tmp_path / "clean"
    assert main(["run", str(scenario(tmp_path)), "--out", str(clean), "--no-progress"]) == 0
    path = tmp_path / "interrupting.yaml"
    path.write_text(TINY.replace("INTERRUPT", "2"))
    # The toy raises KeyboardInterrupt after training step 2 unless resuming; its twin
    # runs the same scenario uninterrupted (--resume on an empty directory).
    twin = tmp_path / "twin"
    run = tmp_path / "run"
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(run), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert f"--out {run} --resume" in err
    state = json.loads((run / "checkpoints/a/toy_state.json").read_text())
    assert state["step"] == 2 and not (run / "results.json").exists()
    assert main(["run", str(path), "--out", str(run), "--resume", "--no-progress"]) == 0
    assert json.loads((run / "checkpoints/a/toy_state.json").read_text())["step"] == 5
    assert main(["run", str(path), "--out", str(twin), "--resume", "--no-progress"]) == 0
    assert numbers(run) == numbers(twin)
    assert numbers(run)["a"]["psnr_db"] == numbers(clean)["a"]["psnr_db"]


def test_eval_from_checkpoints_and_plot(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", str(scenario(tmp_path)), "--out", str(run), "--no-progress"]) == 0
    again = tmp_path / "again"
    assert main(["eval", str(scenario(tmp_path)), "--checkpoint", str(run), "--out", str(again),
                 "--no-progress"]) == 0
    assert numbers(again) == numbers(run)
    missing = tmp_path / "empty"
    missing.mkdir()
    capsys.readouterr()
    assert main(["eval", str(scenario(tmp_path)), "--checkpoint", str(missing),
                 "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "no checkpoint for system 'a'" in capsys.readouterr().err
    figures = tmp_path / "figures"
    assert main(["plot", str(run / "results.json"), "--out", str(figures)]) == 0
    for name in ("psnr_vs_snr.png", "psnr_vs_cr.png", "cr_vs_snr.png", "samples_a.png",
                 "report.md"):
        assert (figures / name).is_file(), name


def test_run_only_selected_systems(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(scenario(tmp_path)), "--out", str(out), "--systems", "a",
                 "--no-progress"]) == 0
    assert list(ResultsFile.read(out / "results.json").systems) == ["a"]
    assert main(["run", str(scenario(tmp_path)), "--out", str(tmp_path / "o2"),
                 "--systems", "b"]) == 2
    assert "'b' matches the CR of 'a'; select it too" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["a,,b", ","])
def test_bad_system_list_is_a_usage_error(tmp_path, bad):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(scenario(tmp_path)), "--systems", bad])
    assert exit_info.value.code == 2
