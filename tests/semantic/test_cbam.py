"""CBAM-CSI and ResBlock against numpy references."""

import keras
import numpy as np
import pytest

from semsim.semantic.cbam import CBAMCSI
from semsim.semantic.resblock import ResBlock


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _conv_same(x, kernel, bias):
    """Naive 'same' 2D convolution (cross-correlation) of [B,H,W,Ci] with [k,k,Ci,Co]."""
    k = kernel.shape[0]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    b, h, w, _ = x.shape
    out = np.zeros((b, h, w, kernel.shape[-1]))
    for i in range(h):
        for j in range(w):
            out[:, i, j] = np.einsum("bijc,ijco->bo", xp[:, i : i + k, j : j + k], kernel)
    return out + bias


def test_cbam_matches_numpy_reference():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6, 8)).astype(np.float32)
    cond = rng.normal(size=(2, 5)).astype(np.float32)
    layer = CBAMCSI(reduction=4, spatial_kernel=3)
    out = np.asarray(layer(x, cond))
    w1, b1 = (np.asarray(v) for v in layer.hidden_dense.weights)
    w2, b2 = (np.asarray(v) for v in layer.out_dense.weights)
    f = lambda d: np.maximum(np.concatenate([d, cond], -1) @ w1 + b1, 0) @ w2 + b2
    a = _sigmoid(f(x.mean((1, 2))) + f(x.max((1, 2))))
    x1 = x * a[:, None, None, :]
    desc = np.stack([x1.mean(-1), x1.max(-1)], -1)
    ks, bs = (np.asarray(v) for v in layer.spatial_conv.weights)
    ref = x1 * _sigmoid(_conv_same(desc, ks, bs))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_cbam_channel_weights_depend_on_csi():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 4, 4, 16)).astype(np.float32)
    layer = CBAMCSI(reduction=2)
    layer(x, np.zeros((1, 3), np.float32))
    a0 = np.asarray(layer.channel_weights(x, np.zeros((1, 3), np.float32)))
    a1 = np.asarray(layer.channel_weights(x, np.full((1, 3), 3.0, np.float32)))
    assert a0.shape == (1, 16)
    assert np.all((a0 > 0) & (a0 < 1))
    assert np.max(np.abs(a0 - a1)) > 1e-3


def test_cbam_rejects_even_kernel():
    with pytest.raises(ValueError, match="spatial_kernel"):
        CBAMCSI(spatial_kernel=4)


def test_resblock_matches_numpy_reference():
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    block = ResBlock(5)
    out = np.asarray(block(x))
    assert out.shape == (2, 4, 4, 5)
    k1, b1 = (np.asarray(v) for v in block.conv1.weights)
    (a1,) = (np.asarray(v) for v in block.act1.weights)
    k2, b2 = (np.asarray(v) for v in block.conv2.weights)
    (a2,) = (np.asarray(v) for v in block.act2.weights)
    ks, bs = (np.asarray(v) for v in block.shortcut.weights)
    prelu = lambda z, a: np.where(z > 0, z, a * z)
    y = _conv_same(prelu(_conv_same(x, k1, b1), a1), k2, b2)
    ref = prelu(y + _conv_same(x, ks, bs), a2)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_resblock_identity_shortcut_when_channels_match():
    block = ResBlock(3)
    block(np.zeros((1, 4, 4, 3), np.float32))
    assert block.shortcut is None
