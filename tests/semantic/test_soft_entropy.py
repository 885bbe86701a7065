"""The differentiable 2D-entropy surrogate tracks the exact 2D entropy and has gradients."""

import numpy as np
import tensorflow as tf

from semsim.semantic.entropy import entropy_2d
from semsim.semantic.soft_entropy import soft_entropy_2d


def _structured_maps(rng, batch, size, channels):
    """Maps from constant to noisy: few-level blocks, gradients, smooth + noise mixtures."""
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    maps = np.zeros((batch, size, size, channels), np.float32)
    for b in range(batch):
        for c in range(channels):
            kind = (b * channels + c) % 5
            if kind == 0:
                maps[b, :, :, c] = rng.integers(0, 1 + c % 4, size=(size, size))
            elif kind == 1:
                maps[b, :, :, c] = (xx + yy) * rng.uniform(0.5, 2.0)
            elif kind == 2:
                maps[b, :, :, c] = np.sin(xx / rng.uniform(1, 4)) + rng.normal(
                    scale=rng.uniform(0, 0.5), size=(size, size)
                )
            elif kind == 3:
                maps[b, :, :, c] = (xx // 2 + yy // 4) % 3
            else:
                maps[b, :, :, c] = rng.normal(size=(size, size))
    return maps


def test_soft_entropy_tracks_exact_on_random_and_structured_maps():
    rng = np.random.default_rng(0)
    maps = np.concatenate(
        [_structured_maps(rng, 8, 8, 10), rng.normal(size=(2, 8, 8, 10)).astype(np.float32)]
    )
    exact = np.asarray(entropy_2d(tf.constant(maps))).ravel()
    soft = np.asarray(soft_entropy_2d(tf.constant(maps))).ravel()
    assert exact.min() < 1.0 and exact.max() > 5.5, "the test set must span the entropy range"
    # Tolerances: correlation over 100 maps >= 0.999; worst-case gap <= 0.2 bit (of up to 6).
    assert np.corrcoef(exact, soft)[0, 1] >= 0.999
    assert np.max(np.abs(exact - soft)) <= 0.2


def test_soft_entropy_exact_limits():
    const = np.full((1, 8, 8, 1), 3.0, np.float32)
    assert float(soft_entropy_2d(tf.constant(const))[0, 0]) == 0.0
    # Two values far apart in a checkerboard: the (level, mean) pairs are the exact ones.
    yy, xx = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    board = ((xx + yy) % 2).astype(np.float32)[None, :, :, None]
    np.testing.assert_allclose(soft_entropy_2d(tf.constant(board)), entropy_2d(tf.constant(board)), atol=1e-5)
    # All 64 values at least 2 levels apart: log2(64) bits.
    spread = np.random.default_rng(1).permutation(64).astype(np.float32).reshape(1, 8, 8, 1)
    np.testing.assert_allclose(soft_entropy_2d(tf.constant(spread), levels=128), [[6.0]], atol=1e-5)


def test_soft_entropy_gradient_raises_entropy_of_a_smooth_map():
    rng = np.random.default_rng(2)
    maps = tf.Variable(np.round(rng.normal(size=(1, 8, 8, 2)) * 2).astype(np.float32))
    start = float(tf.reduce_mean(entropy_2d(maps, levels=16)))
    opt = tf.keras.optimizers.SGD(0.05)
    for _ in range(30):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(soft_entropy_2d(maps, levels=16))
        grad = tape.gradient(loss, maps)
        assert np.all(np.isfinite(grad))
        opt.apply_gradients([(grad, maps)])
    assert float(tf.reduce_mean(entropy_2d(maps, levels=16))) > start
