"""A-MIJSCC's channel-adaptive length: noise encoder, consecutive mask, attention.

:class:`NoiseMask` maps the noise variance ``sigma^2`` (linear) of each image's channel
to a mask over the ``n`` complex symbols of its representation:

1. a 4-layer MLP (``hidden`` ReLU x3, then ``n`` softplus outputs ``v >= 0``);
2. multiplication by the upper-triangular all-ones matrix ``U`` (``U[j, i] = 1`` for
   ``i >= j``): ``s_j = sum_{i >= j} v_i``, non-increasing in ``j`` (the last layer's
   bias starts at ``softplus^-1(1 / n)``, so initially ``s_j ~ 1 - j / n`` and the kept
   ratio is about ``1 - eta``);
3. thresholding at ``eta`` (in ``(0, 1)``): ``m_j = 1[s_j > eta]``. Because ``s`` never increases, the
   kept symbols are always the first ``k`` ones (a consecutive mask), and only the end
   index ``k`` is side information (``ceil(log2(n + 1))`` bits).

Training uses a straight-through mask: the forward pass is the hard mask, the gradient
is that of ``sigmoid((s - eta) / temperature)``.

:class:`MaskAttention` (two fully connected layers) re-weights the kept dimensions:
``z * m * 2 sigmoid(W2 relu(W1 [z * m, sigma^2]))`` (the factor 2 makes the identity
reachable at initialization).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


class NoiseMask(keras.layers.Layer):
    """Noise variance -> consecutive 0/1 mask over ``num_symbols`` complex symbols.

    ``call(noise_var, training=False)``: ``noise_var`` ``[B]`` float32 (linear);
    returns ``(mask, scores)``, both ``[B, num_symbols]``: the (straight-through in
    training) mask and the non-increasing scores ``s``.
    """

    def __init__(self, num_symbols: int, eta: float = 0.5, hidden: int = 64,
                 temperature: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if num_symbols < 1:
            raise ValueError(f"num_symbols must be >= 1, got {num_symbols}")
        if not 0 < eta < 1:
            raise ValueError(f"eta must lie in (0, 1), got {eta}")
        self.num_symbols = int(num_symbols)
        self.eta = float(eta)
        self.hidden = int(hidden)
        self.temperature = float(temperature)
        self.mlp = [keras.layers.Dense(self.hidden, activation="relu") for _ in range(3)]
        # softplus(bias) = 1 / n: at initialization s_j ~ 1 - j / n, kept ratio ~ 1 - eta.
        bias = math.log(math.expm1(1.0 / self.num_symbols))
        self.mlp.append(keras.layers.Dense(
            self.num_symbols, activation="softplus",
            bias_initializer=keras.initializers.Constant(bias)))
        # U[j, i] = 1 for i >= j: row j sums v over i >= j.
        self._upper = tf.constant(
            [[1.0 if i >= j else 0.0 for i in range(self.num_symbols)]
             for j in range(self.num_symbols)], tf.float32)

    def build(self, input_shape):
        shape = (None, 1)
        for layer in self.mlp:
            layer.build(shape)
            shape = (None, layer.units)
        self.built = True

    def scores(self, noise_var):
        """Non-increasing scores ``[B, n]`` of noise variances ``[B]``."""
        h = tf.reshape(tf.cast(noise_var, tf.float32), [-1, 1])
        h = -tf.math.log(h + 1e-10) / math.log(10.0)  # SNR in dB / 10: well scaled
        for layer in self.mlp:
            h = layer(h)
        return tf.linalg.matvec(self._upper, h)

    def call(self, noise_var, training=False):
        s = self.scores(noise_var)
        hard = tf.cast(s > self.eta, tf.float32)
        if not training:
            return hard, s
        soft = tf.sigmoid((s - self.eta) / self.temperature)
        return hard + soft - tf.stop_gradient(soft), s

    def get_config(self):
        return {**super().get_config(), "num_symbols": self.num_symbols, "eta": self.eta,
                "hidden": self.hidden, "temperature": self.temperature}


class MaskAttention(keras.layers.Layer):
    """Re-weighting of the kept dimensions by two fully connected layers.

    ``call(z, mask, noise_var)``: ``z`` ``[B, d]`` reals, ``mask`` ``[B, d]`` 0/1,
    ``noise_var`` ``[B]`` (linear); returns ``[B, d]``, zero where ``mask`` is 0.
    """

    def __init__(self, dims: int, hidden: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.dims = int(dims)
        self.hidden_units = int(hidden)
        self.hidden = keras.layers.Dense(self.hidden_units, activation="relu")
        self.gate = keras.layers.Dense(self.dims, activation="sigmoid")

    def build(self, input_shape):
        self.hidden.build((None, self.dims + 1))
        self.gate.build((None, self.hidden_units))
        self.built = True

    def call(self, z, mask, noise_var):
        kept = z * mask
        context = tf.concat([kept, tf.reshape(-tf.math.log(noise_var + 1e-10) / math.log(10.0), [-1, 1])], -1)
        return kept * 2.0 * self.gate(self.hidden(context))

    def get_config(self):
        return {**super().get_config(), "dims": self.dims, "hidden": self.hidden_units}
