"""Kill and resume under ``train.distribute: mirrored`` (issue 15): a run on 2 logical CPU
devices SIGKILLed in the middle of an epoch of training and resumed ends with exactly the
weights and results of an uninterrupted ``mirrored`` run of the same seed.

Child processes as in tests/scenario/test_kill_resume.py, each splitting the CPU into 2
logical devices before TensorFlow starts (``split_cpu``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.comparable import comparable_results, weights_arrays
from tests.scenario.test_kill_resume import CHILD

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """\
name: kill_mirrored
description: tiny kill-and-resume scenario under train.distribute mirrored
seed: 5
link: {nr: 2, nt: 2, fading: block, csi: {mode: ls, pilots: 2}, detector: lmmse}
snr: {train_db: [0, 20], eval_db: [10]}
data: {source: builtin, image_size: 16, train_images: 3, test_images: 8}
systems:
  - {name: deepjscc, type: deepjscc, params: {cr: 0.1667, filters: [4, 4, 4, 4],
                                              kernel_size: 3, eval_batch_size: 8}}
train: {steps: 10, steps_per_epoch: 5, batch_size: 8, jit_compile: false,
        distribute: mirrored}
eval: {batch_size: 8, samples: 1}
"""
#: Killed right after optimizer step 7, inside the second of two epochs of 5 steps.
KILL_STEP = 7
SPLIT = ("from semsim.systems.distribute import split_cpu, strategy_for\nsplit_cpu(2)\n"
         "assert strategy_for('mirrored').num_replicas_in_sync == 2\n")
# int() of a MirroredVariable fails: read the optimizer's step count as a tensor
ITERATIONS = "int(self.model.optimizer.iterations)"
assert ITERATIONS in CHILD
MIRRORED_CHILD = SPLIT + CHILD.replace(ITERATIONS, "int(self.model.optimizer.iterations.numpy())")


def _child(scenario: Path, out: Path, resume: bool, kill) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-c", MIRRORED_CHILD, str(scenario), str(out), "1" if resume else "0",
         json.dumps(list(kill) if kill else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)


def test_sigkill_mid_epoch_under_mirrored_then_resume_gives_the_uninterrupted_run(tmp_path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    clean = _child(scenario, tmp_path / "clean", resume=False, kill=None)
    assert clean.returncode == 0, clean.stderr[-3000:]
    run = tmp_path / "run"
    killed = _child(scenario, run, resume=False, kill=("train", "deepjscc", KILL_STEP))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    backup = json.loads((run / "checkpoints" / "deepjscc" / "backup" / "progress.json").read_text())
    assert backup["steps_done"] == 5  # the first epoch's backup; steps 6-7 are lost
    assert not (run / "checkpoints" / "deepjscc" / "final.weights.h5").exists()
    resumed = _child(scenario, run, resume=True, kill=None)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = weights_arrays(tmp_path / "clean" / "checkpoints" / "deepjscc" / "final.weights.h5")
    found = weights_arrays(run / "checkpoints" / "deepjscc" / "final.weights.h5")
    assert sorted(found) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(found[key], value, err_msg=key)
    assert comparable_results(run / "results.json") == comparable_results(
        tmp_path / "clean" / "results.json")
