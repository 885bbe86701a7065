"""CBAM-CSI: convolutional block attention conditioned on CSI and SNR.

Channel attention (as in CBAM) whose shared two-layer 1x1-conv path (a Dense
pair on the pooled descriptors) sees, besides the average- and max-pooled
channel descriptors, a condition vector (the user's fed-back CSI, ``2M`` reals,
and its SNR); then spatial attention with a ``k x k`` convolution over the
channel-wise average and maximum maps.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="semsim")
class CBAMCSI(keras.layers.Layer):
    """Channel then spatial attention; channel attention conditioned on ``cond``.

    ``call(x, cond)``: ``x`` ``[B, H, W, C]`` float32, ``cond`` ``[B, D]`` float32
    (e.g. ``[Re h_k, Im h_k, snr_db / 10]``) -> ``[B, H, W, C]``.

    * channel weights ``a = sigmoid(f([avg(x), cond]) + f([max(x), cond]))`` ``[B, C]``,
      ``f`` = Dense(``max(C // reduction, 1)``, ReLU) -> Dense(``C``), shared by both
      descriptors; ``x1 = x * a``;
    * spatial weights ``s = sigmoid(conv_kxk([mean_c(x1), max_c(x1)]))`` ``[B, H, W, 1]``;
      output ``x1 * s``.
    """

    def __init__(self, reduction: int = 16, spatial_kernel: int = 7, **kwargs):
        super().__init__(**kwargs)
        if reduction < 1:
            raise ValueError(f"reduction must be >= 1, got {reduction}")
        if spatial_kernel < 1 or spatial_kernel % 2 == 0:
            raise ValueError(f"spatial_kernel must be an odd integer >= 1, got {spatial_kernel}")
        self.reduction = reduction
        self.spatial_kernel = spatial_kernel
        self.spatial_conv = keras.layers.Conv2D(1, spatial_kernel, padding="same")

    def build(self, x_shape, cond_shape):
        channels = x_shape[-1]
        hidden = max(channels // self.reduction, 1)
        self.hidden_dense = keras.layers.Dense(hidden, activation="relu")
        self.out_dense = keras.layers.Dense(channels)
        self.hidden_dense.build((None, channels + cond_shape[-1]))
        self.out_dense.build((None, hidden))
        self.spatial_conv.build(tuple(x_shape[:-1]) + (2,))

    def channel_weights(self, x, cond):
        """Channel attention weights ``[B, C]`` in ``(0, 1)``."""
        avg = ops.mean(x, axis=(1, 2))
        mx = ops.max(x, axis=(1, 2))
        f = lambda d: self.out_dense(self.hidden_dense(ops.concatenate([d, cond], axis=-1)))
        return ops.sigmoid(f(avg) + f(mx))

    def call(self, x, cond):
        x1 = x * self.channel_weights(x, cond)[:, None, None, :]
        desc = ops.concatenate(
            [ops.mean(x1, axis=-1, keepdims=True), ops.max(x1, axis=-1, keepdims=True)], axis=-1
        )
        return x1 * ops.sigmoid(self.spatial_conv(desc))

    def compute_output_shape(self, x_shape, cond_shape):
        return x_shape

    def get_config(self):
        return {
            **super().get_config(),
            "reduction": self.reduction,
            "spatial_kernel": self.spatial_kernel,
        }
