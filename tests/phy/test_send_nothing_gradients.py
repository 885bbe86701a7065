"""An image whose policy sends nothing must not poison training with NaN.

Both power-normalization factors (the PHY's :class:`~semsim.phy.PowerNormalization` and the
probes' :func:`~semsim.semantic.policy.transmit_scale`) are a ``tf.where`` between a root
of a quotient and a constant. Before the fix, ``transmit_scale`` took the root of zero in
the branch it uses when an image sends nothing and its full energy is zero: a NaN
gradient (the second test fails on that code). ``PowerNormalization``'s discarded branch
divided by ``1e-30``, an infinite intermediate of the backward pass that
``tf.maximum``'s gradient happened to block (the first test passes on both codes; it
keeps the property).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from semsim.phy import PowerNormalization
from semsim.semantic.policy import transmit_scale


def _gradient(fn, x):
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.abs(fn(x)) ** 2 * np.arange(1, x.shape[-1] + 1))
    return tape.gradient(loss, x).numpy()


def test_power_normalization_of_a_batch_with_a_silent_example_has_finite_gradients():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(3, 2, 4)) + 1j * rng.normal(size=(3, 2, 4))).astype(np.complex64)
    mask = np.ones((3, 2, 4), np.float32)
    mask[1] = 0.0  # example 1 sends nothing
    layer = PowerNormalization()
    y = layer(tf.constant(x), mask).numpy()
    np.testing.assert_array_equal(y[1], 0.0)
    # the other examples: unit mean power over their sent entries
    np.testing.assert_allclose(np.mean(np.abs(y[[0, 2]]) ** 2, axis=(1, 2)), 1.0, rtol=1e-5)
    grad = _gradient(lambda v: layer(v, mask), x)
    assert np.all(np.isfinite(grad.real)) and np.all(np.isfinite(grad.imag))
    np.testing.assert_array_equal(grad[1], 0.0)
    # each example's gradient is its own: the same as in a batch without the silent one
    alone = _gradient(lambda v: layer(v, mask[[0, 2]]), x[[0, 2]])
    np.testing.assert_allclose(grad[[0, 2]], alone, rtol=1e-6, atol=1e-7)


def test_transmit_scale_is_finite_with_finite_gradients_when_nothing_is_sent():
    sent_energy = tf.Variable([[4.0], [0.0], [0.0]])
    full_energy = tf.Variable([[8.0], [2.0], [0.0]])
    sent_symbols = tf.constant([[2.0], [0.0], [0.0]])
    with tf.GradientTape() as tape:
        scale = transmit_scale(sent_energy, sent_symbols, full_energy, 3.0, 2.0)
        total = tf.reduce_sum(scale)
    # sqrt(n Es / E): sent 2 symbols of energy 4; nothing sent -> everything (3 symbols,
    # energy 2); nothing to send at all -> 0
    np.testing.assert_allclose(scale.numpy()[:, 0], [np.sqrt(2 * 2 / 4), np.sqrt(3 * 2 / 2), 0.0],
                               rtol=1e-6)
    d_sent, d_full = tape.gradient(total, [sent_energy, full_energy])
    assert np.all(np.isfinite(d_sent.numpy())) and np.all(np.isfinite(d_full.numpy()))
    # d sqrt(a / E) / dE = -sqrt(a) / (2 E^1.5), only through the branch that is used
    np.testing.assert_allclose(d_sent.numpy()[:, 0], [-np.sqrt(4.0) / (2 * 4.0**1.5), 0, 0],
                               rtol=1e-6)
    np.testing.assert_allclose(d_full.numpy()[:, 0], [0, -np.sqrt(6.0) / (2 * 2.0**1.5), 0],
                               rtol=1e-6)
