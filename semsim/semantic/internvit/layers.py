"""Keras 3 layers of the InternViT vision encoder (InternVL's vision tower).

Shapes: ``B`` batch, ``N`` tokens (class token first, then the ``gh * gw`` patch
tokens in row-major order), ``D`` hidden size. All tensors are ``float32``.

Every block is pre-norm::

    x = x + ls1 * proj(attn(norm1(x)))
    x = x + ls2 * fc2(gelu(fc1(norm2(x))))

with a fused ``qkv`` projection whose ``3 * D`` outputs are ordered
``[q (all heads), k (all heads), v (all heads)]`` and optional RMS normalization of
``q`` and ``k`` over all heads together (``D`` features), as in InternViT-6B.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from semsim.semantic.internvit.lora import LoRALinear

NORM_TYPES = ("layer_norm", "rms_norm")


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys cubic-convolution weights of the 4 taps at offsets -1, 0, 1, 2.

    ``t`` ``[n]`` fractional positions in ``[0, 1)``; returns ``[n, 4]``. ``a = -0.75``
    is the coefficient PyTorch's ``bicubic`` mode uses (TensorFlow's uses -0.5).
    """

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """1-D bicubic resampling matrix ``M`` ``[out_size, in_size]`` (``y = M @ x``).

    Matches ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)``
    along one axis: half-pixel source coordinates ``(i + 0.5) * in/out - 0.5``, cubic
    coefficient -0.75, taps outside the input replicate the edge sample. The 2-D
    resampling is separable, so applying the matrix along each axis reproduces it.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be >= 1, got in_size={in_size}, out_size={out_size}")
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5
    base = np.floor(src)
    weights = _cubic_weights(src - base)
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    for tap in range(4):
        idx = np.clip(base.astype(np.int64) - 1 + tap, 0, in_size - 1)
        np.add.at(matrix, (np.arange(out_size), idx), weights[:, tap])
    return matrix


@keras.saving.register_keras_serializable(package="semsim.internvit")
class RMSNorm(keras.layers.Layer):
    """``y = x / sqrt(mean(x^2, -1) + epsilon) * weight`` over the last axis."""

    def __init__(self, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.weight = self.add_weight(name="weight", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        variance = ops.mean(ops.square(x), axis=-1, keepdims=True)
        return x * ops.rsqrt(variance + self.epsilon) * self.weight

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def make_norm(norm_type: str, epsilon: float, name: str) -> keras.layers.Layer:
    """LayerNorm (with bias) or RMSNorm over the last axis."""
    if norm_type == "layer_norm":
        return keras.layers.LayerNormalization(epsilon=epsilon, name=name)
    if norm_type == "rms_norm":
        return RMSNorm(epsilon=epsilon, name=name)
    raise ValueError(f"norm_type must be one of {NORM_TYPES}, got {norm_type!r}")


@keras.saving.register_keras_serializable(package="semsim.internvit")
class InternViTPatchEmbedding(keras.layers.Layer):
    """Non-overlapping ``patch_size`` x ``patch_size`` convolution (with bias).

    ``call(pixels [B, H, W, C]) -> [B, (H // p) * (W // p), D]`` (row-major tokens).
    """

    def __init__(self, hidden_dim: int, patch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.patch_size = patch_size
        self.conv = keras.layers.Conv2D(
            hidden_dim, patch_size, strides=patch_size, padding="valid", name="conv"
        )

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, pixels):
        x = self.conv(pixels)
        return ops.reshape(x, (ops.shape(x)[0], -1, self.hidden_dim))

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package="semsim.internvit")
class InternViTPositionEmbedding(keras.layers.Layer):
    """Prepends the class token and adds learned absolute position embeddings.

    The embeddings are stored on the pretraining grid ``position_grid`` (32 x 32 for
    InternViT-300M at 448 px, patch 14) plus one class position, and resampled
    bicubically (as PyTorch does, :func:`bicubic_matrix`) to the token grid of the
    input; the class position is never resampled.

    ``call(tokens [B, gh * gw, D], grid=(gh, gw)) -> [B, 1 + gh * gw, D]``.
    """

    def __init__(self, hidden_dim: int, position_grid: int, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.position_grid = position_grid

    def build(self, input_shape):
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.class_embedding = self.add_weight(
            name="class_embedding", shape=(self.hidden_dim,), initializer=init
        )
        self.position_embedding = self.add_weight(
            name="position_embedding",
            shape=(1 + self.position_grid**2, self.hidden_dim),
            initializer=init,
        )

    def patch_positions(self, grid: tuple[int, int]):
        """Patch position embeddings resampled to ``grid`` ``(gh, gw)``: ``[gh * gw, D]``."""
        gh, gw = grid
        g = self.position_grid
        table = ops.reshape(self.position_embedding[1:], (g, g, self.hidden_dim))
        if (gh, gw) == (g, g):
            return ops.reshape(table, (g * g, self.hidden_dim))
        mh = ops.convert_to_tensor(bicubic_matrix(g, gh), dtype=self.compute_dtype)
        mw = ops.convert_to_tensor(bicubic_matrix(g, gw), dtype=self.compute_dtype)
        resampled = ops.einsum("ih,jw,hwd->ijd", mh, mw, table)
        return ops.reshape(resampled, (gh * gw, self.hidden_dim))

    def call(self, tokens, grid):
        batch = ops.shape(tokens)[0]
        cls = self.class_embedding + self.position_embedding[0]
        cls = ops.broadcast_to(ops.reshape(cls, (1, 1, self.hidden_dim)), (batch, 1, self.hidden_dim))
        patches = tokens + self.patch_positions(tuple(grid))[None]
        return ops.concatenate([cls, patches], axis=1)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "position_grid": self.position_grid,
        }


@keras.saving.register_keras_serializable(package="semsim.internvit")
class InternViTBlock(keras.layers.Layer):
    """One pre-norm InternViT encoder block (see the module docstring).

    ``call(x [B, N, D], training=None) -> [B, N, D]``. The four projections
    (``qkv``, ``proj``, ``fc1``, ``fc2``) are :class:`LoRALinear` layers so that LoRA
    can be enabled on them (:func:`semsim.semantic.internvit.lora.apply_lora`).
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int,
        intermediate_dim: int,
        layer_norm_epsilon: float = 1e-6,
        norm_type: str = "layer_norm",
        use_qk_norm: bool = False,
        qkv_bias: bool = True,
        layer_scale_init: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim={hidden_dim} must be divisible by num_heads={num_heads}")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_type = norm_type
        self.use_qk_norm = use_qk_norm
        self.qkv_bias = qkv_bias
        self.layer_scale_init = layer_scale_init
        self.head_dim = hidden_dim // num_heads

        self.norm1 = make_norm(norm_type, layer_norm_epsilon, "norm1")
        self.norm2 = make_norm(norm_type, layer_norm_epsilon, "norm2")
        self.qkv = LoRALinear(3 * hidden_dim, use_bias=qkv_bias, name="qkv")
        self.proj = LoRALinear(hidden_dim, name="proj")
        self.fc1 = LoRALinear(intermediate_dim, name="fc1")
        self.fc2 = LoRALinear(hidden_dim, name="fc2")
        if use_qk_norm:
            self.q_norm = RMSNorm(layer_norm_epsilon, name="q_norm")
            self.k_norm = RMSNorm(layer_norm_epsilon, name="k_norm")

    def build(self, input_shape):
        d = self.hidden_dim
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)
        self.qkv.build(input_shape)
        self.proj.build((None, None, d))
        self.fc1.build(input_shape)
        self.fc2.build((None, None, self.intermediate_dim))
        if self.use_qk_norm:
            self.q_norm.build((None, None, d))
            self.k_norm.build((None, None, d))
        scale = keras.initializers.Constant(self.layer_scale_init)
        self.ls1 = self.add_weight(name="ls1", shape=(d,), initializer=scale)
        self.ls2 = self.add_weight(name="ls2", shape=(d,), initializer=scale)

    def _heads(self, x):
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], shape[1], self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def _attention(self, x, training):
        q, k, v = ops.split(self.qkv(x, training=training), 3, axis=-1)
        if self.use_qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        scores = ops.einsum("bhqd,bhkd->bhqk", q, k) * (self.head_dim**-0.5)
        out = ops.einsum("bhqk,bhkd->bhqd", ops.softmax(scores, axis=-1), v)
        shape = ops.shape(x)
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (shape[0], shape[1], self.hidden_dim))
        return self.proj(out, training=training)

    def call(self, x, training=None):
        x = x + self.ls1 * self._attention(self.norm1(x), training)
        h = keras.activations.gelu(self.fc1(self.norm2(x), training=training), approximate=False)
        return x + self.ls2 * self.fc2(h, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "norm_type": self.norm_type,
            "use_qk_norm": self.use_qk_norm,
            "qkv_bias": self.qkv_bias,
            "layer_scale_init": self.layer_scale_init,
        }
