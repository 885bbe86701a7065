"""``train.distribute: multi_worker`` (issue 15): two local worker processes, each
``semsim run`` of the same tiny ``deepjscc`` scenario with its own ``TF_CONFIG`` (a
two-worker cluster on free 127.0.0.1 ports), train synchronously
(:class:`tf.distribute.MultiWorkerMirroredStrategy`), against a single-process run
(``--distribute none``) of the same scenario, run at the same time.

Checked on values: both workers end with the same weights bit for bit (synchronous
all-reduce); the chief's training losses follow the single-process run with the same
global batch; the chief's run directory holds the final weights and a ``model.keras``
that reloads to them, and the other worker wrote only its own ``<out>-worker1``."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.comparable import weights_arrays

ROOT = Path(__file__).resolve().parents[2]
# Training SNR 40 dB: the channel noise (each worker draws its own, see
# semsim.systems.distribute) then changes the loss by far less than the tolerance, so
# the comparison with one process checks the data split and the gradient all-reduce.
SCENARIO = """\
name: multi_worker_tiny
description: tiny two-worker training scenario (tests/systems/test_distribute_multi_worker.py)
seed: 3
link: {nr: 1, nt: 1, fading: none, csi: perfect}
snr: {train_db: [40, 40], eval_db: [10]}
data: {source: builtin, image_size: 16, train_images: 8, test_images: 2}
systems:
  - {name: deepjscc, type: deepjscc, params: {cr: 0.1667, filters: [4, 4, 4, 4],
                                              kernel_size: 3, eval_batch_size: 2}}
train: {steps: 4, steps_per_epoch: 1, batch_size: 8, learning_rate: 0.01,
        jit_compile: false, distribute: multi_worker}
eval: {batch_size: 2, samples: 1}
"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _losses(run: Path) -> list[float]:
    with open(run / "checkpoints" / "deepjscc" / "history.csv", newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi_worker")
    scenario = tmp / "scenario.yaml"
    scenario.write_text(SCENARIO)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    base = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    base.pop("TF_CONFIG", None)
    command = [sys.executable, "-m", "semsim", "run", str(scenario), "--no-progress"]
    procs = {}
    for index in range(2):
        env = dict(base, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs[f"worker{index}"] = subprocess.Popen(
            command + ["--out", str(tmp / "run")], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
    procs["single"] = subprocess.Popen(
        command + ["--out", str(tmp / "single"), "--distribute", "none"], env=base,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        errors = {name: proc.communicate(timeout=300)[1] for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}: {errors[name][-3000:]}"
    return tmp


def test_both_workers_end_with_the_same_weights(runs):
    chief = weights_arrays(runs / "run" / "checkpoints" / "deepjscc" / "final.weights.h5")
    other = weights_arrays(runs / "run-worker1" / "checkpoints" / "deepjscc" / "final.weights.h5")
    assert sorted(chief) == sorted(other) and len(chief) > 20  # weights and optimizer state
    for key, value in chief.items():
        np.testing.assert_array_equal(other[key], value, err_msg=key)


def test_losses_follow_one_process_with_the_same_global_batch(runs):
    two, one = _losses(runs / "run"), _losses(runs / "single")
    assert len(two) == len(one) == 4  # one step per epoch: the loss of each step
    assert _losses(runs / "run-worker1") == two  # the logged loss is the all-reduced mean
    # The first step's loss (before any update) depends only on the data split and the
    # initial weights: 1e-3 relative (measured 4e-5: the workers draw their own noise,
    # of 40 dB). The next ones also on the all-reduced updates, which sum the gradients
    # in another order than one process; Adam's first steps, of size ~ lr whatever the
    # gradient's magnitude, grow such differences: 5e-3 relative (measured at most
    # 2.1e-3 by step 4). The steps see different images, whose losses differ by more
    # than 20 %, so a wrong split of the global batch (both workers on the same half, or
    # each on whole batches of its own) would show.
    np.testing.assert_allclose(two[0], one[0], rtol=1e-3)
    np.testing.assert_allclose(two, one, rtol=5e-3)
    assert all(np.isfinite(two))
    assert max(one) > 1.2 * min(one)


def test_chief_checkpoint_exists_and_reloads(runs):
    from semsim.systems.keras_export import load_exported

    workdir = runs / "run" / "checkpoints" / "deepjscc"
    assert json.loads((workdir / "final.json").read_text()) == {
        "steps_done": 4, "steps_planned": 4}
    model = load_exported(workdir / "model.keras")
    final = weights_arrays(workdir / "final.weights.h5")
    expected = [v for k, v in final.items() if not k.startswith("optimizer/")]
    assert len(final) > len(expected) > 0  # the optimizer's state is in the file too
    loaded = sorted(np.asarray(w).tobytes() for w in model.get_weights())
    assert loaded == sorted(v.tobytes() for v in expected)
    # the other worker wrote its own run directory, not the chief's
    assert not (runs / "run-worker1-worker1").exists()
    results = [json.loads((runs / r / "results.json").read_text())["systems"]["deepjscc"]
               for r in ("run", "run-worker1")]
    assert results[0]["psnr_db"] == results[1]["psnr_db"]
