"""Learned "how many to keep" decisions: Gumbel-Softmax policies and thermometer masks.

A policy chooses a count ``k`` in ``{0, ..., K}`` (e.g. how many of ``K`` feature maps or
symbols to keep). It outputs ``K + 1`` logits; the choice is a one-hot vector ``y``
``[B, K + 1]`` and the corresponding prefix mask ``[1]*k + [0]*(K - k)`` is its
*thermometer code* (:func:`thermometer_code`), which is linear in ``y`` and so passes
gradients back to the logits.

* Training: ``y`` is a Gumbel-Softmax (relaxed one-hot, ``tfp.distributions.
  RelaxedOneHotCategorical``) sample at temperature ``tau``, made hard with the
  straight-through estimator (forward: exact one-hot of the sample's argmax; backward: the
  gradient of the soft sample).
* Evaluation: ``y = one_hot(argmax(logits))``, deterministic, no noise.

``tau`` is set during training by :class:`TemperatureAnnealing` following
:func:`annealed_temperature`: constant (the reference paper's tau = 5) or, as an option,
annealed exponentially or linearly.
"""

from __future__ import annotations

import math
import typing

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from semsim.phy.utils import sqrt_ratio_or_zero
from semsim.seeding import replica_rows
from semsim.systems.params import Schedule

SCHEDULES: tuple[str, ...] = typing.get_args(Schedule)


def thermometer_code(one_hot: tf.Tensor) -> tf.Tensor:
    """Prefix mask from a (possibly relaxed) one-hot count.

    ``one_hot`` ``[..., K + 1]`` float32 over counts ``0..K`` -> ``[..., K]`` float32 with
    ``mask[i] = sum_{k > i} one_hot[k]``; for an exact one-hot at count ``k`` this is ``k``
    ones followed by ``K - k`` zeros. Linear in ``one_hot`` (gradients pass through).
    """
    return tf.cumsum(one_hot, axis=-1, reverse=True)[..., 1:]


def mask_probe(symbols: tf.Tensor, mask: tf.Tensor, pruned_only: bool = True) -> tf.Tensor:
    """Straight-through path for a mask's gradient; exactly zero forward.

    A PHY that forces unsent entries (and so their gradients) to zero leaves the loss with
    no information on whether keeping one more map or symbol would help. Added to the
    receiver's symbols, this term makes ``d loss / d mask`` equal ``symbols * d loss /
    d received``, i.e. as if the symbol had been received error-free at the transmit
    scale: at pruned positions (``mask == 0``) only with ``pruned_only`` (the masks'
    gradient at sent positions then comes through the channel), at every position
    otherwise (for a system whose channel path carries no mask gradient).

    ``symbols``: float32 or complex64 (the unmasked symbols at the transmit scale);
    ``mask``: float32 0/1 with straight-through gradients, same shape. Returns
    ``symbols``' dtype and shape, all zeros; only ``mask`` receives gradients.
    """
    symbols = tf.stop_gradient(symbols)
    weight = tf.cast(mask, symbols.dtype)
    probe = symbols * (weight - tf.stop_gradient(weight))
    if not pruned_only:
        return probe
    return tf.cast(1.0 - tf.stop_gradient(mask), symbols.dtype) * probe


def transmit_scale(
    sent_energy: tf.Tensor, sent_symbols: tf.Tensor, full_energy: tf.Tensor,
    full_symbols: float | tf.Tensor, symbol_energy: float,
) -> tf.Tensor:
    """The per-image factor of the PHY's power normalization, ``sqrt(n Es / E)``, for the
    probes of :func:`mask_probe`: ``sent_energy`` (sum of squared sent reals) and
    ``sent_symbols`` (complex symbols sent), float32, same shape. Where nothing is sent,
    the factor that sending everything (``full_energy``, ``full_symbols``) would get, so
    that "send nothing" is not a state without gradient: a zero scale would zero every
    probe, and a policy that reached "nothing" could never leave it. Gradients are finite
    everywhere: a branch that ``tf.where`` discards never divides by, nor takes the root
    of, zero (its 0 x inf would be NaN and reach every weight)."""
    full_symbols = tf.broadcast_to(tf.cast(full_symbols, tf.float32), tf.shape(full_energy))
    return tf.where(sent_symbols > 0,
                    sqrt_ratio_or_zero(sent_symbols * symbol_energy, sent_energy),
                    sqrt_ratio_or_zero(full_symbols * symbol_energy, full_energy))


def gumbel_softmax(
    logits: tf.Tensor, temperature: tf.Tensor | float, seed: tf.Tensor, hard: bool = True
) -> tf.Tensor:
    """Gumbel-Softmax sample ``[B, K + 1]`` from ``logits`` ``[B, K + 1]`` (float32).

    ``seed``: stateless seed, int32 ``[2]`` (e.g. from a ``keras.random.SeedGenerator``).
    With ``hard`` the result is an exact one-hot of the sample's argmax in the forward pass
    and carries the soft sample's gradient (straight-through).
    """
    soft = tfp.distributions.RelaxedOneHotCategorical(temperature, logits=logits).sample(seed=seed)
    if not hard:
        return soft
    hard_sample = tf.one_hot(tf.argmax(soft, axis=-1), logits.shape[-1], dtype=soft.dtype)
    return soft + tf.stop_gradient(hard_sample - soft)


