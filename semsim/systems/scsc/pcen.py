"""PCEN: precoder enhancement (PEN, transmitter) and combiner enhancement (CEN, receiver).

PEN -- deep-unfolded ADMM for finite-alphabet precoding
-------------------------------------------------------
Per channel use, the linear SVD precoder would send ``x_lin = V diag(sqrt(p)) s``
(:class:`semsim.phy.precoding.SVDPrecoder`), so the receiver would see ``r = H x_lin``
without noise. PEN looks for a transmit vector in the finite alphabet
``X = {(+-1 +- j) / sqrt(2)}^Nt`` (QPSK per antenna, energy 1 per antenna, ``Nt`` per
channel use: constant envelope) that delivers the same: ``min_{x in X} ||r - H x||^2``.
ADMM with the splitting ``x = z``, ``z in X`` and scaled dual ``u`` iterates

    x_{k+1} = (H^H H + rho_k I)^{-1} (H^H r + rho_k (z_k - u_k))
    z_{k+1} = Proj_X(x_{k+1} + u_k)
    u_{k+1} = u_k + (1 + gamma_k) (x_{k+1} - z_{k+1})

from ``z_0 = Proj_X(x_lin)``, ``u_0 = 0``. Unfolding ``K`` iterations gives the network;
its trainable parameters are two per layer, ``rho_k = rho exp(theta_k)`` and ``gamma_k``,
both offsets 0 at initialization, when the network *is* plain ADMM with penalty ``rho``.
The output is the last ``x_{K}`` (continuous, close to ``X``, differentiable), followed
by power normalization to energy ``Nt`` per used channel use; unused (zero-padded)
channel uses stay zero.

PCEN sends ``x = x_lin + m (x_K - x_lin)`` (power-normalized again) with one trainable
mixing weight ``m``, 0 at initialization: an untrained PCEN is the linear SVD precoder,
and training moves toward the finite-alphabet solution only as far as that delivers the
streams more cleanly. (Without it, the ADMM output replaced ``x_lin`` from the first
step: on the 2x2 link it spreads power over the streams that water-filling had weighted,
and the chain lost more images than with the plain SVD precoder: ``python
benchmarks/scsc_proxy.py --steps --rate-weights ...``, the row "PEN's ADMM output alone",
numbers in docs/scsc.md.)

CEN
---
At the receiver, before the SVD combiner: ``y' = (I + M(H, no)) y`` with ``M`` an
``Nr x Nr`` complex matrix produced by a two-layer perceptron of ``H`` (real and
imaginary parts) and ``log10 no``; its last layer starts at zero (``y' = y``).

PCEN is trained on the MSE between the sent stream symbols and the combiner's estimates,
in units of the noise variance the receiver's demapper assumes for each stream
(``no_eff = no / (s_i^2 p_i)``, :meth:`SVDPrecoder.combine`): 1 in expectation for the
plain SVD chain, below 1 only where PCEN delivers a stream more cleanly than the linear
precoder and combiner do. A plain MSE is dominated by the weakest active stream (a
stream's error is its ``no_eff``, which grows without bound as water-filling's power for
it falls toward zero), so minimizing it moves power toward that stream, against
water-filling and against the LDPC decoder, which reads each stream's symbols through
LLRs scaled by ``1 / no_eff``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from semsim.phy.precoding import SVDPrecoder

_INV_SQRT2 = float(1 / np.sqrt(2))


def project_qpsk(v: tf.Tensor) -> tf.Tensor:
    """Nearest point of ``{(+-1 +- j)/sqrt(2)}`` per entry (ties to +)."""
    re = tf.where(tf.math.real(v) >= 0, _INV_SQRT2, -_INV_SQRT2)
    im = tf.where(tf.math.imag(v) >= 0, _INV_SQRT2, -_INV_SQRT2)
    return tf.complex(re, im)


def normalize_power(x: tf.Tensor, x_lin: tf.Tensor) -> tf.Tensor:
    """``x [B, Nt, L]`` scaled to energy ``Nt`` per channel use where ``x_lin`` is nonzero
    (its used channel uses), zero elsewhere; complex64."""
    nt = x.shape[1]
    used = tf.cast(tf.reduce_any(tf.not_equal(x_lin, 0), axis=1, keepdims=True), tf.float32)
    x = x * tf.complex(used, 0.0)
    energy = tf.reduce_sum(tf.abs(x) ** 2, axis=[1, 2], keepdims=True)
    scale = tf.sqrt(nt * tf.reduce_sum(used, axis=[1, 2], keepdims=True) / tf.maximum(energy, 1e-12))
    return x * tf.complex(scale, 0.0)


class UnfoldedADMMPrecoder(keras.layers.Layer):
    """PEN: ``K = num_layers`` unfolded ADMM iterations (see the module docstring).

    Call: ``(x_lin [B, Nt, L], h [B, Nr, Nt])`` complex64 -> ``x [B, Nt, L]`` complex64
    with energy ``Nt`` per channel use where ``x_lin`` is nonzero (0 elsewhere).
    ``normalize=False`` returns the raw ``x_K`` (for tests against plain ADMM).
    """

    def __init__(self, num_layers: int = 8, rho: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if num_layers < 1 or not rho > 0:
            raise ValueError(f"num_layers must be >= 1 and rho > 0, got {num_layers}, {rho}")
        self.num_layers, self.rho = int(num_layers), float(rho)
        self.theta = self.add_weight(shape=(self.num_layers,), initializer="zeros", name="theta")
        self.gamma = self.add_weight(shape=(self.num_layers,), initializer="zeros", name="gamma")

    def call(self, x_lin, h, normalize: bool = True):
        x_lin = tf.convert_to_tensor(x_lin, tf.complex64)
        h = tf.convert_to_tensor(h, tf.complex64)
        nt = h.shape[-1]
        gram = tf.matmul(h, h, adjoint_a=True)
        target = tf.matmul(gram, x_lin)  # H^H r with r = H x_lin
        eye = tf.eye(nt, dtype=tf.complex64)
        z = project_qpsk(x_lin)
        u = tf.zeros_like(x_lin)
        x = x_lin
        for k in range(self.num_layers):
            rho = tf.complex(self.rho * tf.exp(self.theta[k]), 0.0)
            x = tf.linalg.solve(gram + rho * eye, target + rho * (z - u))
            z = project_qpsk(x + u)
            u = u + tf.complex(1.0 + self.gamma[k], 0.0) * (x - z)
        if not normalize:
            return x
        return normalize_power(x, x_lin)

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers, "rho": self.rho}


class CombinerEnhancement(keras.layers.Layer):
    """CEN: ``(y [B, Nr, L], h [B, Nr, Nt], no [B])`` -> ``(I + M) y`` (module docstring)."""

    def __init__(self, hidden: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.hidden = int(hidden)
        self.fc1 = keras.layers.Dense(self.hidden, activation="relu")
        self.fc2 = None

    def build(self, y_shape, h_shape=None, no_shape=None):
        nr = int(y_shape[1])
        self.fc2 = keras.layers.Dense(2 * nr * nr, kernel_initializer="zeros")
        self.built = True

    def call(self, y, h, no):
        y = tf.convert_to_tensor(y, tf.complex64)
        h = tf.convert_to_tensor(h, tf.complex64)
        nr = h.shape[1]
        batch = tf.shape(h)[0]
        feats = tf.concat([tf.reshape(tf.math.real(h), [batch, -1]),
                           tf.reshape(tf.math.imag(h), [batch, -1]),
                           tf.reshape(tf.math.log(tf.cast(no, tf.float32)) / np.log(10.0), [-1, 1])],
                          axis=1)
        m = tf.reshape(self.fc2(self.fc1(feats)), [batch, 2, nr, nr])
        m = tf.complex(m[:, 0], m[:, 1])
        return y + tf.matmul(m, y)

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


class PCEN(keras.Model):
    """PEN + CEN with the chain's hooks: :meth:`precode` and :meth:`combine_input`."""

    def __init__(self, num_layers: int = 8, rho: float = 0.1, hidden: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.pen = UnfoldedADMMPrecoder(num_layers, rho)
        self.cen = CombinerEnhancement(hidden)
        self.mix = self.add_weight(shape=(), initializer="zeros", name="mix")

    def precode(self, streams, precoder: SVDPrecoder):
        """``streams [B, S, L]`` -> ``x [B, Nt, L]``: the SVD precoder's ``x_lin`` moved by
        the mixing weight toward PEN's output (module docstring)."""
        x_lin = precoder.precode(streams)
        h = tf.matmul(precoder.u * tf.complex(precoder.s, 0.0)[:, tf.newaxis], precoder.v,
                      adjoint_b=True)
        x = x_lin + tf.complex(self.mix, 0.0) * (self.pen(x_lin, h) - x_lin)
        return normalize_power(x, x_lin)

    def symbol_mse(self, streams, h, snr_db, channel) -> tf.Tensor:
        """Training loss: mean ``|s - s_hat|^2 / no_eff`` over active streams and used
        channel uses (module docstring: the error in units of the noise variance the
        demapper assumes; about 1 for the plain SVD chain), ``streams [B, S, L]``
        unit-energy symbols sent over ``channel`` at ``snr_db [B]`` (dB)."""
        nt = h.shape[-1]
        no = nt / tf.pow(10.0, tf.cast(snr_db, tf.float32) / 10.0)
        precoder = SVDPrecoder(h, no)
        x = self.precode(streams, precoder)
        y, _, no_real = channel(x, snr_db, h=h)
        est, _ = precoder.combine(self.cen(y, h, no_real))
        on = tf.cast(precoder.power > 0, tf.float32)[..., tf.newaxis]
        used = tf.cast(tf.not_equal(streams, 0), tf.float32)
        err = tf.abs(est - tf.cast(streams, tf.complex64)) ** 2 * on * used
        err = err * precoder.stream_snr[..., tf.newaxis]
        return tf.reduce_sum(err) / tf.maximum(tf.reduce_sum(on * used), 1.0)

    def call(self, streams, h, snr_db, channel=None):
        """Same as :meth:`symbol_mse` (``channel`` by keyword)."""
        if channel is None:
            raise ValueError("PCEN needs channel= (the link's RayleighMIMOChannel)")
        return self.symbol_mse(streams, h, snr_db, channel)
