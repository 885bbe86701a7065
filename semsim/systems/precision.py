"""``train.precision``: mixed-precision training of the learned blocks.

- ``float32`` (default): everything in float32/complex64.
- ``mixed_float16`` / ``mixed_bfloat16``: the Keras dtype policy of that name for the
  learned blocks (convolutions, dense layers, activations: float16/bfloat16 compute,
  float32 variables). ``mixed_float16`` also wraps the optimizer in a
  :class:`keras.optimizers.LossScaleOptimizer` (dynamic loss scaling; Keras does this by
  itself only for models whose own policy is ``mixed_float16``, and semsim's top-level
  models stay float32, see below).

What stays in full precision whatever the policy:

- the physical layer: every :class:`semsim.phy.layer.PhyLayer` (channel, noise, power
  normalization, CSI, detection) is created with the ``float32`` policy, so its inputs
  are not cast down; a system casts its channel input to float32 (complex64 symbols) and
  the detected symbols back to the compute dtype of its decoder;
- the top-level model (:class:`semsim.systems.keras_system.LossModel`): its inputs
  (images, SNRs in dB, channel realizations) are not cast down, and its outputs (the
  reconstruction, the CR) and losses are float32;
- in the reference and multi-user systems, everything between the encoder and the
  decoder: the latent, its 2D entropy, the policies' Gumbel-Softmax sampling (their
  logits are cast to float32; their hidden layers follow the policy) and the rate
  terms.

The policy is global in Keras: :func:`dtype_policy` sets it while a system is built (its
layers take the policy current at their construction) and restores the previous one
afterwards, so nothing leaks into the next system or test. Only the system types of
:data:`SUPPORTED` cast at their channel; others are refused with a one-line error
(:func:`check_precision`).
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Callable

import keras

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

#: System types whose models keep the channel in float32 under a mixed policy.
SUPPORTED = ("deepjscc", "adjscc", "swinjscc", "reference", "multiuser")


def _check_name(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {precision!r}")


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Keras's global dtype policy set to ``precision`` inside the block (layers created
    there take it); the previous policy is restored on exit, also on an error."""
    _check_name(precision)
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def check_precision(type_name: str, precision: str, factory: Callable | None = None) -> None:
    """Raise ``ValueError`` (one line, naming the system type) when ``type_name`` cannot
    train under ``precision``. With its registered ``factory``, a system type that does
    not learn (its factory is not annotated to return a trainable system) is accepted:
    the policy does not touch it."""
    _check_name(precision)
    if factory is not None and not getattr(typing.get_type_hints(factory).get("return"),
                                           "trainable", False):
        return
    if precision != "float32" and type_name not in SUPPORTED:
        raise ValueError(f"train.precision: system type {type_name!r} does not support "
                         f"{precision} yet (supported: {', '.join(SUPPORTED)}); use "
                         "train.precision: float32")


def wrap_optimizer(optimizer: keras.optimizers.Optimizer,
                   precision: str) -> keras.optimizers.Optimizer:
    """``optimizer`` in a :class:`keras.optimizers.LossScaleOptimizer` for
    ``mixed_float16`` (float16 gradients underflow without loss scaling), else as is."""
    _check_name(precision)
    if precision == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
