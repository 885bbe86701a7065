"""``train.distribute: mirrored`` on 2 logical CPU devices (a subprocess: the CPU must
be split before TensorFlow initializes): the same loss trajectory as one device with
the same global batch, reproducible for a given seed and replica count; Keras seed
generators' draws (Gumbel noise) equal to the one-device draws split by rows, and one
draw per step common to all replicas (SwinJSCC's rate)."""

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
    from semsim.systems.distribute import strategy_for
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

    def train(kind, stype=stype, params=params):
        strategy = strategy_for(kind)
        set_seed(1)
        with strategy.scope():
            system = stype.factory(params, LinkSpec(), (16, 16), 1)
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

    from semsim.seeding import first_replica, replica_rows
    from semsim.semantic.policy import CountPolicy, gumbel_softmax
    from semsim.systems.multiuser_layers import RatioPolicy

    rng = np.random.default_rng(3)
    features = rng.normal(size=(64, 6)).astype(np.float32)
    embedding = rng.normal(size=(64, 2)).astype(np.float32)

    class SoftGumbel(keras.layers.Layer):  # the continuous sample, before the hard choice
        def __init__(self):
            super().__init__()
            self.seed_generator = keras.random.SeedGenerator(11)
        def call(self, logits):
            seed = tf.cast(self.seed_generator.next(), tf.int32)
            return replica_rows(lambda rows: gumbel_softmax(rows, 5.0, seed, hard=False),
                                logits)

    def draws(kind):  # three training-mode calls on one global batch of 64 rows
        strategy = strategy_for(kind)
        with strategy.scope():
            soft, count = SoftGumbel(), CountPolicy(num_items=5, hidden_units=8, seed=7)
            ratio = RatioPolicy(num_ratios=4, hidden_units=8, seed=9)
            count(features[:2], embedding[:2])
            ratio(features[:2], embedding[:2], temperature=5.0)
            weights = np.random.default_rng(4)
            for variable in count.trainable_variables + ratio.trainable_variables:
                variable.assign(weights.normal(size=variable.shape).astype(np.float32))
        def step(f, e):
            logits = tf.concat([f, e], axis=-1)
            return (soft(logits), count(f, e, temperature=5.0, training=True)[0],
                    ratio(f, e, temperature=5.0, training=True))
        data = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((features, embedding)).batch(64))
        batch = next(iter(data))
        calls = []
        for _ in range(3):
            out = strategy.run(tf.function(step), args=batch)
            calls.append([np.concatenate([np.asarray(v) for v in
                                          strategy.experimental_local_results(o)]).tolist()
                          for o in out])
        return calls

    out["draws_none"], out["draws_mirrored"] = draws("none"), draws("mirrored")

    strategy = strategy_for("mirrored")
    def own_value():
        ctx = tf.distribute.get_replica_context()
        mine = tf.cast(ctx.replica_id_in_sync_group, tf.int64) + 5
        return mine, first_replica(mine)
    held, shared = strategy.run(tf.function(own_value))
    out["held"] = [int(v) for v in strategy.experimental_local_results(held)]
    out["shared"] = [int(v) for v in strategy.experimental_local_results(shared)]

    ref = get_system_type("reference")
    ref_params = ref.params(num_maps=4, encoder_dims=(8, 12), encoder_depths=(1, 2),
                            encoder_heads=(2, 2), decoder_dims=(12, 8), decoder_depths=(2, 1),
                            decoder_heads=(2, 2), window_size=2, channel_embed_dim=8,
                            entropy_embed_dim=8, hidden_units=16)
    out["reference_none"] = train("none", ref, ref_params)
    out["reference_mirrored"] = train("mirrored", ref, ref_params)
    out["reference_mirrored_again"] = train("mirrored", ref, ref_params)
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


def test_gumbel_noise_under_mirrored_is_the_one_device_noise_split_by_rows(runs):
    # Keras seed generators are mirrored; each replica keeps its rows of the draw one
    # device makes for the global batch (semsim.seeding.replica_rows). Three calls of a
    # soft Gumbel-Softmax sample, the reference system's CountPolicy and the multi-user
    # RatioPolicy on 64 rows split over 2 replicas equal the one-device calls: the soft
    # sample to float32 rounding (1e-6), the hard choices exactly.
    one, two = runs["draws_none"], runs["draws_mirrored"]
    assert len(one) == len(two) == 3
    for call_one, call_two in zip(one, two, strict=True):
        soft_one, soft_two = np.asarray(call_one[0]), np.asarray(call_two[0])
        assert soft_one.shape == (64, 8)
        np.testing.assert_allclose(soft_two, soft_one, atol=1e-6)
        for hard_one, hard_two in zip(call_one[1:], call_two[1:], strict=True):
            np.testing.assert_array_equal(hard_two, hard_one)
    # the draws do vary: between rows (not one noise for every image) and between calls
    soft = np.asarray(one[0][0])
    assert np.unique(soft.argmax(axis=1)).size > 3
    assert np.abs(np.asarray(one[1][0]) - soft).max() > 0.1
    counts = np.asarray(one[0][1]).sum(axis=1)
    assert np.unique(counts).size > 2


def test_first_replica_gives_every_replica_replica_zeros_value(runs):
    assert runs["held"] == [5, 6]  # each replica holds its own value
    assert runs["shared"] == [5, 5]


def test_reference_system_under_mirrored_follows_one_device(runs):
    # The reference system draws Gumbel noise (its policy) and channel noise. The Gumbel
    # noise is the one-device noise; the channel noise is drawn by the replicas one after
    # the other, so the trajectories are close, not equal. Tolerance 2 % relative
    # (measured: at most 0.59 %); the running mean of the losses falls by 12 % over the
    # 4 steps.
    one, two = runs["reference_none"], runs["reference_mirrored"]
    assert one["replicas"] == 1 and two["replicas"] == 2
    assert len(one["losses"]) == len(two["losses"]) == 4
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=2e-2)
    assert one["losses"][0] - one["losses"][-1] > 0.1 * one["losses"][0]
    assert runs["reference_mirrored_again"]["losses"] == two["losses"]


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


def test_xla_is_off_over_several_replicas_and_says_so(caplog):
    from semsim.systems.distribute import xla_under

    class Two:
        num_replicas_in_sync = 2

    class One:
        num_replicas_in_sync = 1

    with caplog.at_level("WARNING", logger="semsim"):
        assert xla_under(True, One(), "a") is True
        assert xla_under(False, Two(), "b") is False
        assert not caplog.records  # nothing to say: XLA as asked
        assert xla_under(True, Two(), "c") is False
    (record,) = caplog.records
    assert record.getMessage().startswith("c: trains without XLA")
    assert "over 2 replicas" in record.getMessage()


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
