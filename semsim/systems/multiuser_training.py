"""Training schedule of the multi-user system (:mod:`semsim.systems.multiuser`): the
paper's staged schedule (stage lengths, frozen groups, learning rates, the Gumbel
temperature per epoch) and the policy warm-up, as Keras callbacks.

**Policy warm-up (an assumption beyond the paper).** Trained from scratch with the
policies live, P1 collapses to sending no map at all (CPP -> 0, the decoder stays at the
mean colour): the untrained decoder cannot use the symbols yet, so the straight-through
gradient only sees their noise and the rate term. Therefore, for the first
``policy_warmup`` fraction of the training steps (default 0.3) the policies do not decide
(no gradient reaches them): every image draws its number of maps uniformly from
``1..C/2`` pairs and its pruning ratio uniformly from ``ratios`` (seeded), so encoder and
decoder learn a code that works at every rate the policies can later choose (a decoder
that only ever saw all maps unpruned fails on the first pruned input, and the policies
then learn from its failure). P1's logit bias also starts as a ramp favouring more maps
(``policy_prior_slope``). Evaluation always uses the policies' decisions.

Staged schedule (``staged=True``; stage lengths are fractions of the run's epochs, so a
quick profile shortens every stage): all weights at ``stage_learning_rates[0]``, then
``[1]``; then ``[2]`` with the CNN encoding module and P2 frozen; then ``[3]`` with the
channel-adaptive encoding module and P1 frozen. The optimizer (Adam / AdamW, weight decay)
is the scenario's ``TrainSpec``.

**Gradients of the masks.** Both choices are hard one-hots in the forward pass with the
soft Gumbel-Softmax sample's gradient (straight-through). The sent values are
``x * m(P1) * sum_t y_t K_t`` with ``K_t`` the (constant) keep mask of ratio ``t``, so the
reconstruction loss reaches P2's choice ``y_t`` through ``<dLoss/dx_sent, x K_t>`` and P1's
through the thermometer code; the rate term (below) is linear in both choices. The PHY
forces unsent symbols (and so their gradients) to zero, which alone would tell a policy that
keeps fewer symbols nothing about what keeping more would bring, and P1 collapses to one or
two maps; in training the receiver therefore adds
:func:`~semsim.semantic.policy.mask_probe` (exactly zero forward): at pruned
positions the masks get the gradient of an error-free channel at the user's transmit scale.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from semsim.seeding import replica_rows
from semsim.semantic.policy import mask_probe, transmit_scale
from semsim.systems.multiuser_layers import GROUPS

if TYPE_CHECKING:
    from semsim.systems.multiuser import MultiUserSemCom


def probe_pruned(model: MultiUserSemCom, x_full, x_sent, mask):
    """Zero-valued term whose gradient tells P1/P2 what pruned values would bring
    (:func:`~semsim.semantic.policy.mask_probe`): ``x_full`` ``[B, K, P]`` the unmasked
    real values, ``x_sent`` the sent ones, ``mask`` their (straight-through) mask, all
    float32. The probe uses ``x_full`` at each user's power-normalization scale (as the
    PHY applies it to the ``ceil(kept / 2)`` complex symbols the kept reals form; a user
    that sends nothing gets the scale of sending everything, so that "nothing" is not a
    state without gradient)."""
    energy = tf.reduce_sum(tf.square(x_sent), axis=-1, keepdims=True)
    count = tf.math.ceil(tf.reduce_sum(tf.stop_gradient(mask), axis=-1, keepdims=True) / 2.0)
    scale = transmit_scale(energy, count,
                           tf.reduce_sum(tf.square(x_full), axis=-1, keepdims=True),
                           tf.math.ceil(tf.cast(tf.shape(x_full)[-1], tf.float32) / 2.0),
                           model.analog.symbol_energy)
    return mask_probe(x_full * scale, mask, pruned_only=True)


def pinned(model: MultiUserSemCom, decided, warmup):
    """The policy's decision ``decided``, or ``warmup`` while ``model.policy_on`` is 0
    (same shape); no gradient reaches the policy during the warm-up."""
    return model.policy_on * decided + (1.0 - model.policy_on) * warmup


def warmup_choice(model: MultiUserSemCom, batch, options: int, low: int = 0):
    """One-hot float32 ``[B, options]`` of a uniform draw from ``low..options-1`` per
    image (the warm-up's random decisions), from the model's ``warmup_seed``."""
    seed = tf.cast(model.warmup_seed.next(), tf.int32)
    draw = replica_rows(lambda rows: tf.random.stateless_uniform(
        tf.shape(rows), seed, low, options, dtype=tf.int32), tf.zeros([batch], tf.int32))
    return tf.one_hot(draw, options)


def stage_lengths(epochs: int, fractions: tuple[float, ...]) -> list[int]:
    """Epochs per stage for a run of ``epochs``: ``fractions * epochs`` rounded by largest
    remainder, then every stage with a nonzero fraction gets at least one epoch (taken from
    the longest stage) as long as ``epochs`` allows; the lengths sum to ``epochs``."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    exact = np.asarray(fractions, float) * epochs
    lengths = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - lengths), kind="stable")[: epochs - lengths.sum()]:
        lengths[i] += 1
    for i in np.flatnonzero(np.asarray(fractions) > 0):
        if lengths[i] == 0 and lengths.max() > 1:
            lengths[np.argmax(lengths)] -= 1
            lengths[i] = 1
    return lengths.tolist()


