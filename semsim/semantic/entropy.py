"""Two-dimensional (spatial) entropy of feature maps.

The 2D entropy of a gray image counts pairs ``(i, j)`` of a pixel's gray level ``i`` and the
gray level ``j`` of its 3x3 neighbourhood mean, and is the Shannon entropy of their empirical
distribution: ``H = -sum_ij p_ij log2 p_ij`` (bits). Unlike the 1D entropy of the gray levels
it also reflects spatial structure: a map whose values are locally smooth has fewer distinct
pairs than one of the same histogram scrambled.

Definition used here, per feature map:

1. Quantization: ``q = floor((x - min) / (max - min) * G)`` clipped to ``[0, G - 1]``, with
   ``min``/``max`` over the map itself (so the range is the map's own). A constant map has
   ``max == min`` and is quantized to all zeros.
2. Neighbourhood mean: the mean of ``q`` over the 3x3 window centred on the pixel (the
   pixel itself included). **Border handling**: the window is truncated at the map border
   and the mean is taken over the in-map pixels only (6 at an edge, 4 at a corner), i.e.
   no padding values enter the mean. The mean is quantized to a gray level by rounding to
   the nearest integer (``floor(m + 0.5)``, halves round up).
3. ``H = -sum p log2 p`` over the distinct pairs, ``p`` = pair count / pixels.

The computation is vectorized over batch and maps (a sort along the pixels of each map, then
run lengths by segment sums) and works under XLA. It is not differentiable: its input is
wrapped in ``tf.stop_gradient``.
"""

from __future__ import annotations

import tensorflow as tf


def quantize_maps(maps: tf.Tensor, levels: int) -> tf.Tensor:
    """Quantize each map of ``maps`` ``[B, h, w, C]`` to ``levels`` gray levels over its own
    range; returns ``int32`` ``[B, h, w, C]`` in ``[0, levels - 1]`` (see the module docstring)."""
    lo = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    hi = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    span = hi - lo
    unit = tf.math.divide_no_nan(maps - lo, span)
    q = tf.floor(unit * float(levels))
    return tf.cast(tf.clip_by_value(q, 0.0, float(levels - 1)), tf.int32)


def neighbourhood_mean(q: tf.Tensor) -> tf.Tensor:
    """Quantized 3x3 mean of gray levels ``q`` ``[B, h, w, C]`` (int32), border-truncated
    (mean over in-map pixels only) and rounded half up; returns ``int32`` ``[B, h, w, C]``."""
    qf = tf.cast(q, tf.float32)
    channels = qf.shape[-1]
    kernel = tf.ones([3, 3, channels, 1], tf.float32)
    window_sum = tf.nn.depthwise_conv2d(qf, kernel, [1, 1, 1, 1], "SAME")  # zero-padded
    in_map = tf.nn.depthwise_conv2d(tf.ones_like(qf), kernel, [1, 1, 1, 1], "SAME")
    # Integer sums are exact in float32; round half up as floor((2 s + n) / (2 n)).
    total, count = tf.cast(tf.round(window_sum), tf.int32), tf.cast(tf.round(in_map), tf.int32)
    return tf.math.floordiv(2 * total + count, 2 * count)


def entropy_2d(maps: tf.Tensor, levels: int = 256) -> tf.Tensor:
    """2D entropy of every feature map.

    Parameters
    ----------
    maps : float32 ``[B, h, w, C]``
        ``C`` maps of ``h x w`` real values per image.
    levels : int
        Number of gray levels ``G`` (>= 2).

    Returns
    -------
    float32 ``[B, C]``: entropy in bits, in ``[0, log2(h w)]``. No gradient flows to ``maps``.
    """
    if int(levels) != levels or levels < 2:
        raise ValueError(f"levels must be an integer >= 2, got {levels!r}")
    if maps.shape.rank != 4:
        raise ValueError(f"maps must be [B, h, w, C], got shape {maps.shape}")
    maps = tf.stop_gradient(tf.cast(maps, tf.float32))
    _, h, w, c = maps.shape
    n = h * w
    q = quantize_maps(maps, levels)
    j = neighbourhood_mean(q)
    pairs = q * levels + j  # [B, h, w, C], distinct per (gray, mean) pair
    pairs = tf.reshape(tf.transpose(pairs, [0, 3, 1, 2]), [-1, n])  # [B*C, n]
    rows = tf.shape(pairs)[0]
    ordered = tf.sort(pairs, axis=-1)
    starts = tf.concat(
        [tf.ones_like(ordered[:, :1]), tf.cast(ordered[:, 1:] != ordered[:, :-1], tf.int32)],
        axis=-1,
    )
    runs = tf.cumsum(starts, axis=-1) - 1  # run id within the row, in [0, n)
    segment = runs + tf.range(rows)[:, None] * n
    counts = tf.math.unsorted_segment_sum(
        tf.ones([rows * n], tf.float32), tf.reshape(segment, [-1]), rows * n
    )
    p = tf.reshape(counts, [-1, n]) / float(n)
    surprisal = tf.where(p > 0, -p * tf.math.log(tf.maximum(p, 1e-30)), 0.0)
    bits = tf.reduce_sum(surprisal, axis=-1) / tf.math.log(2.0)
    return tf.reshape(bits, [-1, c])
