"""Kill and resume (issue 12): a run killed with SIGKILL at any point of training (mid-epoch)
or evaluation and continued with ``resume=True`` ends with exactly the results and weights
of an uninterrupted run of the same seed, for every learned system type.

Each scenario runs once uninterrupted (a child process, beside the others), and in another
run directory a chain of child processes each SIGKILLs itself at a chosen point (an
optimizer step inside an epoch of one system's training, or an evaluation batch of
another) and the next one resumes; a final child resumes to the end. Weights (every array
of ``final.weights.h5``) and ``results.json`` (without wall-clock fields) must be
identical. Before the fix the
multi-user system and the reference system resumed with their Gumbel noise generators
(Keras seed generators, not saved by ``save_weights``) back at their initial state, and
SwinJSCC with its rate choice restarted, so the resumed runs differed.
"""

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

pytestmark = pytest.mark.slow

TRAIN = ("train: {steps: 24, steps_per_epoch: 5, batch_size: 8, jit_compile: false}\n"
         "eval: {batch_size: 8, samples: 1}\n")
HEADER = """\
name: kill
description: tiny kill-and-resume scenario
seed: 4
snr: {train_db: [0, 20], eval_db: [5, 15]}
data: {source: builtin, image_size: 16, train_images: 3, test_images: 16}
"""
SWIN = ("encoder_dims: [16, 16], encoder_depths: [1, 1], encoder_heads: [1, 1], "
        "decoder_dims: [16, 16], decoder_depths: [1, 1], decoder_heads: [1, 1]")
SCENARIOS = {
    "multi_user": HEADER + """\
link: {nr: 4, users: 2, antennas_per_user: 1, fading: block, csi: {mode: ls, pilots: 2},
       detector: lmmse}
systems:
  - {name: deepjscc, type: deepjscc, params: {cr: 0.1667, filters: [8, 8, 8, 8],
                                              eval_batch_size: 8}}
  - {name: multiuser, type: multiuser,
     params: {num_maps: 4, filters: [8, 8, 8], policy_units: 8, num_heads: 1, staged: true,
              share_weights: true, eval_batch_size: 8}}
""" + TRAIN,
    "single_user": HEADER + f"""\
link: {{nr: 2, nt: 2, fading: block, csi: {{mode: ls, pilots: 2}}, detector: lmmse}}
systems:
  - {{name: reference, type: reference,
     params: {{num_maps: 4, {SWIN}, channel_embed_dim: 8, entropy_embed_dim: 8,
              hidden_units: 8, temperature_anneal_steps: 10, compensation: none}}}}
  - {{name: swinjscc, type: swinjscc,
     params: {{{SWIN}, channels: 8, rates: [2, 4, 8], hidden: 8, eval_batch_size: 8}}}}
  - {{name: adjscc, type: adjscc, params: {{cr: 0.1667, filters: [8, 8, 8, 8],
                                          eval_batch_size: 8}}}}
""" + TRAIN,
}
SYSTEMS = {"multi_user": ("deepjscc", "multiuser"),
           "single_user": ("reference", "swinjscc", "adjscc")}
#: Kill points per scenario: ("train", system, optimizer step) kills right after that
#: step (steps 7 and 13 are inside the second and third epochs of 5 steps);
#: ("eval", system, SNR index, batch) after that evaluation batch.
KILLS = {
    "multi_user": [("train", "deepjscc", 7), ("train", "multiuser", 13),
                   ("eval", "multiuser", 1, 0)],
    "single_user": [("train", "reference", 7), ("train", "swinjscc", 13),
                    ("eval", "adjscc", 1, 1)],
}

CHILD = """
import json, os, signal, sys
import keras
from semsim.scenario.loader import load_scenario
from semsim.scenario.runner import RunOptions, run_scenario
from semsim.systems.keras_system import KerasSystem

scenario, out, resume, kill = sys.argv[1], sys.argv[2], sys.argv[3] == "1", json.loads(sys.argv[4])


class KillAfterStep(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == kill[2]:
            os.kill(os.getpid(), signal.SIGKILL)


prepare = KerasSystem.prepare


def prepare_with_kill(self, train_data, train, workdir, resume):
    if kill and kill[0] == "train" and workdir.name == kill[1]:
        self.callbacks.append(KillAfterStep())
    return prepare(self, train_data, train, workdir, resume)


KerasSystem.prepare = prepare_with_kill


def on_event(kind, info):
    if kill and kill[0] == "eval" and kind == "eval_batch" and \\
            [info["system"], info["snr_index"], info["batch"]] == kill[1:]:
        os.kill(os.getpid(), signal.SIGKILL)


run_scenario(load_scenario(scenario), RunOptions(out_dir=out, resume=resume, progress=False,
                                                 on_event=on_event))
"""


def _start(scenario: Path, out: Path, resume: bool, kill) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2]),
                                           os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(scenario), str(out), "1" if resume else "0",
         json.dumps(list(kill) if kill else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    _, stderr = process.communicate(timeout=900)
    return subprocess.CompletedProcess(process.args, process.returncode, None, stderr)


def _child(scenario: Path, out: Path, resume: bool, kill) -> subprocess.CompletedProcess:
    return _finish(_start(scenario, out, resume, kill))



@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sigkill_anywhere_then_resume_gives_the_uninterrupted_results(tmp_path, name):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIOS[name])
    # The uninterrupted run goes on beside the chain of killed ones (its own directory).
    uninterrupted = _start(scenario, tmp_path / "clean", resume=False, kill=None)
    try:
        run = tmp_path / "run"
        for i, kill in enumerate(KILLS[name]):
            killed = _child(scenario, run, resume=i > 0, kill=kill)
            assert killed.returncode == -signal.SIGKILL, \
                f"{kill}: exit {killed.returncode}, not killed\n{killed.stderr[-3000:]}"
            assert not (run / "results.json").exists()
        if name == "multi_user":  # the first kill was mid-epoch: a backup exists, no final
            assert (run / "checkpoints" / "deepjscc" / "final.weights.h5").exists()
            assert not (run / "eval" / "multiuser" / "snr_01.npz").exists()
        resumed = _child(scenario, run, resume=True, kill=None)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        clean = _finish(uninterrupted)
        assert clean.returncode == 0, clean.stderr[-3000:]
    finally:
        if uninterrupted.poll() is None:  # a failed assertion above: leave no process
            uninterrupted.kill()
            uninterrupted.wait()
    for system in SYSTEMS[name]:
        expected = weights_arrays(tmp_path / "clean" / "checkpoints" / system / "final.weights.h5")
        found = weights_arrays(run / "checkpoints" / system / "final.weights.h5")
        assert sorted(found) == sorted(expected)
        for key, value in expected.items():
            np.testing.assert_array_equal(found[key], value, err_msg=f"{system}: {key}")
    assert comparable_results(run / "results.json") == comparable_results(tmp_path / "clean" / "results.json")
