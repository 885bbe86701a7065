"""PPEN, the pre-processing network before the codec, with quantization-adaptive layers.

PPEN maps an image ``[B, H, W, 3]`` in [0, 1] to a filtered image of the same shape that
the HEVC encoder then codes. It is a residual convolutional filter,
``out = clip(x + conv_out(f(x)), 0, 1)``, whose hidden feature maps are multiplied
channel-wise by QA scales: a two-layer perceptron of the codec's quantization parameter
(``q = (QP - 28) / 13``, so the paper's QPs 28..41 map to [0, 1]) producing one positive
scale per feature channel (``2 sigmoid(.)``, 1 at initialization of the last bias).
One network therefore serves every QP. With ``qa=False`` the scales are absent (the
"without QA" ablation trains one such PPEN per QP).
"""

from __future__ import annotations

import keras
import tensorflow as tf

QP_LOW, QP_SPAN = 28.0, 13.0


def normalized_qp(qp) -> tf.Tensor:
    """``(QP - 28) / 13`` as float32 ``[B, 1]`` (scalar QPs are broadcast by the caller)."""
    return tf.reshape((tf.cast(qp, tf.float32) - QP_LOW) / QP_SPAN, [-1, 1])


class QAScale(keras.layers.Layer):
    """Two-layer perceptron ``q [B, 1] -> scales [B, 1, 1, C]`` in (0, 2)."""

    def __init__(self, channels: int, hidden: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.hidden = int(channels), int(hidden)
        self.fc1 = keras.layers.Dense(self.hidden, activation="relu")
        self.fc2 = keras.layers.Dense(self.channels, kernel_initializer="zeros")

    def call(self, q):
        scale = 2.0 * tf.sigmoid(self.fc2(self.fc1(q)))
        return scale[:, tf.newaxis, tf.newaxis, :]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "hidden": self.hidden}


class PPEN(keras.Model):
    """Residual image filter with QA layers.

    Call: ``(images [B, H, W, 3] float32 in [0, 1], qp [B] or scalar tensor)`` -> ``[B, H, W, 3]``
    in [0, 1]. ``filters``: hidden channels, ``depth``: hidden conv layers (>= 1).
    The output convolution starts at zero, so an untrained PPEN is the identity.
    """

    def __init__(self, filters: int = 32, depth: int = 3, qa: bool = True, **kwargs):
        super().__init__(**kwargs)
        if depth < 1 or filters < 1:
            raise ValueError(f"filters and depth must be >= 1, got {filters}, {depth}")
        self.filters, self.depth, self.qa = int(filters), int(depth), bool(qa)
        self.convs = [keras.layers.Conv2D(self.filters, 3, padding="same", activation="relu")
                      for _ in range(self.depth)]
        self.scales = [QAScale(self.filters) for _ in range(self.depth)] if self.qa else []
        self.out_conv = keras.layers.Conv2D(3, 3, padding="same", kernel_initializer="zeros")

    def call(self, images, qp):
        images = tf.convert_to_tensor(images, tf.float32)
        q = normalized_qp(tf.broadcast_to(tf.cast(qp, tf.float32), tf.shape(images)[:1]))
        z = images
        for i, conv in enumerate(self.convs):
            z = conv(z)
            if self.qa:
                z = z * self.scales[i](q)
        return tf.clip_by_value(images + self.out_conv(z), 0.0, 1.0)

    def get_config(self):
        return {"filters": self.filters, "depth": self.depth, "qa": self.qa}
