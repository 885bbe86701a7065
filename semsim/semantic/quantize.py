"""q-bit asymmetric quantization of a real representation onto a square QAM grid.

MIJSCC quantizes the encoder's representation before it enters the channel, so that the
sent symbols lie on a finite constellation (a digital modulator can send them):

* **Quantization** (transmitter), per image over all ``2n`` reals of its representation:
  ``scale = (max - min) / (2^q - 1)``, ``zero_point = round(-min / scale)``,
  ``code = clamp(round(x / scale) + zero_point, 0, 2^q - 1)`` (integers).
* **Constellation mapping**: every real takes one of the ``2^q`` centred, equally spaced
  levels ``code - (2^q - 1) / 2``; a pair of reals (I, Q) is one point of a
  ``2^q x 2^q`` square grid (``2^(2q)``-QAM). The levels are scaled by the image's RMS
  level, so the sent symbols have unit mean energy per complex symbol.
* **Dequantization** (receiver), from the received levels ``l_hat``:
  ``x_hat = (l_hat * rms + (2^q - 1) / 2 - zero_point) * scale``. ``scale``,
  ``zero_point`` and ``rms`` are three floats of side information per image
  (:data:`SIDE_INFO_BITS`), assumed delivered error-free, as in the paper.

Training uses the straight-through estimator: the forward pass is quantized, the
gradient passes as if quantization were the identity.

Shapes: ``x`` float32 ``[B, ...]``; statistics are ``[B, 1, ..., 1]`` (broadcastable).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

#: Side information per image: scale, zero point and RMS level as 32-bit floats.
SIDE_INFO_BITS = 3 * 32
#: Quantizer resolutions MIJSCC supports.
SUPPORTED_BITS = (4, 8)


class QuantParams(NamedTuple):
    """Per-image quantizer statistics, each float32 ``[B, 1, ..., 1]``."""

    scale: tf.Tensor
    zero_point: tf.Tensor
    rms: tf.Tensor


def _check_bits(bits: int) -> int:
    if int(bits) != bits or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an integer in [1, 16], got {bits!r}")
    return int(bits)


def _per_image(op, x):
    axes = list(range(1, len(x.shape)))
    return op(x, axis=axes, keepdims=True)


def quant_params(x, bits: int, mask=None) -> QuantParams:
    """Scale and zero point of ``x`` ``[B, ...]`` per image over the entries where the
    optional 0/1 ``mask`` (shape of ``x``) is 1; ``rms`` set to 1."""
    levels = 2 ** _check_bits(bits) - 1
    big = tf.constant(3.0e38, x.dtype)
    kept = tf.ones_like(x) if mask is None else tf.cast(mask, x.dtype)
    lo = _per_image(tf.reduce_min, tf.where(kept > 0, x, big))
    hi = _per_image(tf.reduce_max, tf.where(kept > 0, x, -big))
    # An image with nothing kept gets lo = hi = 0 (its tiny scale multiplies only zeros);
    # its +-big sentinels would give hi - lo = inf, and 0 x inf = NaN at the receiver.
    any_kept = _per_image(tf.reduce_max, kept) > 0
    lo, hi = tf.where(any_kept, lo, 0.0), tf.where(any_kept, hi, 0.0)
    scale = tf.maximum(hi - lo, 1e-8) / levels
    zero_point = tf.round(-lo / scale)
    return QuantParams(scale, zero_point, tf.ones_like(scale))


def quantize(x, bits: int, params: QuantParams | None = None,
             mask=None) -> tuple[tf.Tensor, QuantParams]:
    """Integer codes in ``[0, 2^q - 1]`` (float32, like ``x``) and the statistics used
    (computed over the ``mask``-ed entries when not given)."""
    levels = 2 ** _check_bits(bits) - 1
    params = params or quant_params(x, bits, mask)
    code = tf.clip_by_value(tf.round(x / params.scale) + params.zero_point, 0.0, float(levels))
    return code, params


def dequantize(code, bits: int, params: QuantParams):
    """``(code - zero_point) * scale``: back to the representation's units."""
    _check_bits(bits)
    return (code - params.zero_point) * params.scale


def fake_quantize(x, bits: int):
    """Quantize then dequantize ``x`` per image, with a straight-through gradient."""
    code, params = quantize(x, bits)
    return x + tf.stop_gradient(dequantize(code, bits, params) - x)


def to_constellation(x, bits: int, mask=None) -> tuple[tf.Tensor, QuantParams]:
    """Representation ``x`` ``[B, ...]`` -> grid levels (same shape) and the side
    information. Each real takes one of ``2^q`` values per image; the gradient passes
    straight through the rounding. With a 0/1 ``mask`` (shape of ``x``: the entries
    actually sent) the statistics and the unit mean energy per complex symbol hold over
    the sent entries; the others are zero."""
    half = (2 ** _check_bits(bits) - 1) / 2.0
    kept = tf.ones_like(x) if mask is None else tf.cast(mask, x.dtype)
    code, params = quantize(x, bits, mask=kept)
    # straight-through: forward = code, gradient as d(x / scale)
    code = x / params.scale + tf.stop_gradient(code - x / params.scale)
    centred = (code - half) * kept
    # mean energy per complex symbol = 2 * mean square per sent real
    count = tf.maximum(_per_image(tf.reduce_sum, kept), 1.0)
    rms = tf.sqrt(tf.maximum(2.0 * _per_image(tf.reduce_sum, tf.square(centred)) / count, 1e-12))
    rms = tf.stop_gradient(rms)
    return centred / rms, QuantParams(params.scale, params.zero_point, rms)


def from_constellation(levels, bits: int, params: QuantParams):
    """Received grid levels (unit energy, same units as :func:`to_constellation`'s
    output) -> dequantized representation."""
    half = (2 ** _check_bits(bits) - 1) / 2.0
    return dequantize(levels * params.rms + half, bits, params)
