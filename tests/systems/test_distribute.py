"""``train.distribute: mirrored`` on 2 logical CPU devices (a subprocess: the CPU must
be split before TensorFlow initializes): the same loss trajectory as one device with
the same global batch, reproducible for a given seed and replica count, and the
refusal of systems whose random streams are not per-replica."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, sys, tempfile
    from semsim.systems.distribute import split_cpu
    split_cpu(2)
    import keras, numpy as np, tensorflow as tf
    from semsim.seeding import set_seed
    from semsim.systems.base import LinkSpec, TrainSpec
    from semsim.systems.distribute import check_distributable, strategy_for
    from semsim.systems.registry import get_system_type

    stype = get_system_type("deepjscc")
    params = stype.params(filters=(4, 4, 4, 4), kernel_size=3, cr=1 / 6)
    images = np.random.default_rng(0).random((32, 16, 16, 3)).astype(np.float32)
    spec = TrainSpec(steps=4, steps_per_epoch=4, batch_size=8, learning_rate=3e-2, seed=1,
                     jit_compile=False)

    class Losses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.values = []
        def on_train_batch_end(self, batch, logs=None):
            self.values.append(float(logs["loss"]))

    def train(kind):
        strategy = strategy_for(kind)
        set_seed(1)
        with strategy.scope():
            system = stype.factory(params, LinkSpec(), (16, 16), 1)
        check_distributable("deepjscc", system.model, strategy)
        losses = Losses()
        system.verbose = 0
        system.callbacks.append(losses)
        set_seed(1)
        with strategy.scope():
            system.prepare(tf.data.Dataset.from_tensor_slices(images).batch(8), spec,
                           tempfile.mkdtemp(), False)
        mirrored = type(system.model.weights[0].value).__name__
        return {"losses": losses.values, "replicas": strategy.num_replicas_in_sync,
                "variable": mirrored}

    out = {"none": train("none"), "mirrored": train("mirrored"),
           "mirrored_again": train("mirrored")}

    class Noisy(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.seed_generator = keras.random.SeedGenerator(1)
        def call(self, x):
            return x + keras.random.normal(tf.shape(x), seed=self.seed_generator)

    with strategy_for("mirrored").scope():
        model = keras.Sequential([keras.Input((2,)), Noisy()])
    try:
        check_distributable("reference", model, strategy_for("mirrored"))
        out["refused"] = None
    except ValueError as err:
        out["refused"] = str(err)
    print("RESULT" + json.dumps(out))
""")


@pytest.fixture(scope="module")
def runs():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[0].removeprefix("RESULT"))


def test_mirrored_matches_one_device_with_the_same_global_batch(runs):
    one, two = runs["none"], runs["mirrored"]
    assert one["replicas"] == 1 and two["replicas"] == 2
    assert two["variable"] == "MirroredVariable"  # the weights live on both replicas
    assert len(one["losses"]) == len(two["losses"]) == 4
    # Tolerance: the replicas draw the channel noise of their half-batches one after
    # the other (not as one draw) and reduce the gradients in another order, so the
    # trajectories agree to 0.3 % relative (measured: at most 0.1 %); Keras logs the
    # running mean of the epoch's losses, which moves by more than 2 % over the 4 steps
    # (measured 2.9 %), so a broken replica split would show.
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=3e-3)
    assert one["losses"][0] - one["losses"][-1] > 0.02 * one["losses"][0]


def test_mirrored_is_reproducible_for_a_seed_and_replica_count(runs):
    assert runs["mirrored_again"]["losses"] == runs["mirrored"]["losses"]


def test_seed_generator_systems_are_refused_by_name(runs):
    assert runs["refused"] is not None
    assert "'reference'" in runs["refused"] and "SeedGenerator" in runs["refused"]


def test_global_batch_must_split_into_whole_links_per_replica():
    from semsim.systems.distribute import check_batch

    class Two:
        num_replicas_in_sync = 2

    class One:
        num_replicas_in_sync = 1

    check_batch(8, 2, Two())  # 2 replicas x 2 links of 2 users
    with pytest.raises(ValueError, match=r"multiple of replicas \(2\) x link.users \(2\)"):
        check_batch(6, 2, Two())
    check_batch(7, 2, One())  # one device: nothing to split


CLUSTER = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}


@pytest.mark.parametrize("config, message", [
    (None, "TF_CONFIG .* which is not set"),
    ("{cluster", "TF_CONFIG to be JSON"),
    (json.dumps({"cluster": {"worker": "127.0.0.1:1"}, "task": {}}), "lists of \"host:port\""),
    (json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}),
     r"at least 2 tasks in chief and worker \(has 1\)"),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}), "to name one of"),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "ps", "index": 0}}), "to name one of"),
])
def test_multi_worker_needs_a_valid_tf_config(monkeypatch, config, message):
    from semsim.systems.distribute import strategy_for

    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(ValueError, match=f"^train.distribute: multi_worker needs .*{message}"):
        strategy_for("multi_worker")


def test_multi_worker_after_tensorflow_started_is_refused_with_tensorflows_reason(monkeypatch):
    import tensorflow as tf

    from semsim.systems.distribute import strategy_for

    tf.constant(1.0) + 1.0  # TensorFlow has started in this process
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": CLUSTER, "task": {"type": "worker", "index": 0}}))
    with pytest.raises(ValueError, match="TensorFlow refuses the strategy .Collective ops must "
                                         "be configured at program startup.: it must be created "
                                         "before any other TensorFlow operation"):
        strategy_for("multi_worker")
