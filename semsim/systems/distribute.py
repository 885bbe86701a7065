"""``train.distribute``: training a learned system on several devices with
``tf.distribute`` (TensorFlow's own engine; nothing home-made).

- ``none``: the default strategy (one device).
- ``mirrored``: :class:`tf.distribute.MirroredStrategy` over all local GPUs, or over
  the logical CPU devices when there is no GPU (:func:`split_cpu` makes N of them for
  tests; it must run before TensorFlow initializes its devices).
- ``multi_worker``: :class:`tf.distribute.MultiWorkerMirroredStrategy` over the
  workers listed in ``TF_CONFIG`` (one process per node, each with its own ``task``;
  :func:`tf_config` checks it), created before any other TensorFlow operation of the
  process (``semsim run`` does it first thing; TensorFlow refuses it later).

The scenario's ``train.batch_size`` stays the *global* batch: Keras ``fit`` splits each
batch over the replicas (per-replica batch = global / replicas, which must divide).
The model is built (the system factory), compiled and fitted under
``strategy.scope()``, so its variables are mirrored.

Random streams under a strategy: Sionna's global generator
(``sionna.phy.config.tf_rng``, channel and noise draws) lives on the first device and
the replicas draw from it one after the other within a step, so each replica gets its
own draws and a run is reproducible for a given seed and replica count (checked by
tests/systems/test_distribute.py). Keras ``SeedGenerator`` states (the Gumbel noise
and warm-up draws of the reference and multi-user policies) are mirrored and advance
alike on every replica; :func:`semsim.seeding.replica_rows` gives each replica its rows
of the draw one device would make for the global batch, so that noise does not depend
on the replica count. SwinJSCC's training rate, one per batch, is replica 0's draw on
every replica (:func:`semsim.seeding.first_replica`). Under ``multi_worker`` each
worker has its own Sionna generator, seeded from the scenario seed and the worker's rank
(:func:`worker_seed`), so the workers draw different channel noise.

XLA: Keras cannot compile a training step for several replicas (its variables live on
other devices than the step; keras-team/keras#19005), so under a multi-replica strategy a
system trains without XLA whatever ``train.jit_compile`` says, with a warning naming it
(:func:`xla_under`).

Gradients: Keras's optimizer *sums* the replicas' gradients, so a model's loss (the mean
over its per-replica batch) is divided by the replica count (:func:`replica_loss`),
which makes the update that of the mean over the global batch.

Several workers (``multi_worker``), two Keras 3.15 bugs worked around here:

- ``fit`` first reduces one distributed input batch with ``strategy.reduce`` to build
  the model symbolically; the multi-worker strategy cannot reduce a nest (semsim's
  inputs are a dict), which fails with "Attempt to convert a value ({'image':
  PerReplica...}) ... to a Tensor" (keras-team/keras#20329). semsim builds the model and
  its optimizer itself, so :func:`skip_symbolic_build` lets ``fit`` skip that step.
- ``fit`` reduces every output of a training step with ``strategy.reduce("MEAN", v,
  axis=0)``, which fails on scalars ("Invalid reduction dimension 0 for input with 0
  dimensions", tensorflow/tensorflow#72388); :func:`step_outputs` gives each scalar a
  leading axis of length 1, over which that reduction averages all replicas.

Files: each worker trains in its own directory (:func:`worker_suffix`): the chief (rank
0) writes the run directory, worker ``r`` writes ``<run directory>-worker<r>`` (its own
backups, so that every worker can resume from its own; the weights are the same on
every worker).
"""

from __future__ import annotations

import functools
import json
import logging
import os

import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

DISTRIBUTE = ("none", "mirrored", "multi_worker")

#: Jobs of ``TF_CONFIG`` whose tasks train (a ``chief`` is rank 0, then the ``worker``\ s).
TRAINING_JOBS = ("chief", "worker")


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
        tf_config()
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as err:  # "Collective ops must be configured at program startup"
            raise ValueError(f"train.distribute: multi_worker: TensorFlow refuses the strategy "
                             f"({err}): it must be created before any other TensorFlow "
                             "operation of the process") from None
    raise ValueError(f"train.distribute must be one of {', '.join(DISTRIBUTE)}, got {kind!r}")


def xla_under(jit_compile: bool, strategy: tf.distribute.Strategy, system: str) -> bool:
    """The ``jit_compile`` that ``system``'s training step can use under ``strategy``:
    ``jit_compile`` on one replica; ``False`` with several, with a warning on the
    ``semsim`` logger when ``jit_compile`` asked for XLA (Keras's XLA step fails there with
    "Trying to access resource ... located in device", keras-team/keras#19005)."""
    replicas = strategy.num_replicas_in_sync
    if not jit_compile or replicas == 1:
        return jit_compile
    logger.warning("%s: trains without XLA: train.jit_compile is ignored over %d replicas "
                   "(Keras cannot compile a step for several devices, keras-team/keras#19005)",
                   system, replicas)
    return False


