"""One call to make a run reproducible: Python, NumPy, TensorFlow/Keras and Sionna; and
the random-generator states a checkpoint must carry besides the weights.

Reproducibility rules (issue 16, section 6): every generator is seeded before a system is
built (initializers draw from the global generators) and before it trains; training's
random draws come from Sionna's generator (channel, noise, SwinJSCC's rate choice),
Keras seed generators (Gumbel noise) or stateless ops keyed on the seed and the batch
index (data, training SNRs); a checkpoint saves the states of the first two.

Under a multi-replica ``tf.distribute`` strategy (``train.distribute``), a Keras seed
generator's state is mirrored: it advances alike on every replica, so every replica holds
the same stateless seed. :func:`replica_rows` turns that into per-replica streams that
are the one-device stream split by rows (replica ``r`` keeps the rows of the global
batch's images it holds), so the Gumbel noise of a global batch is the same whatever the
replica count; :func:`first_replica` makes one draw per global step (SwinJSCC's rate)
common to all replicas. On one device both return what the draw alone would, so
single-device streams are bit for bit those of a run without a strategy.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import sionna.phy
import tensorflow as tf


def set_seed(seed: int) -> None:
    """Seed every random number generator semsim uses (Sionna's channel and noise
    generator included)."""
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    keras.utils.set_random_seed(int(seed))
    sionna.phy.config.seed = int(seed)


def sionna_rng_state():
    """Current state of Sionna's global generator (a copyable tensor)."""
    return sionna.phy.config.tf_rng.state.numpy()


def restore_sionna_rng_state(state) -> None:
    """Put Sionna's global generator back to a state from :func:`sionna_rng_state`."""
    sionna.phy.config.tf_rng.state.assign(state)


def _seed_generator_variables(model) -> list:
    """The state variables of every ``keras.random.SeedGenerator`` in ``model`` (Gumbel
    noise of the policies, ...), in the model's (deterministic) variable order."""
    return [v for v in model.variables if v.path.split("/")[-1] == "seed_generator_state"]


def seed_generator_states(model) -> np.ndarray:
    """States of the model's Keras seed generators, ``[n, 2]`` (``n`` may be 0). Keras's
    ``save_weights`` leaves them out, so a resumed run needs them saved beside it."""
    states = [np.asarray(v.numpy()) for v in _seed_generator_variables(model)]
    return np.stack(states) if states else np.zeros((0, 2), np.int64)


def restore_seed_generator_states(model, states: np.ndarray) -> None:
    """Put the model's seed generators back to states from :func:`seed_generator_states`."""
    variables = _seed_generator_variables(model)
    if len(variables) != len(states):
        raise ValueError(f"the checkpoint holds {len(states)} seed generator states, the model "
                         f"has {len(variables)} seed generators")
    for variable, state in zip(variables, states, strict=True):
        variable.assign(np.asarray(state).astype(variable.dtype))


def _replicas():
    """``(replica context, replica count)`` of the current context; ``(None, 1)`` in a
    cross-replica context (building a model under ``strategy.scope()``)."""
    context = tf.distribute.get_replica_context()
    return context, 1 if context is None else context.num_replicas_in_sync


def replica_rows(draw: Callable[[tf.Tensor], tf.Tensor], x: tf.Tensor) -> tf.Tensor:
    """``draw(x)`` for this replica's rows, as one device would draw them for the whole
    global batch.

    ``draw``: maps ``[n, ...]`` to ``[n, ...]`` with a seed every replica shares (a Keras
    ``SeedGenerator``'s next seed), row ``i`` of its output depending on row ``i`` of its
    input and on the seed and ``n`` only (a Gumbel-Softmax sample of per-image logits, a
    per-image integer draw). ``x``: this replica's ``[rows, ...]``. On one device:
    ``draw(x)``. Under ``R`` replicas (the global batch split into consecutive blocks
    of ``rows``, as ``tf.distribute`` splits it): ``draw`` of ``x`` tiled to ``R * rows``
    rows, of which replica ``r`` keeps rows ``r * rows`` to ``(r + 1) * rows - 1``, the
    rows one device would draw for those images. Gradients reach ``x`` through the kept
    rows only.
    """
    context, replicas = _replicas()
    if replicas == 1:
        return draw(x)
    rows = tf.shape(x)[0]
    tiles = tf.concat([[replicas], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0)
    start = tf.cast(context.replica_id_in_sync_group, tf.int32) * rows
    return draw(tf.tile(x, tiles))[start:start + rows]


def first_replica(value: tf.Tensor) -> tf.Tensor:
    """``value`` as replica 0 holds it, on every replica of a multi-replica strategy (an
    all-reduce sum of replica 0's value and the others' zeros, in float32, cast back);
    ``value`` itself on one device. For a draw that must be one per global step, not one
    per replica (a training rate chosen for the whole batch). Integer values must be
    exact in float32 (below 2**24)."""
    context, replicas = _replicas()
    if replicas == 1:
        return value
    mine = tf.cast(value, tf.float32) * tf.cast(
        tf.equal(context.replica_id_in_sync_group, 0), tf.float32)
    return tf.cast(context.all_reduce(tf.distribute.ReduceOp.SUM, mine), value.dtype)
