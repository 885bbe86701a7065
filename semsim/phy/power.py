"""Average-power normalization over the symbols actually sent."""

from __future__ import annotations

import keras
import tensorflow as tf

from semsim.phy.layer import PhyLayer
from semsim.phy.utils import as_complex, sqrt_ratio_or_zero


@keras.saving.register_keras_serializable(package="semsim.phy")
class PowerNormalization(PhyLayer):
    """Scale each example so that its sent symbols have average power ``power``.

    Parameters
    ----------
    power : float
        Target mean ``|x|^2`` per sent complex symbol (linear).
    axes : tuple[int, ...] | None
        Axes the average runs over; ``None`` means every non-batch axis. Use
        ``(2, 3)`` on ``[B, K, A, L]`` for one power constraint per user.

    Call
    ----
    x : complex64 ``[B, ...]``
    sent_mask : optional, same shape as ``x`` (or broadcastable), 1 = sent, 0 = not sent
        (bool or float). Masked entries are forced to exactly zero and do not count in
        the average.

    Returns ``x`` normalized, complex64, same shape.
    """

    def __init__(self, power: float = 1.0, axes: tuple[int, ...] | None = None, **kwargs):
        super().__init__(**kwargs)
        if power <= 0:
            raise ValueError(f"power must be positive, got {power}")
        self.power = float(power)
        self.axes = None if axes is None else tuple(int(a) for a in axes)

    def call(self, x, sent_mask=None):
        x = tf.cast(x, tf.complex64)
        rank = x.shape.rank
        axes = self.axes if self.axes is not None else tuple(range(1, rank))
        if sent_mask is None:
            sent_mask = tf.ones_like(tf.math.real(x))
        mask = tf.broadcast_to(tf.cast(sent_mask, tf.float32), tf.shape(x))
        x = x * as_complex(mask)
        energy = tf.reduce_sum(tf.abs(x) ** 2, axis=axes, keepdims=True)
        count = tf.reduce_sum(mask, axis=axes, keepdims=True)
        mean_power = tf.math.divide_no_nan(energy, count)
        # An example with nothing sent stays all-zero, with a zero gradient.
        scale = sqrt_ratio_or_zero(tf.fill(tf.shape(mean_power), float(self.power)), mean_power)
        return x * as_complex(scale)

    def get_config(self):
        return {**super().get_config(), "power": self.power, "axes": self.axes}
