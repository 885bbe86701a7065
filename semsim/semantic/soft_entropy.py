"""Differentiable surrogate of the 2D entropy of feature maps (:mod:`semsim.semantic.entropy`).

The exact 2D entropy quantizes each map to ``G`` gray levels ``q = floor(G u)``
(``u`` = the map min-max scaled to ``[0, 1]``), pairs every pixel's level with the
rounded 3x3 (border-truncated) mean ``j`` of the levels around it, and returns
``H = -sum_ij p_ij log2 p_ij``. Floors, rounding and counting have no useful gradient.

Surrogate (a *soft histogram evaluated at the samples*)
-------------------------------------------------------
For a hard histogram, ``-sum_bins p log p = -(1/N) sum_n log p(bin of pixel n)``, and
``p(bin of n) = (1/N) sum_n' [n' in the same bin as n]``. The surrogate keeps this form
and replaces the same-bin indicator by a soft one on the continuous values
``v = G u - 1/2`` (the un-floored level) and ``m`` = the border-truncated 3x3 mean of
``v``::

    p_n   = (1/N) sum_n' k(v_n - v_n') k(m_n - m_n'),  k(d) = max(0, 1 - |d| / bandwidth)
    H_soft = -(1/N) sum_n log2 p_n                      (bits)

With ``bandwidth = 1`` the triangle ``k(d)`` is the probability that two values ``d``
levels apart fall in the same unit bin when the bin grid has a uniformly random offset,
so ``p_n`` is the expected soft-histogram mass of pixel ``n``'s bin. It is exact for
constant maps (``H = 0``), for maps whose values sit on few well separated levels, and
for maps whose values are all more than ``bandwidth`` levels apart (``log2 N``); it is
continuous and piecewise differentiable in the map values (gradients flow through
``v``, ``m`` and the min/max scaling). Cost: ``O(N^2)`` per map (``N = h w`` pixels),
meant for the small latent maps of the learned systems (e.g. ``8 x 8``).
"""

from __future__ import annotations

import tensorflow as tf


def _truncated_mean_3x3(v: tf.Tensor) -> tf.Tensor:
    """3x3 mean of ``v`` ``[B, h, w, C]`` over in-map pixels only (as the exact entropy)."""
    kernel = tf.ones([3, 3, v.shape[-1], 1], tf.float32)
    total = tf.nn.depthwise_conv2d(v, kernel, [1, 1, 1, 1], "SAME")
    count = tf.nn.depthwise_conv2d(tf.ones_like(v), kernel, [1, 1, 1, 1], "SAME")
    return total / count


def soft_entropy_2d(maps: tf.Tensor, levels: int = 256, bandwidth: float = 1.0) -> tf.Tensor:
    """Differentiable 2D-entropy surrogate of every feature map (see the module docstring).

    Parameters
    ----------
    maps : float32 ``[B, h, w, C]``
        ``C`` maps of ``h x w`` real values per image.
    levels : int
        Gray levels ``G`` (>= 2), as in :func:`semsim.semantic.entropy.entropy_2d`.
    bandwidth : float
        Half-width of the triangular same-bin kernel, in gray levels (> 0).

    Returns
    -------
    float32 ``[B, C]``: surrogate entropy in bits, in ``[0, log2(h w)]``.
    """
    if int(levels) != levels or levels < 2:
        raise ValueError(f"levels must be an integer >= 2, got {levels!r}")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
    if maps.shape.rank != 4:
        raise ValueError(f"maps must be [B, h, w, C], got shape {maps.shape}")
    maps = tf.cast(maps, tf.float32)
    _, h, w, c = maps.shape
    n = h * w
    lo = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    hi = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    v = tf.math.divide_no_nan(maps - lo, hi - lo) * float(levels) - 0.5
    m = _truncated_mean_3x3(v)
    as_rows = lambda t: tf.transpose(tf.reshape(t, [-1, n, c]), [0, 2, 1])  # [B, C, N]
    v, m = as_rows(v), as_rows(m)
    kernel = lambda t: tf.nn.relu(1.0 - tf.abs(t[..., :, None] - t[..., None, :]) / bandwidth)
    p = tf.reduce_mean(kernel(v) * kernel(m), axis=-1)  # [B, C, N], >= 1/N (self term)
    return -tf.reduce_mean(tf.math.log(p), axis=-1) / tf.math.log(2.0)
