"""Channel-condition attention module (CCAM): per-channel feature modulation by a condition.

``out = x * s + b`` with per-channel scale ``s`` and bias ``b`` predicted from the token
average of ``x`` and a condition vector ``c`` (e.g. the channel-state embedding).

Choice of bounded scale: ``s = 2 * sigmoid(a)``, in ``(0, 2)``. The last layers of both MLPs
are zero-initialized, so at initialization ``s = 1`` and ``b = 0`` exactly: a freshly built CCAM
is the identity and does not perturb the Swin block in front of it; training then learns to
attenuate (``s < 1``) or amplify (``s > 1``, at most 2x) each channel.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="semsim")
class CCAM(keras.layers.Layer):
    """Channel-condition attention.

    ``call(x, c)``: ``x`` ``[B, ..., dim]`` ``float32`` tokens (any number of token axes, e.g.
    ``[B, H, W, dim]``); ``c`` ``[B, cond_dim]`` ``float32`` condition. Returns ``x * s + b``
    (same shape as ``x``) with ``s, b`` ``[B, dim]`` from two separate 2-layer MLPs
    (``Dense(hidden_units, ReLU) -> Dense(dim)``) applied to ``concat(GAP(x), c)``, where GAP
    averages over all token axes.
    """

    def __init__(self, hidden_units: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if hidden_units is not None and hidden_units < 1:
            raise ValueError(f"hidden_units must be >= 1 or None, got {hidden_units}")
        self.hidden_units = hidden_units

    def build(self, x_shape, c_shape=None):
        dim = x_shape[-1]
        hidden = self.hidden_units or dim
        self.scale_mlp = [
            keras.layers.Dense(hidden, activation="relu", name="scale_hidden"),
            keras.layers.Dense(dim, kernel_initializer="zeros", name="scale_out"),
        ]
        self.bias_mlp = [
            keras.layers.Dense(hidden, activation="relu", name="bias_hidden"),
            keras.layers.Dense(dim, kernel_initializer="zeros", name="bias_out"),
        ]
        in_dim = dim + (c_shape[-1] if c_shape is not None else 0)
        for mlp in (self.scale_mlp, self.bias_mlp):
            mlp[0].build((None, in_dim))
            mlp[1].build((None, hidden))

    def call(self, x, c):
        token_axes = list(range(1, len(x.shape) - 1))
        feats = tf.concat([tf.reduce_mean(x, axis=token_axes), c], axis=-1)
        a = self.scale_mlp[1](self.scale_mlp[0](feats))
        b = self.bias_mlp[1](self.bias_mlp[0](feats))
        bcast = [-1] + [1] * len(token_axes) + [x.shape[-1]]
        s = 2.0 * tf.sigmoid(a)
        return x * tf.reshape(s, bcast) + tf.reshape(b, bcast)

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units}
