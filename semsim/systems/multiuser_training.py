"""Training schedule of the multi-user system (:mod:`semsim.systems.multiuser`): the
paper's staged schedule (stage lengths, frozen groups, learning rates, the Gumbel
temperature per epoch) and the policy warm-up, as Keras callbacks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import keras
import numpy as np

from semsim.systems.multiuser_layers import GROUPS

if TYPE_CHECKING:
    from semsim.systems.multiuser import MultiUserSemCom

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
    """Pins P1 to "all maps" and P2 to "ratio 0" (``model.policy_on = 0``) for the first
    :func:`warmup_steps` optimizer steps of the run (counted by the optimizer's iterations,
    so a resumed run continues the same schedule), then lets the policies decide; the
    policies are on again after training (evaluation always uses them)."""

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