def check_batch(batch_size: int, users: int, strategy: tf.distribute.Strategy) -> None:
    """With several replicas, the global batch must split into per-replica batches that
    are multiples of ``users`` (one link carries ``users`` images)."""
    replicas = strategy.num_replicas_in_sync
    if replicas > 1 and batch_size % (replicas * users):
        raise ValueError(f"train.batch_size ({batch_size}) must be a multiple of replicas "
                         f"({replicas}) x link.users ({users}) under train.distribute")


def tf_config() -> dict:
    """The ``TF_CONFIG`` of this process, checked: a JSON object with ``cluster`` (job
    name -> list of ``"host:port"``, at least two tasks in :data:`TRAINING_JOBS`) and
    ``task`` (``{"type": job, "index": i}`` naming one of them). ``ValueError`` (one
    line) otherwise."""
    text = os.environ.get("TF_CONFIG")
    where = "train.distribute: multi_worker needs TF_CONFIG"
    if not text:
        raise ValueError(f"{where} (the cluster and this worker's task), which is not set")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where} to be JSON: {err}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not all(
            isinstance(v, list) and all(isinstance(a, str) for a in v) for v in cluster.values()):
        raise ValueError(f'{where}["cluster"] to map job names to lists of "host:port"')
    tasks = sum(len(cluster.get(job, [])) for job in TRAINING_JOBS)
    if tasks < 2:
        raise ValueError(f"{where} to list at least 2 tasks in {' and '.join(TRAINING_JOBS)} "
                         f"(has {tasks}); on one machine use mirrored")
    if (not isinstance(task, dict) or task.get("type") not in TRAINING_JOBS
            or not isinstance(task.get("index"), int)
            or not 0 <= task["index"] < len(cluster.get(task["type"], []))):
        raise ValueError(f'{where}["task"] to name one of its tasks, e.g. {{"type": "worker", '
                         f'"index": 0}}, got {task!r}')
    return config


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` spans several worker processes."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(cluster.get(job, [])) for job in TRAINING_JOBS) > 1


def worker_rank(strategy: tf.distribute.Strategy) -> int:
    """This worker's rank: 0 for the chief (the ``chief`` task, else ``worker`` 0) and
    for any single-process strategy, then 1, 2, ... for the other workers."""
    if not is_multi_worker(strategy):
        return 0
    resolver = strategy.cluster_resolver
    has_chief = bool(resolver.cluster_spec().as_dict().get("chief"))
    if resolver.task_type == "chief":
        return 0
    return int(resolver.task_id) + int(has_chief)


def worker_suffix(strategy: tf.distribute.Strategy) -> str:
    """Suffix of this worker's run directory: ``""`` for the chief, ``"-worker<r>"``
    for the others."""
    rank = worker_rank(strategy)
    return f"-worker{rank}" if rank else ""


def worker_seed(seed: int, strategy: tf.distribute.Strategy) -> int:
    """The seed of this worker's Sionna generator: ``seed`` on the chief, a 31-bit seed
    derived from ``(seed, rank)`` on the other workers."""
    rank = worker_rank(strategy)
    if not rank:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), rank]).generate_state(1)[0] % (2**31 - 1))


def replica_loss(loss: tf.Tensor) -> tf.Tensor:
    """``loss`` (a replica's mean over its per-replica batch) divided by the replica
    count, for the optimizer's sum of the replicas' gradients; unchanged on one replica."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss / replicas


def step_outputs(outputs: dict) -> dict:
    """A training or test step's scalar outputs as ``fit`` can reduce them: each given
    a leading axis of length 1 under a multi-worker strategy (see the module
    docstring), unchanged otherwise."""
    if not is_multi_worker(tf.distribute.get_strategy()):
        return outputs
    return {key: tf.reshape(value, [1]) if value.shape.rank == 0 else value
            for key, value in outputs.items()}


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with the ``DATA`` auto-shard policy under a multi-worker strategy
    (each worker computes the whole stream and keeps its share of every global batch;
    semsim's streams are generated, not read from files), unchanged otherwise."""
    if not is_multi_worker(tf.distribute.get_strategy()):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def skip_symbolic_build(model) -> None:
    """Under a multi-worker strategy (the current one), build ``model``'s optimizer and
    let Keras ``fit`` skip its symbolic build (keras-team/keras#20329, see the module
    docstring): ``model`` then trains under the strategy of the enclosing
    ``strategy.scope()``, which must be the one its variables were created under."""
    strategy = tf.distribute.get_strategy()
    if not is_multi_worker(strategy):
        return
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    # Keras's trainer reads this attribute to decide on the symbolic build; when it is
    # None, fit uses tf.distribute.get_strategy(), the enclosing scope's strategy.
    model._distribute_strategy = None
