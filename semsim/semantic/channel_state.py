"""Channel-state encoder: fed-back CSI and SNR -> a condition embedding for the transmitter.

Input features per image: ``[Re vec(H_hat), Im vec(H_hat), SNR_dB / snr_scale_db]`` with
``vec`` stacking the columns of the ``Nr x Nt`` estimate (column-major, ``2 Nr Nt + 1``
reals). The SNR is divided by ``snr_scale_db`` (10 dB by default) so that the usual 0..20 dB
range enters the MLP at the scale of the channel coefficients (``E|h|^2 = 1``).
"""

from __future__ import annotations

import keras
import tensorflow as tf


def channel_features(h_hat: tf.Tensor, snr_db: tf.Tensor, snr_scale_db: float = 10.0):
    """``h_hat`` complex64 ``[B, Nr, Nt]``, ``snr_db`` float32 ``[B]`` (dB) ->
    float32 ``[B, 2 Nr Nt + 1]`` (see the module docstring for the order)."""
    if h_hat.shape.rank != 3:
        raise ValueError(f"h_hat must be [B, Nr, Nt] (block fading), got shape {h_hat.shape}")
    cols = tf.reshape(tf.transpose(h_hat, [0, 2, 1]), [-1, h_hat.shape[1] * h_hat.shape[2]])
    snr = tf.reshape(tf.cast(snr_db, tf.float32), [-1, 1]) / snr_scale_db
    snr = tf.broadcast_to(snr, [tf.shape(cols)[0], 1])
    return tf.concat([tf.math.real(cols), tf.math.imag(cols), snr], axis=-1)


@keras.saving.register_keras_serializable(package="semsim")
class ChannelStateEncoder(keras.layers.Layer):
    """2-layer MLP ``Dense(hidden_units, ReLU) -> Dense(embed_dim)`` on
    :func:`channel_features`.

    ``call(h_hat, snr_db)``: ``h_hat`` complex64 ``[B, Nr, Nt]``, ``snr_db`` float32 ``[B]`` or
    scalar (dB). Returns the channel embedding ``c`` float32 ``[B, embed_dim]``.
    """

    def __init__(self, embed_dim: int = 32, hidden_units: int = 64, snr_scale_db: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        if embed_dim < 1 or hidden_units < 1 or snr_scale_db <= 0:
            raise ValueError(
                "embed_dim and hidden_units must be >= 1 and snr_scale_db > 0, got "
                f"{embed_dim}, {hidden_units}, {snr_scale_db}"
            )
        self.embed_dim, self.hidden_units, self.snr_scale_db = embed_dim, hidden_units, snr_scale_db
        self.hidden = keras.layers.Dense(hidden_units, activation="relu", name="hidden")
        self.out = keras.layers.Dense(embed_dim, name="out")

    def build(self, h_hat_shape, snr_db_shape=None):
        self.hidden.build((None, 2 * h_hat_shape[1] * h_hat_shape[2] + 1))
        self.out.build((None, self.hidden_units))

    def call(self, h_hat, snr_db):
        return self.out(self.hidden(channel_features(h_hat, snr_db, self.snr_scale_db)))

    def get_config(self):
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "hidden_units": self.hidden_units,
            "snr_scale_db": self.snr_scale_db,
        }
