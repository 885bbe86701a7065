"""The second half of a run's validation history marks a system that was still learning
NOT converged, in ``results.json``, the report's training column and the plot legends."""

from __future__ import annotations

import csv
import json

import pytest

import semsim
from semsim.report.markdown import training_status
from semsim.report.plots import _label
from semsim.report.results import SystemResults
from semsim.systems.history import validation_curve, validation_trend

FIELDS = ["epoch", "loss", "step", "val_psnr_db"]


def write_history(path, rows):
    """``rows``: (step, val_psnr_db or "") in the order Keras' CSVLogger would append them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for epoch, (step, value) in enumerate(rows):
            writer.writerow([epoch, 0.01, step, value])


def one_point(**fields) -> SystemResults:
    return SystemResults(type="deepjscc", snr_db=[10.0], psnr_db=[20.0], psnr_ci95_db=[0.1],
                         psnr_std_db=[1.0], psnr_of_mean_mse_db=[20.0], exact_images=[0],
                         ssim=[0.5], ssim_ci95=[0.01], ms_ssim=[0.5], ms_ssim_ci95=[0.01],
                         cr=[0.1667], n_images=[4], **fields)


def test_a_resumed_epoch_counts_once_and_rows_without_validation_are_skipped(tmp_path):
    path = tmp_path / "history.csv"
    # 300 was cut by the budget (logged at 250) and re-logged by the resumed run; 400 has
    # no validation value (a run without validation images would leave it empty)
    write_history(path, [(100, 20.0), (200, 21.0), (250, 21.5), (300, 22.0), (400, ""),
                         (500, 22.5)])
    assert validation_curve(path) == [(100, 20.0), (200, 21.0), (250, 21.5), (300, 22.0),
                                      (500, 22.5)]
    write_history(path, [(100, 20.0), (200, 21.0), (200, 21.25)])
    assert validation_curve(path) == [(100, 20.0), (200, 21.25)]
    assert validation_curve(tmp_path / "missing.csv") == []


@pytest.mark.parametrize("rows, half, gain, rising", [
    # still learning: 23.1 dB at step 800 (the last row at or before 1600 / 2) -> 24.0
    ([(400, 21.0), (800, 23.1), (1200, 23.6), (1600, 24.0)], 800, 0.9, True),
    # flat: +0.1 dB over the second half
    ([(400, 21.0), (800, 23.9), (1200, 24.1), (1600, 24.0)], 800, 0.1, False),
    # no row exactly at the half: the last one before it (step 700 of 1500)
    ([(350, 21.0), (700, 22.0), (1050, 22.2), (1500, 22.3)], 700, 0.3, True),
    # a loss of PSNR over the second half is not "still rising"
    ([(500, 22.0), (1000, 21.5)], 500, -0.5, False),
])
def test_second_half_of_the_validation_history(tmp_path, rows, half, gain, rising):
    write_history(tmp_path / "history.csv", rows)
    trend = validation_trend(tmp_path)
    last_step, last = rows[-1]
    assert trend["stage"] == ""
    assert trend["steps"] == [half, last_step]
    assert trend["val_psnr_db"] == [dict(rows)[half], last]
    assert trend["gain_db"] == pytest.approx(gain, abs=1e-9)
    assert trend["rising"] is rising
    system = one_point(steps_done=last_step, steps_planned=last_step, weights="trained",
                       training_trend=trend)
    assert system.not_converged is rising
    assert _label("dj", system) == ("dj (not converged)" if rising else "dj")
    status = training_status(system)
    assert status.startswith(f"{last_step} steps, " + ("NOT converged: " if rising else "v"))
    assert f"{gain:+.2f} dB from step {half} to {last_step}" in status


def test_no_trend_without_two_validation_rows(tmp_path):
    write_history(tmp_path / "history.csv", [(500, 22.0)])
    assert validation_trend(tmp_path) is None
    write_history(tmp_path / "history.csv", [(500, ""), (1000, "")])
    assert validation_trend(tmp_path) is None
    assert validation_trend(tmp_path / "nothing here") is None


def test_a_staged_system_reports_the_stage_that_gained_most(tmp_path):
    write_history(tmp_path / "base" / "history.csv", [(500, 20.0), (1000, 20.1)])
    write_history(tmp_path / "adaptive" / "history.csv", [(100, 19.0), (200, 19.6)])
    trend = validation_trend(tmp_path)
    assert trend["stage"] == "adaptive" and trend["steps"] == [100, 200] and trend["rising"]
    status = training_status(one_point(steps_done=1200, steps_planned=1200, training_trend=trend))
    assert status == ("1200 steps, NOT converged: validation PSNR +0.60 dB from step 100 to "
                      "200 (second half of training, adaptive stage)")


TINY = """\
name: tiny_trend
description: tiny SISO AWGN scenario of the training-trend test
seed: 3
link: {nr: 1, nt: 1, fading: none, csi: perfect}
snr: {train_db: [0, 20], eval_db: [10]}
data: {source: builtin, image_size: 32, test_images: 4}
systems:
  - {name: deepjscc, type: deepjscc, params: {cr: 0.1667, filters: [4, 4, 4, 4]}}
train: {steps: 60, steps_per_epoch: 15, batch_size: 8, learning_rate: 0.003, jit_compile: false}
eval: {batch_size: 4, samples: 1}
"""


@pytest.mark.slow  # trains a tiny model for 60 steps
def test_a_run_reports_the_trend_of_what_it_trained(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    out = tmp_path / "run"
    results = semsim.run(path, out=out, progress=False)
    with (out / "checkpoints" / "deepjscc" / "history.csv").open(newline="") as handle:
        logged = {int(row["step"]): float(row["val_psnr_db"]) for row in csv.DictReader(handle)}
    assert sorted(logged) == [15, 30, 45, 60]  # one validation row per 15-step epoch
    gain = logged[60] - logged[30]
    assert gain >= 0.3  # 60 steps from scratch: still learning
    trend = results.systems["deepjscc"].training_trend
    assert trend["steps"] == [30, 60] and trend["rising"] is True
    assert trend["val_psnr_db"] == pytest.approx([logged[30], logged[60]], abs=1e-9)
    assert trend["gain_db"] == pytest.approx(gain, abs=1e-9)
    written = json.loads((out / "results.json").read_text())["systems"]["deepjscc"]
    assert written["training_trend"] == trend
    report = (out / "report.md").read_text()
    assert "**Not converged: deepjscc**" in report
    assert (f"| deepjscc | deepjscc | 60 steps, NOT converged: validation PSNR {gain:+.2f} dB "
            "from step 30 to 60 (second half of training) |") in report
