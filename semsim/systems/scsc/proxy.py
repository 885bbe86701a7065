"""The proxy network: a differentiable stand-in for the standard chain.

The chain's output is one of two things: the codec's reconstruction of the sent image
(every LDPC codeword decoded) or the ``fallback`` image (the image is lost). The proxy
models both:

- the **image path**, a small JSCC auto-encoder that knows ``H``: a convolutional encoder
  maps the (pre-processed) image to ``2 C`` real latent maps at 1/4 resolution, read as
  complex symbols, split over the ``S`` SVD streams and power-normalized; each stream
  passes the parallel channel that SVD precoding with water-filling makes of ``H`` at the
  given SNR (unit gain after equalization, complex Gaussian noise of variance
  ``no / (s_i^2 p_i)``, :class:`semsim.phy.precoding.SVDPrecoder`); the decoder, whose
  hidden maps are scaled by a perceptron of the conditioning vector ``[(QP - 28) / 13,
  code rate, SNR_dB / 20, per-stream effective SNR_dB / 20]``, outputs a residual added to
  the input image;
- the **delivery gate**, a perceptron of the same conditioning vector and the outage
  margin (:meth:`ProxyNet.margin`: the streams' capacity minus the bits sent per channel
  use) giving the logit of ``P(image delivered)``: whether a block-fading codeword decodes
  is set by the streams' effective SNRs against the code rate.

Output: ``p * image_path + (1 - p) * fallback``, the chain's expected output. Trained
(:meth:`~semsim.systems.scsc.system.SCSCSystem`'s proxy stage) with the MSE of the image
path against the chain's reconstruction on the delivered images and the binary cross
entropy of the gate against the chain's ``failed`` flags, then frozen; SCSC training then
uses its gradients with the chain's output forward
(:func:`semsim.systems.scsc.straight_through.straight_through`): through the image path,
scaled by ``p`` (a lost image gives PPEN no distortion gradient).

Why the gate: with the image path alone, trained on the MSE against the chain's output,
the proxy learns to blur every image toward the fallback in proportion to the loss rate
at that SNR, and stops tracking the chain (``scsc_2x2`` ``standard``, 300 proxy steps:
16.1 dB proxy-vs-chain PSNR at 12 dB, below the 24.2 dB of the input image itself; both
the mean of per-image PSNRs, the check's metric then).

Call: ``(images [B, H, W, 3], qp [B], rate [B] (0.5 or 0.75), snr_db [B], h [B, Nr, Nt],
fallback [H, W, 3] or None (mid-grey))`` -> ``[B, H, W, 3]`` float32 in [0, 1]; ``H`` and
``W`` multiples of 4. :meth:`ProxyNet.parts` gives the image path and the gate's logit
``[B]``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from semsim.phy.precoding import SVDPrecoder
from semsim.systems.scsc.ppen import normalized_qp

#: Cap on a stream's effective noise variance (switched-off streams).
_MAX_NO_EFF = 1e3


class ProxyNet(keras.Model):
    """See the module docstring. ``filters``: hidden channels; ``latent``: ``C``."""

    def __init__(self, filters: int = 32, latent: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.latent = int(filters), int(latent)
        f = self.filters
        self.enc = [keras.layers.Conv2D(f, 5, strides=2, padding="same", activation="relu"),
                    keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu"),
                    keras.layers.Conv2D(2 * self.latent, 3, padding="same")]
        self.dec = [keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu"),
                    keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")]
        self.cond = [keras.Sequential([keras.layers.Dense(32, activation="relu"),
                                       keras.layers.Dense(f)]) for _ in self.dec]
        self.skip = keras.layers.Conv2D(f, 3, padding="same", activation="relu")
        self.out = keras.layers.Conv2D(3, 3, padding="same")
        self.gate = keras.Sequential([keras.layers.Dense(32, activation="relu"),
                                      keras.layers.Dense(32, activation="relu"),
                                      keras.layers.Dense(1)])

    def conditioning(self, qp, rate, snr_db, precoder: SVDPrecoder) -> tf.Tensor:
        """``[B, 3 + S]`` float32 conditioning vector."""
        eff_db = 10.0 * tf.math.log(tf.maximum(precoder.stream_snr, 1e-3)) / np.log(10.0)
        return tf.concat([normalized_qp(qp), tf.reshape(tf.cast(rate, tf.float32), [-1, 1]),
                          tf.reshape(tf.cast(snr_db, tf.float32), [-1, 1]) / 20.0,
                          eff_db / 20.0], axis=1)

    def parts(self, images, qp, rate, snr_db, h) -> tuple[tf.Tensor, tf.Tensor]:
        """``(image path [B, H, W, 3] in [0, 1], delivery logit [B])``."""
        images = tf.convert_to_tensor(images, tf.float32)
        h = tf.convert_to_tensor(h, tf.complex64)
        batch = tf.shape(images)[0]
        nt = h.shape[-1]
        snr_db = tf.broadcast_to(tf.cast(snr_db, tf.float32), [batch])
        precoder = SVDPrecoder(h, nt / tf.pow(10.0, snr_db / 10.0))
        c = self.conditioning(tf.broadcast_to(tf.cast(qp, tf.float32), [batch]),
                              tf.broadcast_to(tf.cast(rate, tf.float32), [batch]), snr_db, precoder)
        z = images
        for layer in self.enc:
            z = layer(z)
        shape = tf.shape(z)
        sym = tf.complex(z[..., : self.latent], z[..., self.latent:])
        s = precoder.num_streams
        sym = tf.reshape(sym, [batch, s, -1])
        power = tf.reduce_mean(tf.abs(sym) ** 2, axis=[1, 2], keepdims=True)
        sym = sym / tf.complex(tf.sqrt(power + 1e-9), 0.0)
        no_eff = tf.minimum(tf.math.divide_no_nan(
            precoder.no[:, tf.newaxis], precoder.s**2 * precoder.power), _MAX_NO_EFF)
        no_eff = tf.where(precoder.power > 0, no_eff, _MAX_NO_EFF)[..., tf.newaxis]
        std = tf.sqrt(no_eff / 2.0)
        noise = tf.complex(tf.random.normal(tf.shape(std * tf.math.real(sym))) * std,
                           tf.random.normal(tf.shape(std * tf.math.real(sym))) * std)
        sym = tf.reshape(sym + noise, tf.concat([shape[:-1], [self.latent]], axis=0))
        z = tf.concat([tf.math.real(sym), tf.math.imag(sym)], axis=-1)
        for layer, cond in zip(self.dec, self.cond, strict=True):
            z = layer(z) * (1.0 + cond(c)[:, tf.newaxis, tf.newaxis, :])
        z = z + self.skip(images)
        decoded = tf.clip_by_value(images + self.out(z), 0.0, 1.0)
        return decoded, self.gate(tf.concat([c, self.margin(rate, precoder)[:, tf.newaxis]], 1))[:, 0]

    @staticmethod
    def margin(rate, precoder: SVDPrecoder) -> tf.Tensor:
        """``[B]`` outage margin in bits per channel use: the Gaussian capacity of the
        water-filled streams, ``sum_i log2(1 + s_i^2 p_i / no)``, minus what the chain
        sends, ``2 R S`` (QPSK at code rate ``R`` on ``S`` streams)."""
        capacity = tf.reduce_sum(tf.math.log(1.0 + precoder.stream_snr), axis=1) / np.log(2.0)
        sent = 2.0 * tf.cast(rate, tf.float32) * float(precoder.num_streams)
        return capacity - tf.broadcast_to(sent, tf.shape(capacity))

    def call(self, images, qp, rate, snr_db, h, fallback=None, training=False):
        decoded, logit = self.parts(images, qp, rate, snr_db, h)
        if fallback is None:
            fallback = tf.fill(tf.shape(decoded)[1:], 0.5)
        p = tf.sigmoid(logit)[:, tf.newaxis, tf.newaxis, tf.newaxis]
        return p * decoded + (1.0 - p) * tf.cast(fallback, tf.float32)

    def get_config(self):
        return {"filters": self.filters, "latent": self.latent}
