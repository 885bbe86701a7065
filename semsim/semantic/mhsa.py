"""Multi-head self-attention over the spatial positions of a feature map.

The heads run in parallel on the same tokens and their (projected) outputs are
**summed** and added to the input (residual) -- algebraically the same as
concatenating the heads and applying one output projection.
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="semsim")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Residual multi-head self-attention on a feature map.

    ``call(x)``: ``x`` ``[B, H, W, C]`` float32 -> ``[B, H, W, C]``. With tokens
    ``X = reshape(x, [B, N = H W, C])`` and per head ``h``::

        Q_h = X Wq_h,  K_h = X Wk_h,  V_h = X Wv_h        ([B, N, key_dim])
        O_h = softmax(Q_h K_h^T / sqrt(key_dim)) V_h Wo_h  ([B, N, C])
        y   = X + sum_h O_h

    Weights: ``query/key/value_kernel`` ``[heads, C, key_dim]``,
    ``output_kernel`` ``[heads, key_dim, C]`` (no biases).
    """

    def __init__(self, num_heads: int = 4, key_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        if key_dim is not None and key_dim < 1:
            raise ValueError(f"key_dim must be >= 1 or None, got {key_dim}")
        self.num_heads = num_heads
        self.key_dim = key_dim

    def build(self, input_shape):
        channels = input_shape[-1]
        dk = self.key_dim or channels
        self._dk = dk
        shape_in = (self.num_heads, channels, dk)
        self.query_kernel = self.add_weight(shape=shape_in, initializer="glorot_uniform",
                                            name="query_kernel")
        self.key_kernel = self.add_weight(shape=shape_in, initializer="glorot_uniform",
                                          name="key_kernel")
        self.value_kernel = self.add_weight(shape=shape_in, initializer="glorot_uniform",
                                            name="value_kernel")
        self.output_kernel = self.add_weight(shape=(self.num_heads, dk, channels),
                                             initializer="glorot_uniform", name="output_kernel")

    def attention_weights(self, x):
        """Attention matrices ``[B, heads, N, N]`` (rows sum to 1) for ``x`` ``[B, H, W, C]``."""
        tokens = self._tokens(x)
        q = ops.einsum("bnc,hcd->bhnd", tokens, self.query_kernel)
        k = ops.einsum("bnc,hcd->bhnd", tokens, self.key_kernel)
        return ops.softmax(ops.einsum("bhnd,bhmd->bhnm", q, k) / math.sqrt(self._dk), axis=-1)

    def _tokens(self, x):
        shape = ops.shape(x)
        return ops.reshape(x, (shape[0], shape[1] * shape[2], shape[3]))

    def call(self, x):
        tokens = self._tokens(x)
        att = self.attention_weights(x)
        v = ops.einsum("bnc,hcd->bhnd", tokens, self.value_kernel)
        heads = ops.einsum("bhnm,bhmd->bhnd", att, v)
        out = tokens + ops.einsum("bhnd,hdc->bnc", heads, self.output_kernel)
        return ops.reshape(out, ops.shape(x))

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim}
