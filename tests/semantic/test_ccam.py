"""CCAM: identity at initialization, and out = x * 2 sigmoid(a) + b against NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from semsim.semantic.ccam import CCAM


def test_identity_at_initialization():
    x = tf.random.normal([3, 4, 5, 6])
    c = tf.random.normal([3, 7])
    np.testing.assert_array_equal(CCAM()(x, c).numpy(), x.numpy())


def _mlp(layers, feats):
    (w1, b1), (w2, b2) = ([v.numpy() for v in layer.weights] for layer in layers)
    return np.maximum(feats @ w1 + b1, 0.0) @ w2 + b2


def test_matches_numpy_formula_with_random_weights():
    rng = np.random.default_rng(0)
    layer = CCAM(hidden_units=5)
    x = rng.normal(size=(2, 3, 4, 6)).astype(np.float32)
    c = rng.normal(size=(2, 7)).astype(np.float32)
    layer(x, c)
    for w in layer.weights:
        w.assign(rng.normal(size=w.shape).astype(np.float32))
    feats = np.concatenate([x.mean(axis=(1, 2)), c], -1)
    s = 2.0 / (1.0 + np.exp(-_mlp(layer.scale_mlp, feats)))
    b = _mlp(layer.bias_mlp, feats)
    expected = x * s[:, None, None, :] + b[:, None, None, :]
    np.testing.assert_allclose(layer(x, c).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert np.all((s > 0) & (s < 2))


def test_works_on_token_sequences_and_rejects_bad_hidden():
    x = tf.random.normal([2, 9, 4])
    assert CCAM()(x, tf.zeros([2, 3])).shape == (2, 9, 4)
    with pytest.raises(ValueError, match="hidden_units"):
        CCAM(hidden_units=0)
