"""Multi-head self-attention against a numpy reference and keras.layers.MultiHeadAttention."""

import keras
import numpy as np

from semsim.semantic.mhsa import MultiHeadSelfAttention


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def test_mhsa_matches_numpy_sum_of_heads():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 6)).astype(np.float32)
    layer = MultiHeadSelfAttention(num_heads=3, key_dim=5)
    out = np.asarray(layer(x))
    wq, wk, wv, wo = (
        np.asarray(w) for w in (layer.query_kernel, layer.key_kernel, layer.value_kernel, layer.output_kernel)
    )
    tokens = x.reshape(2, 12, 6)
    ref = tokens.copy()
    for h in range(3):
        att = _softmax((tokens @ wq[h]) @ (tokens @ wk[h]).transpose(0, 2, 1) / np.sqrt(5))
        ref = ref + att @ (tokens @ wv[h]) @ wo[h]
    np.testing.assert_allclose(out, ref.reshape(x.shape), rtol=1e-4, atol=1e-5)


def test_mhsa_equals_keras_concat_heads_projection():
    """Summing per-head projections == Keras' concat-then-project MHA with the same weights."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 2, 3, 4)).astype(np.float32)
    ours = MultiHeadSelfAttention(num_heads=2, key_dim=3)
    ours(x)
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, use_bias=False)
    tokens = x.reshape(2, 6, 4)
    ref(tokens, tokens)
    q, k, v, o = (
        np.asarray(w) for w in (ours.query_kernel, ours.key_kernel, ours.value_kernel, ours.output_kernel)
    )
    ref.set_weights([q.transpose(1, 0, 2), k.transpose(1, 0, 2), v.transpose(1, 0, 2), o])
    expected = tokens + np.asarray(ref(tokens, tokens))
    np.testing.assert_allclose(np.asarray(ours(x)).reshape(2, 6, 4), expected, rtol=1e-4, atol=1e-5)


def test_mhsa_permutation_equivariant():
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 1, 8, 4)).astype(np.float32)
    layer = MultiHeadSelfAttention(num_heads=2)
    perm = rng.permutation(8)
    np.testing.assert_allclose(
        np.asarray(layer(x))[:, :, perm], np.asarray(layer(x[:, :, perm])), rtol=1e-4, atol=1e-5
    )
    att = np.asarray(layer.attention_weights(x))
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
