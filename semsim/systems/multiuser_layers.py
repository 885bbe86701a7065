"""The multi-user system's building blocks (:mod:`semsim.systems.multiuser`): the CNN
encoding module, the channel-adaptive encoding module, the semantic decoder, P2 (the
pruning-ratio policy) and the pruning and index-code helpers."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from semsim.semantic.cbam import CBAMCSI
from semsim.semantic.ccam import CCAM
from semsim.semantic.mhsa import MultiHeadSelfAttention
from semsim.semantic.policy import gumbel_choice
from semsim.semantic.resblock import ResBlock

#: Spatial down-sampling of the CNN encoding module.
DOWNSAMPLING = 4
#: Trainable-variable groups frozen by the staged schedule.
GROUPS = ("cnn", "adaptive", "p1", "p2")


def pruned_count(ratio: float, length: int) -> int:
    """Symbols pruned from a map of ``length`` symbols at ``ratio``: ``floor(r L + 1/2)``."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1), got {ratio!r}")
    return int(math.floor(ratio * length + 0.5))


def index_code_length(info_bits: int, rate: float, bits_per_sym: int) -> int:
    """Code bits ``n`` of one index codeword: the smallest multiple of ``bits_per_sym`` with
    ``info_bits / n <= rate``."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"index_code_rate must be in (0, 1), got {rate!r}")
    symbols = math.ceil(info_bits / rate / bits_per_sym - 1e-9)
    return symbols * bits_per_sym


def magnitude_keep_masks(x: tf.Tensor, counts: tuple[int, ...]) -> tf.Tensor:
    """Keep masks of the ``l1`` pruning rule.

    ``x`` float32 or complex64 ``[B, R, L]``; ``counts``: entries to prune per row, one per
    ratio.
    Returns float32 ``[B, T, R, L]``, 1 = kept: in every row the ``counts[t]`` entries of
    smallest ``|x|`` are 0 (ties: lower index pruned first). No gradient.
    """
    mag = tf.stop_gradient(tf.abs(x))
    rank = tf.argsort(tf.argsort(mag, axis=-1, stable=True), axis=-1, stable=True)
    counts_t = tf.constant(counts, tf.int32)[None, :, None, None]
    return tf.cast(rank[:, None] >= counts_t, tf.float32)


@keras.saving.register_keras_serializable(package="semsim")
class CNNEncoding(keras.layers.Layer):
    """``[B, H, W, 3]`` -> ``[B, H/4, W/4, filters[2]]``: conv 7x7, conv 3x3 /2, conv 3x3 /2,
    each with PReLU."""

    def __init__(self, filters: tuple[int, int, int] = (64, 128, 256), **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        specs = [(self.filters[0], 7, 1), (self.filters[1], 3, 2), (self.filters[2], 3, 2)]
        self.convs = [keras.layers.Conv2D(f, k, strides=s, padding="same") for f, k, s in specs]
        self.acts = [keras.layers.PReLU(shared_axes=[1, 2]) for _ in specs]

    def call(self, x):
        for conv, act in zip(self.convs, self.acts, strict=True):
            x = act(conv(x))
        return x

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters)}


@keras.saving.register_keras_serializable(package="semsim")
class AdaptiveEncoding(keras.layers.Layer):
    """Channel-adaptive encoding module: 2 x [ResBlock, CBAM-CSI, ``z + CCAM(z, c)``] then
    conv 3x3 to ``num_maps``. ``call(x [B, h, w, F], c [B, D]) -> [B, h, w, num_maps]``."""

    def __init__(self, channels: int, num_maps: int, use_attention: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.num_maps = int(channels), int(num_maps)
        self.use_attention = bool(use_attention)
        self.res = [ResBlock(self.channels) for _ in range(2)]
        self.cbam = [CBAMCSI() for _ in range(2)] if self.use_attention else []
        self.ccam = [CCAM() for _ in range(2)]
        self.out = keras.layers.Conv2D(self.num_maps, 3, padding="same")

    def call(self, x, c):
        for i in range(2):
            x = self.res[i](x)
            if self.use_attention:
                x = self.cbam[i](x, c)
            x = x + self.ccam[i](x, c)
        return self.out(x)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "num_maps": self.num_maps,
                "use_attention": self.use_attention}


@keras.saving.register_keras_serializable(package="semsim")
class SemanticDecoder(keras.layers.Layer):
    """``call(z [B, h, w, C], c [B, D]) -> [B, 4h, 4w, 3]`` in ``(0, 1)``: MHSA, conv 3x3,
    2 x [``z + CCAM(z, c)`` (the encoder's residual form), ResBlock], transposed convs 3x3 /2
    to ``filters[1]`` and ``filters[0]``,
    conv 5x5 to 3, sigmoid."""

    def __init__(self, filters=(64, 128, 256), num_heads: int = 4, use_attention: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.num_heads, self.use_attention = int(num_heads), bool(use_attention)
        self.mhsa = MultiHeadSelfAttention(self.num_heads) if self.use_attention else None
        self.inp = keras.layers.Conv2D(self.filters[2], 3, padding="same")
        self.inp_act = keras.layers.PReLU(shared_axes=[1, 2])
        self.ccam = [CCAM() for _ in range(2)]
        self.res = [ResBlock(self.filters[2]) for _ in range(2)]
        self.up = [keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same")
                   for f in (self.filters[1], self.filters[0])]
        self.up_acts = [keras.layers.PReLU(shared_axes=[1, 2]) for _ in range(2)]
        self.out = keras.layers.Conv2D(3, 5, padding="same", activation="sigmoid")

    def call(self, z, c):
        x = self.mhsa(z) if self.use_attention else z
        x = self.inp_act(self.inp(x))
        for ccam, res in zip(self.ccam, self.res, strict=True):
            x = res(x + ccam(x, c))
        for up, act in zip(self.up, self.up_acts, strict=True):
            x = act(up(x))
        return self.out(x)

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters),
                "num_heads": self.num_heads, "use_attention": self.use_attention}


@keras.saving.register_keras_serializable(package="semsim")
class RatioPolicy(keras.layers.Layer):
    """P2: ``Dense(hidden, ReLU) -> Dense(T)`` on ``[features, c]``; ``call(features, c, tau,
    training)`` -> one-hot choice ``[B, T]`` (Gumbel-Softmax straight-through in training,
    argmax at evaluation)."""

    def __init__(self, num_ratios: int, hidden_units: int = 256, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_ratios, self.hidden_units, self.seed = int(num_ratios), int(hidden_units), seed
        self.hidden = keras.layers.Dense(self.hidden_units, activation="relu")
        self.logits = keras.layers.Dense(self.num_ratios)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, features, c, temperature, training=False):
        inputs = tf.concat([tf.cast(features, self.compute_dtype), tf.cast(c, self.compute_dtype)],
                           axis=-1)
        logits = tf.cast(self.logits(self.hidden(inputs)), tf.float32)  # sampled in float32
        if training:
            return gumbel_choice(logits, temperature, self.seed_generator)
        return tf.one_hot(tf.argmax(logits, axis=-1), self.num_ratios)

    def get_config(self):
        return {**super().get_config(), "num_ratios": self.num_ratios,
                "hidden_units": self.hidden_units, "seed": self.seed}
