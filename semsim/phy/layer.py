"""Base class of the physical-layer Keras layers."""

from __future__ import annotations

import numbers

import keras
import numpy as np
import tensorflow as tf


class PhyLayer(keras.layers.Layer):
    """A Keras layer that also accepts plain Python/NumPy numbers as positional
    arguments (e.g. ``channel(x, 10.0)`` for an SNR in dB); Keras 3 otherwise only
    accepts tensors there. Numbers become float32 tensors, complex numbers complex64.

    Physical layers always use the ``float32`` dtype policy (unless given another
    ``dtype``), so a global mixed-precision policy never casts their inputs (SNRs,
    noise variances) down."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return super().__call__(*(_as_tensor(a) for a in args), **kwargs)


def _as_tensor(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        return tf.constant(value, tf.complex64)
    if isinstance(value, numbers.Real | np.ndarray):
        array = np.asarray(value)
        dtype = tf.complex64 if np.iscomplexobj(array) else tf.float32
        return tf.constant(array, dtype)
    return value
