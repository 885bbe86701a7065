"""``train.distribute``: training a learned system on several devices with
``tf.distribute`` (TensorFlow's own engine; nothing home-made).

- ``none``: the default strategy (one device).
- ``mirrored``: :class:`tf.distribute.MirroredStrategy` over all local GPUs, or over
  the logical CPU devices when there is no GPU (:func:`split_cpu` makes N of them for
  tests; it must run before TensorFlow initializes its devices).
- ``multi_worker``: refused for now with a one-line error (:data:`MULTI_WORKER_REFUSAL`):
  with two local workers (``TF_CONFIG`` on 127.0.0.1 ports,
  :class:`tf.distribute.MultiWorkerMirroredStrategy` created first thing), Keras
  3.15's ``fit`` of a semsim model failed converting the distributed input dict
  (``PerReplica``) to a tensor. Several nodes can split evaluation with ``--shard``.

The scenario's ``train.batch_size`` stays the *global* batch: Keras ``fit`` splits each
batch over the replicas (per-replica batch = global / replicas, which must divide).
The model is built (the system factory), compiled and fitted under
``strategy.scope()``, so its variables are mirrored.

Random streams under a strategy: Sionna's global generator
(``sionna.phy.config.tf_rng``, channel and noise draws) lives on the first device and
the replicas draw from it one after the other within a step, so each replica gets its
own draws and a run is reproducible for a given seed and replica count (checked by
tests/systems/test_distribute.py). Keras ``SeedGenerator`` states (the Gumbel noise
of the reference and multi-user policies) are mirrored, so every replica would draw
the *same* noise: systems holding one are refused (:func:`check_distributable`), as
is ``swinjscc``, which draws its training rate once per replica.
"""

from __future__ import annotations

import functools

import tensorflow as tf

DISTRIBUTE = ("none", "mirrored", "multi_worker")

MULTI_WORKER_REFUSAL = (
    "train.distribute: multi_worker is not supported yet (Keras fit of semsim's models "
    "fails on the distributed input dicts under MultiWorkerMirroredStrategy); use "
    "mirrored on one machine, or split the evaluation over nodes with --shard")

#: System types refused under a strategy, with the reason.
UNSUPPORTED = {
    "swinjscc": "it draws its training rate with tf.random.uniform once per replica, so "
                "replicas would train at different rates in one step",
}


def split_cpu(count: int) -> None:
    """Split the first CPU into ``count`` logical devices (tests of ``mirrored`` on a
    CPU-only machine). Must run before TensorFlow initializes its devices."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


@functools.cache
def strategy_for(kind: str) -> tf.distribute.Strategy:
    """The strategy of ``train.distribute`` (one per process and kind)."""
    if kind == "none":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if kind == "multi_worker":
        raise ValueError(MULTI_WORKER_REFUSAL)
    raise ValueError(f"train.distribute must be one of {', '.join(DISTRIBUTE)}, got {kind!r}")


def check_distributable(type_name: str, model, strategy: tf.distribute.Strategy) -> None:
    """Raise ``ValueError`` (one line, naming the system type) when ``model`` cannot be
    trained correctly under ``strategy`` (more than one replica)."""
    if strategy.num_replicas_in_sync <= 1:
        return
    if type_name in UNSUPPORTED:
        raise ValueError(f"train.distribute: system type {type_name!r} is not supported under "
                         f"a multi-replica strategy: {UNSUPPORTED[type_name]}; use "
                         "train.distribute: none")
    if any("seed_generator_state" in v.path for v in model.variables):
        raise ValueError(f"train.distribute: system type {type_name!r} draws noise from a Keras "
                         "SeedGenerator, whose state is mirrored (every replica would draw the "
                         "same Gumbel noise); use train.distribute: none")


def check_batch(batch_size: int, users: int, strategy: tf.distribute.Strategy) -> None:
    """With several replicas, the global batch must split into per-replica batches that
    are multiples of ``users`` (one link carries ``users`` images)."""
    replicas = strategy.num_replicas_in_sync
    if replicas > 1 and batch_size % (replicas * users):
        raise ValueError(f"train.batch_size ({batch_size}) must be a multiple of replicas "
                         f"({replicas}) x link.users ({users}) under train.distribute")
