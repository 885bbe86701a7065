"""Straight-through estimator: the real chain's output forward, the proxy's gradient
backward.

``straight_through(real, proxy)`` returns ``real`` exactly (bit for bit: it is
``tf.identity(real)``, not ``real + proxy - stop_gradient(proxy)``, which rounds in
float32) and routes the incoming gradient to ``proxy`` unchanged, none to ``real``.
That is the gradient of ``real + proxy - stop_gradient(proxy)``: d/dproxy = 1,
d/dreal = 0 (the chain is not differentiable anyway).
"""

from __future__ import annotations

import tensorflow as tf


@tf.custom_gradient
def _straight_through(real, proxy):
    def grad(upstream):
        return tf.zeros_like(real), upstream

    return tf.identity(real), grad


def straight_through(real, proxy) -> tf.Tensor:
    """``real`` forward, gradient to ``proxy``; both float32 of one shape."""
    real = tf.convert_to_tensor(real, tf.float32)
    proxy = tf.convert_to_tensor(proxy, tf.float32)
    if real.shape != proxy.shape:
        raise ValueError(f"real and proxy must have one shape, got {real.shape} and {proxy.shape}")
    return _straight_through(real, proxy)
