"""Swin Transformer building blocks for learned transmitters and receivers.

All layers work on *spatial token grids* ``[batch, height, width, channels]`` ``float32``
(one token per grid position), so that stages, merging and decoding compose without
reshapes. The grid size is read from the static input shape when a layer is built.

Public blocks (reused by the SwinJSCC baseline and the reference system):

* :class:`WindowAttention`: multi-head self-attention inside non-overlapping windows with a
  learned relative position bias (one bias per head and relative offset).
* :class:`SwinBlock`: LN -> (shifted) window MSA -> residual -> LN -> MLP -> residual.
* :class:`SwinStage`: ``depth`` blocks alternating regular and shifted windows, optionally each
  followed by a channel-condition module (:class:`semsim.semantic.ccam.CCAM`).
* :class:`PatchEmbed`, :class:`PatchMerging`, :class:`PatchReverseMerging`: resolution changes.
* :class:`SwinEncoder`, :class:`SwinDecoder`: the image <-> feature-map stacks.

Window handling: a stage's effective window is ``min(window_size, height, width)``; when the
whole grid fits in one window no shift is applied (as in the Swin paper). Grids that are not
a multiple of the window are zero-padded at the bottom/right before attention and cropped
afterwards; padded tokens are masked out as attention keys (the window arithmetic:
:mod:`semsim.semantic.windows`).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from semsim.semantic.ccam import CCAM
from semsim.semantic.windows import (
    attention_mask,
    relative_position_index,
    window_partition,
    window_reverse,
)


def input_bias_initializer(fan_in: int) -> keras.initializers.Initializer:
    """Start value of the bias of a stack's input projection: uniform in
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` (PyTorch's default for linear layers).

    Keras starts biases at zero, and with zero biases an all-zero input (an image whose
    policy sends nothing, an all-black patch) keeps every activation of a freshly built
    Swin stack exactly zero. Each LayerNorm then sees a zero vector and passes gradients
    with gain ``1/sqrt(epsilon)`` (about 316): through the reference paper's decoder the
    first step's gradient reached 1e26 and Adam's second moment overflowed to inf, so
    training diverged. A nonzero input bias makes no token exactly zero.
    """
    limit = 1.0 / float(np.sqrt(fan_in))
    return keras.initializers.RandomUniform(-limit, limit)


def _check_positive(name: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@keras.saving.register_keras_serializable(package="semsim")
class WindowAttention(keras.layers.Layer):
    """Multi-head self-attention within windows, with relative position bias.

    ``call(x, attn_mask=None)``: ``x`` ``[B * nW, ws**2, dim]`` ``float32``; ``attn_mask`` optional
    additive ``[nW, ws**2, ws**2]`` (see :func:`attention_mask`). Returns the same shape as
    ``x``. The bias table ``[(2 ws - 1)**2, num_heads]`` is initialized from a normal
    distribution truncated at 2 std (std 0.02).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, **kwargs):
        super().__init__(**kwargs)
        _check_positive("dim", dim)
        _check_positive("num_heads", num_heads)
        _check_positive("window_size", window_size)
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.num_heads, self.window_size = dim, num_heads, window_size
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = keras.layers.Dense(3 * dim, name="qkv")
        self.proj = keras.layers.Dense(dim, name="proj")
        self._index = relative_position_index(window_size).reshape(-1)

    def build(self, input_shape):
        ws = self.window_size
        self.bias_table = self.add_weight(
            name="relative_position_bias_table",
            shape=((2 * ws - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )
        self.qkv.build(input_shape)
        self.proj.build(tuple(input_shape[:-1]) + (self.dim,))

    def call(self, x, attn_mask=None):
        n = self.window_size**2
        head_dim = self.dim // self.num_heads
        qkv = tf.reshape(self.qkv(x), [-1, n, 3, self.num_heads, head_dim])
        qkv = tf.transpose(qkv, [2, 0, 3, 1, 4])  # [3, B*nW, heads, n, head_dim]
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = tf.matmul(q, k, transpose_b=True)  # [B*nW, heads, n, n]
        bias = tf.gather(tf.convert_to_tensor(self.bias_table), self._index)
        bias = tf.transpose(tf.reshape(bias, [n, n, self.num_heads]), [2, 0, 1])
        attn = attn + bias[None]
        if attn_mask is not None:
            num_windows = attn_mask.shape[0]
            attn = tf.reshape(attn, [-1, num_windows, self.num_heads, n, n])
            attn = attn + tf.cast(attn_mask, attn.dtype)[None, :, None]
            attn = tf.reshape(attn, [-1, self.num_heads, n, n])
        out = tf.matmul(tf.nn.softmax(attn, axis=-1), v)  # [B*nW, heads, n, head_dim]
        out = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [-1, n, self.dim])
        return self.proj(out)

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "num_heads": self.num_heads,
            "window_size": self.window_size,
        }


@keras.saving.register_keras_serializable(package="semsim")
class SwinBlock(keras.layers.Layer):
    """One Swin Transformer block on a token grid.

    ``x -> x + WMSA(LN(x)) -> x + MLP(LN(x))``, where WMSA uses windows of
    ``window_size``; with ``shifted`` the grid is cyclically shifted by half a window before
    partitioning (and back after), with the shifted-window attention mask. MLP is
    ``Dense(mlp_ratio * dim), GELU, Dense(dim)``.

    ``call(x)``: ``x`` ``[B, H, W, dim]`` ``float32`` -> same shape. The effective window and
    shift are fixed at build time from ``H, W`` (see the module docstring).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shifted: bool = False,
        mlp_ratio: float = 4.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive("window_size", window_size)
        if mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be > 0, got {mlp_ratio}")
        self.dim, self.num_heads = dim, num_heads
        self.window_size, self.shifted, self.mlp_ratio = window_size, bool(shifted), mlp_ratio
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5, name="norm1")
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5, name="norm2")
        self.mlp_in = keras.layers.Dense(int(dim * mlp_ratio), activation="gelu", name="mlp_in")
        self.mlp_out = keras.layers.Dense(dim, name="mlp_out")
        self.attn: WindowAttention | None = None

    def build(self, input_shape):
        _, h, w, c = input_shape
        if c != self.dim:
            raise ValueError(f"SwinBlock(dim={self.dim}) got {c} input channels")
        ws = min(self.window_size, h, w)
        self.eff_window = ws
        single_window = ws >= h and ws >= w
        self.eff_shift = ws // 2 if self.shifted and not single_window else 0
        self._mask = attention_mask(h, w, ws, self.eff_shift)
        self.attn = WindowAttention(self.dim, self.num_heads, ws, name="attn")
        hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
        self.attn.build((None, ws * ws, self.dim))
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (int(self.dim * self.mlp_ratio),))
        self._padded = (hp, wp)

    def call(self, x):
        _, h, w, _ = x.shape
        ws, shift = self.eff_window, self.eff_shift
        hp, wp = self._padded
        y = self.norm1(x)
        if (hp, wp) != (h, w):
            y = tf.pad(y, [[0, 0], [0, hp - h], [0, wp - w], [0, 0]])
        if shift:
            y = tf.roll(y, shift=[-shift, -shift], axis=[1, 2])
        y = self.attn(window_partition(y, ws), attn_mask=self._mask)
        y = window_reverse(y, ws, hp, wp)
        if shift:
            y = tf.roll(y, shift=[shift, shift], axis=[1, 2])
        x = x + y[:, :h, :w, :]
        return x + self.mlp_out(self.mlp_in(self.norm2(x)))

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "num_heads": self.num_heads,
            "window_size": self.window_size,
            "shifted": self.shifted,
            "mlp_ratio": self.mlp_ratio,
        }


@keras.saving.register_keras_serializable(package="semsim")
class SwinStage(keras.layers.Layer):
    """``depth`` Swin blocks alternating regular (even index) and shifted (odd) windows.

    With ``conditioned=True`` every block is followed by a :class:`CCAM` driven by a condition
    vector. ``call(x, c=None)``: ``x`` ``[B, H, W, dim]`` ``float32``; ``c`` ``[B, cond_dim]``
    (required iff ``conditioned``). Returns ``[B, H, W, dim]``.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float = 4.0,
        conditioned: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_positive("depth", depth)
        self.dim, self.depth, self.num_heads = dim, depth, num_heads
        self.window_size, self.mlp_ratio, self.conditioned = window_size, mlp_ratio, conditioned
        self.blocks = [
            SwinBlock(dim, num_heads, window_size, i % 2 == 1, mlp_ratio, name=f"block{i}")
            for i in range(depth)
        ]
        self.ccams = [CCAM(name=f"ccam{i}") for i in range(depth)] if conditioned else []

    def call(self, x, c=None):
        if self.conditioned and c is None:
            raise ValueError("this SwinStage is conditioned: call it with a condition c")
        for i, block in enumerate(self.blocks):
            x = block(x)
            if self.conditioned:
                x = self.ccams[i](x, c)
        return x

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "window_size": self.window_size,
            "mlp_ratio": self.mlp_ratio,
            "conditioned": self.conditioned,
        }


@keras.saving.register_keras_serializable(package="semsim")
class PatchEmbed(keras.layers.Layer):
    """Non-overlapping ``patch_size x patch_size`` patches -> ``dim``-dimensional tokens.

    ``[B, H, W, C_in]`` -> ``[B, H / p, W / p, dim]`` (strided convolution, then LayerNorm).
    The convolution's bias starts nonzero (:func:`input_bias_initializer`).
    ``H`` and ``W`` must be multiples of ``patch_size``.
    """

    def __init__(self, patch_size: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        _check_positive("patch_size", patch_size)
        self.patch_size, self.dim = patch_size, dim
        self.proj = keras.layers.Conv2D(dim, patch_size, strides=patch_size, name="proj")
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")

    def build(self, input_shape):
        self.proj.bias_initializer = input_bias_initializer(self.patch_size**2 * input_shape[-1])

    def call(self, x):
        _, h, w, _ = x.shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image size {h}x{w} must be a multiple of patch_size={self.patch_size}")
        return self.norm(self.proj(x))

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "dim": self.dim}


@keras.saving.register_keras_serializable(package="semsim")
class PatchMerging(keras.layers.Layer):
    """Halve the grid: concatenate each 2x2 token neighbourhood, LayerNorm, Linear.

    ``[B, H, W, C]`` -> ``[B, H / 2, W / 2, out_dim]`` (``H, W`` even). The 4C features are
    ordered (top-left, bottom-left, top-right, bottom-right) as in Swin.
    """

    def __init__(self, out_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.out_dim = out_dim
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")
        self.reduction = keras.layers.Dense(out_dim, use_bias=False, name="reduction")

    def call(self, x):
        _, h, w, _ = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"PatchMerging needs an even grid, got {h}x{w}")
        x = tf.concat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=-1)
        return self.reduction(self.norm(x))

    def get_config(self):
        return {**super().get_config(), "out_dim": self.out_dim}


@keras.saving.register_keras_serializable(package="semsim")
class PatchReverseMerging(keras.layers.Layer):
    """Upsample the grid by ``factor``: LayerNorm, Linear to ``factor**2 * out_dim``, then
    depth-to-space.

    ``[B, H, W, C]`` -> ``[B, factor * H, factor * W, out_dim]``.
    """

    def __init__(self, out_dim: int, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        _check_positive("factor", factor)
        self.out_dim, self.factor = out_dim, factor
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")
        self.expand = keras.layers.Dense(factor * factor * out_dim, name="expand")

    def call(self, x):
        return tf.nn.depth_to_space(self.expand(self.norm(x)), self.factor)

    def get_config(self):
        return {**super().get_config(), "out_dim": self.out_dim, "factor": self.factor}


def _check_stage_lists(dims: Sequence[int], depths: Sequence[int], heads: Sequence[int]):
    if not (len(dims) == len(depths) == len(heads)) or not dims:
        raise ValueError(
            f"dims, depths and heads must be non-empty and of equal length, got "
            f"{list(dims)}, {list(depths)}, {list(heads)}"
        )
    for d, h in zip(dims, heads, strict=True):
        if d % h:
            raise ValueError(f"stage dim {d} is not divisible by its number of heads {h}")


class _SwinStack(keras.layers.Layer):
    """The stages shared by :class:`SwinEncoder` and :class:`SwinDecoder`: one
    :class:`SwinStage` per entry of ``dims``/``depths``/``heads``, and their config."""

    def __init__(self, dims, depths, heads, window_size, patch_size, mlp_ratio, conditioned, **kwargs):
        super().__init__(**kwargs)
        _check_stage_lists(dims, depths, heads)
        self.dims, self.depths, self.heads = list(dims), list(depths), list(heads)
        self.window_size, self.patch_size = window_size, patch_size
        self.mlp_ratio, self.conditioned = mlp_ratio, conditioned
        self.scale = patch_size * 2 ** (len(dims) - 1)
        self.stages = [
            SwinStage(d, n, h, window_size, mlp_ratio, conditioned, name=f"stage{i}")
            for i, (d, n, h) in enumerate(zip(dims, depths, heads, strict=True))
        ]

    def get_config(self):
        return {
            **super().get_config(),
            "dims": self.dims,
            "depths": self.depths,
            "heads": self.heads,
            "window_size": self.window_size,
            "patch_size": self.patch_size,
            "mlp_ratio": self.mlp_ratio,
            "conditioned": self.conditioned,
        }


@keras.saving.register_keras_serializable(package="semsim")
class SwinEncoder(_SwinStack):
    """Image -> ``out_channels`` feature maps.

    ``PatchEmbed(patch_size, dims[0])`` -> stage 0 -> for each further stage ``i``:
    ``PatchMerging(dims[i])`` -> stage ``i`` -> LayerNorm -> Linear(``out_channels``).
    The grid shrinks by ``patch_size * 2**(len(dims) - 1)`` (4 for the defaults).

    ``call(x, c=None)``: ``x`` ``[B, H, W, 3]`` ``float32`` in ``[0, 1]``; ``c`` ``[B, cond_dim]``
    (required iff ``conditioned``; drives a CCAM after every block). Returns
    ``[B, H / f, W / f, out_channels]`` ``float32``; each channel is one feature map of
    ``H W / f**2`` real symbols.
    """

    def __init__(
        self,
        out_channels: int,
        dims: Sequence[int] = (96, 128),
        depths: Sequence[int] = (2, 4),
        heads: Sequence[int] = (6, 8),
        window_size: int = 4,
        patch_size: int = 2,
        mlp_ratio: float = 4.0,
        conditioned: bool = False,
        **kwargs,
    ):
        _check_positive("out_channels", out_channels)
        super().__init__(dims, depths, heads, window_size, patch_size, mlp_ratio, conditioned, **kwargs)
        self.out_channels = out_channels
        self.downsampling = self.scale
        self.embed = PatchEmbed(patch_size, dims[0], name="patch_embed")
        self.merges = [PatchMerging(d, name=f"merge{i + 1}") for i, d in enumerate(dims[1:])]
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")
        self.head = keras.layers.Dense(out_channels, name="head")

    def call(self, x, c=None):
        _, h, w, _ = x.shape
        if h % self.downsampling or w % self.downsampling:
            raise ValueError(
                f"image size {h}x{w} must be a multiple of {self.downsampling} (patch_size * 2**(stages - 1))"
            )
        x = self.stages[0](self.embed(x), c)
        for merge, stage in zip(self.merges, self.stages[1:], strict=True):
            x = stage(merge(x), c)
        return self.head(self.norm(x))

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels}


@keras.saving.register_keras_serializable(package="semsim")
class SwinDecoder(_SwinStack):
    """Feature maps -> image, mirroring :class:`SwinEncoder`.

    Linear(``dims[0]``; bias started by :func:`input_bias_initializer`) -> stage 0 -> for
    each further stage ``i``:
    ``PatchReverseMerging(dims[i])`` -> stage ``i`` -> ``PatchReverseMerging(3, patch_size)``
    -> sigmoid. The defaults are the reference paper's decoder: stage 1 (at the coarse
    grid) 2 blocks x 8 heads at width 128, stage 2 4 blocks x 6 heads at width 96.

    ``call(z, c=None)``: ``z`` ``[B, h, w, C]`` ``float32``; ``c`` ``[B, cond_dim]`` (required iff
    ``conditioned``). Returns ``[B, f h, f w, 3]`` ``float32`` in ``(0, 1)``,
    ``f = patch_size * 2**(len(dims) - 1)``.
    """

    def __init__(
        self,
        dims: Sequence[int] = (128, 96),
        depths: Sequence[int] = (2, 4),
        heads: Sequence[int] = (8, 6),
        window_size: int = 4,
        patch_size: int = 2,
        mlp_ratio: float = 4.0,
        conditioned: bool = False,
        **kwargs,
    ):
        super().__init__(dims, depths, heads, window_size, patch_size, mlp_ratio, conditioned, **kwargs)
        self.inp = keras.layers.Dense(dims[0], name="head")
        self.unmerges = [PatchReverseMerging(d, name=f"unmerge{i + 1}") for i, d in enumerate(dims[1:])]
        self.to_pixels = PatchReverseMerging(3, patch_size, name="to_pixels")

    def build(self, z_shape, c_shape=None):
        self.inp.bias_initializer = input_bias_initializer(z_shape[-1])

    def call(self, z, c=None):
        x = self.stages[0](self.inp(z), c)
        for unmerge, stage in zip(self.unmerges, self.stages[1:], strict=True):
            x = stage(unmerge(x), c)
        return tf.sigmoid(self.to_pixels(x))