def stage_of_epoch(epoch: int, epochs: int, fractions: tuple[float, ...]) -> int:
    """Stage index (0..3) of ``epoch`` in a run of ``epochs`` (see :func:`stage_lengths`)."""
    bounds = np.cumsum(stage_lengths(epochs, fractions))
    return int(min(np.searchsorted(bounds, epoch, side="right"), len(fractions) - 1))


#: Groups frozen in each stage of the paper's schedule.
FROZEN_BY_STAGE: tuple[tuple[str, ...], ...] = ((), (), ("cnn", "p2"), ("adaptive", "p1"))


class StagedSchedule(keras.callbacks.Callback):
    """Per epoch: Gumbel temperature ``tau_init * exp(-tau_decay * epoch)``; with
    ``model.staged`` also the stage's learning rate and frozen groups (the train function
    is rebuilt when the trainable set changes). Restores all groups at the end of training."""

    def __init__(self, model: MultiUserSemCom):
        super().__init__()
        self._target = model
        self._frozen: tuple[str, ...] = ()

    def _set_frozen(self, frozen: tuple[str, ...]) -> bool:
        if frozen == self._frozen:
            return False
        for group in GROUPS:
            for layer in self._target.group_layers(group):
                layer.trainable = group not in frozen
        self._frozen = frozen
        return True

    def on_train_begin(self, logs=None):
        # Build the model and the optimizer on every weight before a stage freezes some.
        if not self._target.built:
            self._target.build()
        if not self._target.optimizer.built:
            self._target.optimizer.build(self._target.trainable_variables)

    def on_epoch_begin(self, epoch, logs=None):
        m = self._target
        m.temperature.assign(m.tau_init * math.exp(-m.tau_decay * epoch))
        if not m.staged:
            return
        stage = stage_of_epoch(epoch, self.params["epochs"], m.stage_fractions)
        m.optimizer.learning_rate = m.stage_learning_rates[stage]
        if self._set_frozen(FROZEN_BY_STAGE[stage]):
            m.make_train_function(force=True)

    def on_train_end(self, logs=None):
        self._set_frozen(())


def warmup_steps(total_steps: int, fraction: float) -> int:
    """Optimizer steps of the policy warm-up: ``ceil(fraction * total_steps)``."""
    return int(math.ceil(fraction * total_steps - 1e-9))


class PolicyWarmup(keras.callbacks.Callback):
    """Holds the policies off (``model.policy_on = 0``: random map counts and ratios, see
    :func:`warmup_choice`) for the first :func:`warmup_steps` optimizer steps of the run
    (counted by the optimizer's iterations, so a resumed run continues the same schedule),
    then lets the policies decide; the policies are on again after training (evaluation
    always uses them)."""

    def __init__(self, model: MultiUserSemCom):
        super().__init__()
        self._target = model

    def on_train_batch_begin(self, batch, logs=None):
        m = self._target
        total = self.params["epochs"] * self.params["steps"]
        # .numpy(): int() and float() of a mirrored variable fail under tf.distribute
        on = float(int(m.optimizer.iterations.numpy()) >= warmup_steps(total, m.policy_warmup))
        if float(m.policy_on.numpy()) != on:
            m.policy_on.assign(on)

    def on_train_end(self, logs=None):
        self._target.policy_on.assign(1.0)
