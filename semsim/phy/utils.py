"""Small tensor helpers shared by the physical layer.

Real/complex pairing convention (used by every learned system): a real vector of
length ``2N`` maps to ``N`` complex symbols by consecutive pairs, symbol ``i`` being
``z[2i] + 1j * z[2i+1]``.
"""

from __future__ import annotations

import tensorflow as tf


def reals_to_complex(z: tf.Tensor) -> tf.Tensor:
    """``[..., 2N]`` float32 -> ``[..., N]`` complex64, pairs ``(2i, 2i+1) = (re, im)``."""
    z = tf.convert_to_tensor(z, tf.float32)
    if z.shape[-1] is not None and z.shape[-1] % 2:
        raise ValueError(f"last dimension must be even to pair reals, got {z.shape[-1]}")
    pairs = tf.reshape(z, tf.concat([tf.shape(z)[:-1], [-1, 2]], axis=0))
    return tf.complex(pairs[..., 0], pairs[..., 1])


def complex_to_reals(x: tf.Tensor) -> tf.Tensor:
    """``[..., N]`` complex64 -> ``[..., 2N]`` float32, inverse of :func:`reals_to_complex`."""
    x = tf.convert_to_tensor(x, tf.complex64)
    pairs = tf.stack([tf.math.real(x), tf.math.imag(x)], axis=-1)
    return tf.reshape(pairs, tf.concat([tf.shape(x)[:-1], [-1]], axis=0))


def db_to_linear(snr_db: tf.Tensor) -> tf.Tensor:
    """Power ratio in dB -> linear (float32)."""
    return tf.pow(10.0, tf.cast(snr_db, tf.float32) / 10.0)


def linear_to_db(x: tf.Tensor) -> tf.Tensor:
    """Linear power ratio -> dB (float32)."""
    return 10.0 * tf.math.log(tf.cast(x, tf.float32)) / tf.math.log(10.0)


def per_example(value: tf.Tensor, batch_size: tf.Tensor, name: str) -> tf.Tensor:
    """Broadcast a scalar or ``[B]`` tensor to ``[B]`` float32; reject other shapes."""
    value = tf.cast(value, tf.float32)
    if value.shape.rank not in (None, 0, 1):
        raise ValueError(f"{name} must be a scalar or have shape [batch], got {value.shape}")
    return tf.broadcast_to(tf.reshape(value, [-1]) if value.shape.rank == 1 else value,
                           [batch_size])


def expand_batch(value: tf.Tensor, rank: int) -> tf.Tensor:
    """Append singleton axes to a ``[B]`` tensor until it has ``rank`` axes."""
    return tf.reshape(value, tf.concat([tf.shape(value), tf.ones([rank - 1], tf.int32)], 0))


def as_complex(x: tf.Tensor) -> tf.Tensor:
    """Real float32 tensor -> complex64 with zero imaginary part.

    Unlike ``tf.cast``, its gradient takes the real part explicitly, so TensorFlow does
    not warn about discarding imaginary parts when gradients flow back to ``x``.
    """
    x = tf.cast(x, tf.float32)
    return tf.complex(x, tf.zeros_like(x))


def sqrt_ratio_or_zero(numerator: tf.Tensor, denominator: tf.Tensor) -> tf.Tensor:
    """``sqrt(numerator / denominator)`` where both are > 0, else 0 (float32, broadcast).

    The power-normalization factor of an example that may send nothing. Values and
    gradients are finite everywhere: the branch that ``tf.where`` discards never divides
    by, nor takes the root of, zero (its ``0 x inf`` would be a NaN gradient).
    """
    on = (numerator > 0) & (denominator > 0)
    ratio = tf.where(on, numerator, 1.0) / tf.where(on, denominator, 1.0)
    return tf.where(on, tf.sqrt(ratio), 0.0)