def gumbel_choice(logits: tf.Tensor, temperature, seed_generator) -> tf.Tensor:
    """A policy's training-mode choice: the hard Gumbel-Softmax sample of ``logits``
    ``[B, K]`` (float32) at ``temperature`` (cast to float32), seeded by the next seed of
    ``seed_generator`` (a ``keras.random.SeedGenerator``), each replica of a strategy
    keeping its rows of the one-device draw (:func:`semsim.seeding.replica_rows`)."""
    seed = tf.cast(seed_generator.next(), tf.int32)
    temperature = tf.cast(temperature, tf.float32)
    return replica_rows(lambda rows: gumbel_softmax(rows, temperature, seed), logits)


def annealed_temperature(
    step: int | tf.Tensor,
    initial: float,
    final: float,
    anneal_steps: int,
    schedule: Schedule = "constant",
) -> tf.Tensor:
    """Gumbel-Softmax temperature after ``step`` optimizer steps (float32 scalar).

    ``exponential``: ``initial * (final / initial) ** (step / anneal_steps)``; ``linear``:
    straight line from ``initial`` to ``final``; both stay at ``final`` after
    ``anneal_steps``. ``constant``: always ``initial``.
    """
    t = tf.minimum(tf.cast(step, tf.float32) / float(max(anneal_steps, 1)), 1.0)
    if schedule == "exponential":
        return initial * tf.exp(t * math.log(final / initial))
    if schedule == "linear":
        return initial + t * (final - initial)
    if schedule == "constant":
        return tf.constant(initial, tf.float32)
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def check_temperatures(initial: float, final: float, anneal_steps: int, schedule: str) -> None:
    """Raise ``ValueError`` on an invalid temperature schedule."""
    if initial <= 0 or final <= 0:
        raise ValueError(f"temperatures must be > 0, got initial={initial}, final={final}")
    if anneal_steps < 1:
        raise ValueError(f"anneal_steps must be >= 1, got {anneal_steps}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


@keras.saving.register_keras_serializable(package="semsim")
class CountPolicy(keras.layers.Layer):
    """Policy network choosing a count in ``{0, ..., num_items}``.

    2-layer MLP ``Dense(hidden_units, ReLU) -> Dense(num_items + 1)`` on
    ``concat(features, embedding)``. The logits' bias starts as the ramp
    ``prior_slope * k / num_items`` (``k = 0..num_items``): a positive slope makes larger counts
    more likely at initialization (choice probabilities ``~ exp(prior_slope * k / K)``), so a
    fresh system sends most of its symbols and the decoder learns to use them before the rate
    term prunes; 0 is a uniform start.

    ``call(features, embedding, temperature=1.0, training=False)``: ``features`` ``[B, F]`` and
    ``embedding`` ``[B, E]`` float32; ``temperature`` float32 scalar (keyword; training only). Returns
    ``(mask, logits)``: ``mask`` ``[B, num_items]`` float32 prefix mask (thermometer code of the
    choice, Gumbel straight-through in training, argmax at evaluation) and ``logits``
    ``[B, num_items + 1]``. The kept count is ``reduce_sum(mask, -1)``.
    """

    def __init__(
        self,
        num_items: int,
        hidden_units: int = 64,
        seed: int | None = None,
        prior_slope: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_items < 1 or hidden_units < 1:
            raise ValueError(f"num_items and hidden_units must be >= 1, got {num_items}, {hidden_units}")
        self.num_items, self.hidden_units, self.seed = num_items, hidden_units, seed
        self.prior_slope = float(prior_slope)
        ramp = np.linspace(0.0, self.prior_slope, num_items + 1)
        self.hidden = keras.layers.Dense(hidden_units, activation="relu", name="hidden")
        self.logits = keras.layers.Dense(
            num_items + 1, bias_initializer=keras.initializers.Constant(ramp), name="logits"
        )
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

    def build(self, features_shape, embedding_shape, temperature_shape=None):
        self.hidden.build((None, features_shape[-1] + embedding_shape[-1]))
        self.logits.build((None, self.hidden_units))

    def call(self, features, embedding, temperature=1.0, training=False):
        inputs = tf.concat([tf.cast(features, self.compute_dtype),
                            tf.cast(embedding, self.compute_dtype)], axis=-1)
        logits = tf.cast(self.logits(self.hidden(inputs)), tf.float32)  # sampled in float32
        if training:
            choice = gumbel_choice(logits, temperature, self.seed_generator)
        else:
            choice = tf.one_hot(tf.argmax(logits, axis=-1), self.num_items + 1)
        return thermometer_code(choice), logits

    def get_config(self):
        return {
            **super().get_config(),
            "num_items": self.num_items,
            "hidden_units": self.hidden_units,
            "seed": self.seed,
            "prior_slope": self.prior_slope,
        }


class TemperatureAnnealing(keras.callbacks.Callback):
    """Sets ``model.<attribute>`` (a non-trainable scalar variable) to
    :func:`annealed_temperature` of the optimizer's step count before every training batch.

    Uses ``model.optimizer.iterations``, so a resumed run continues the schedule where it
    stopped.
    """

    def __init__(
        self,
        initial: float,
        final: float,
        anneal_steps: int,
        schedule: Schedule = "constant",
        attribute: str = "temperature",
    ):
        super().__init__()
        check_temperatures(initial, final, anneal_steps, schedule)
        self.initial, self.final = initial, final
        self.anneal_steps, self.schedule, self.attribute = anneal_steps, schedule, attribute

    def on_train_batch_begin(self, batch, logs=None):
        step = self.model.optimizer.iterations
        value = annealed_temperature(step, self.initial, self.final, self.anneal_steps, self.schedule)
        getattr(self.model, self.attribute).assign(value)
