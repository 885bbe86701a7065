"""SwinJSCC with SNR adaptation and rate adaptation (SA&RA) on the shared MIMO link.

Encoder and decoder are the reference system's Swin stacks
(:class:`semsim.semantic.swin.SwinEncoder` / :class:`~semsim.semantic.swin.SwinDecoder`,
same default dimensions), producing ``C`` latent channels at ``H/f x W/f`` (``f = 4``).

* **SNR adaptation** (:class:`SNRModulator`): a chain of small MLPs of the SNR (dB)
  ``e_0 = snr, e_i = relu(W_i [e_{i-1}, snr])`` ends in ``sigmoid(W e)``: channel-wise
  scales ``[B, C]`` multiplying the latent (one chain at the transmitter, one at the
  receiver, both fed the fed-back SNR estimate ``ChannelState.snr_hat_db``).
* **Rate adaptation** (:class:`RateModulator`): an MLP of ``[mean-pooled latent, SNR,
  target CR]`` scores the ``C`` channels; the latent is scaled by ``sigmoid(score)``
  (so the scores learn) and the ``k`` best-scored channels are kept, ``k = round(48 CR)``
  for ``f = 4`` (CR = ``k (H/f)(W/f) / (3HW) = k / (3 f^2)``). The binary channel mask
  (``C`` bits, per-image extra ``"channel_mask"`` as an integer) is side information
  assumed known at the receiver, not included in CR and reported as ``side_info_bits``
  (its entropy over the test set, :func:`semsim.systems.base.side_info_bits`).
* **Link**: channel-major latent ``[B, C, H/f, W/f]`` -> pairs of reals within a channel
  -> :class:`semsim.systems.deepjscc.LatentLink` (power normalization over the kept
  symbols, the given ``h``, the scenario's CSI and LMMSE detector); dropped channels
  are not sent. On a multi-user uplink every user sends its own image (image ``n`` by
  user ``n % K`` in realization ``n // K``, :mod:`semsim.systems.users`), all at the
  batch's CR.

Training draws the target CR per batch uniformly from ``rates`` (channel counts ``k``;
by default every count ``1..C``, so CR steps of ``1 / 48``) and the SNR per image from
the scenario's range (``U[0, 20]`` dB in the papers). Evaluation uses the largest count
of the set whose CR does not exceed the requested ``target_cr`` (so a ``match_cr_of``
comparison never gives SwinJSCC more rate than its target), or the smallest count when
even that one is above the target (CR ``1 / 48`` is the floor: at least one channel is
sent); without a target, ``default_cr`` is matched the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import sionna.phy
import tensorflow as tf

from semsim.phy.spec import link_from_config, link_to_config
from semsim.seeding import first_replica
from semsim.semantic.swin import SwinDecoder, SwinEncoder
from semsim.systems import users as users_lib
from semsim.systems.base import LinkSpec, side_info_summary
from semsim.systems.deepjscc import (
    LatentLink,
    MSEModel,
    build_for_users,
)
from semsim.systems.keras_system import KerasSystem
from semsim.systems.params import SwinJSCCParams


class SNRModulator(keras.layers.Layer):
    """Chain of ``depth`` small MLPs of the SNR -> sigmoid channel scales.

    ``call(snr_db)``: ``[B]`` dB -> ``[B, channels]`` in ``(0, 1)``.
    """

    def __init__(self, channels: int, hidden: int = 32, depth: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.hidden_units, self.depth = int(channels), int(hidden), int(depth)
        self.layers_ = [keras.layers.Dense(self.hidden_units, activation="relu") for _ in range(depth)]
        self.out = keras.layers.Dense(self.channels, activation="sigmoid")

    def build(self, input_shape):
        width = 1
        for layer in self.layers_:
            layer.build((None, width + 1))
            width = self.hidden_units
        self.out.build((None, width))
        self.built = True

    def call(self, snr_db):
        snr = tf.reshape(tf.cast(snr_db, self.compute_dtype), [-1, 1])
        e = snr
        for layer in self.layers_:
            e = layer(tf.concat([e, snr], axis=-1))
        return self.out(e)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "hidden": self.hidden_units,
            "depth": self.depth,
        }


class RateModulator(keras.layers.Layer):
    """Scores the latent channels given content, SNR and target CR; keeps the top ``k``.

    ``call(z, snr_db, target_cr, k)``: ``z`` ``[B, h, w, C]``, ``snr_db``/``target_cr``
    ``[B]``, ``k`` scalar int tensor (channels to keep). Returns ``(z_scaled_masked,
    mask)`` with ``mask`` ``[B, C]`` float32 0/1, exactly ``k`` ones per row.
    """

    def __init__(self, channels: int, hidden: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.hidden_units = int(channels), int(hidden)
        self.hidden = keras.layers.Dense(self.hidden_units, activation="relu")
        self.score = keras.layers.Dense(self.channels)

    def build(self, input_shape):
        self.hidden.build((None, self.channels + 2))
        self.score.build((None, self.hidden_units))
        self.built = True

    def call(self, z, snr_db, target_cr, k):
        context = tf.concat(
            [tf.reduce_mean(z, axis=[1, 2]), tf.reshape(tf.cast(snr_db, z.dtype), [-1, 1]),
             tf.reshape(tf.cast(target_cr, z.dtype), [-1, 1])],
            axis=-1,
        )
        scores = self.score(self.hidden(context))  # [B, C]
        _, top = tf.math.top_k(scores, k=k)
        mask = tf.reduce_sum(tf.one_hot(top, self.channels), axis=1)
        return z * (tf.sigmoid(scores) * tf.cast(mask, scores.dtype))[:, None, None, :], mask

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "hidden": self.hidden_units}


@keras.saving.register_keras_serializable(package="semsim")
class SwinJSCC(MSEModel):
    """SwinJSCC SA&RA over a MIMO link (see the module docstring).

    Parameters
    ----------
    link : LinkSpec
    channels : int
        Latent channels ``C`` (CR_max = ``C / 48``).
    rates : sequence of int or None
        Kept-channel counts ``k`` trained on (each ``1 <= k <= C``); ``None``: all of
        ``1..C``.
    default_cr : float
        CR evaluated when the inputs hold no ``"target_cr"``.
    encoder_dims, encoder_depths, encoder_heads, decoder_dims, decoder_depths,
    decoder_heads, window_size, patch_size, mlp_ratio : Swin stack sizes.
    hidden : int
        Width of the SNR/rate modulator MLPs.

    ``call(inputs)``: ``"image"`` ``[B, H, W, 3]``, ``"snr_db"`` ``[B]``, optional ``"h"``,
    optional ``"target_cr"`` ``[B]`` (the batch uses the largest set count whose CR is at
    most its first entry, see :meth:`rate_for`). Returns ``"image_hat"``, ``"cr"`` ``[B]``
    (real symbols that entered the channel / ``3HW``), ``"kept_maps"`` ``[B]`` (``k``) and
    ``"channel_mask"`` ``[B]`` (the kept channels as the integer ``sum_i m_i 2^i``).
    """

    def __init__(
        self,
        link: LinkSpec,
        channels: int = 16,
        rates: Sequence[int] | None = None,
        default_cr: float = 1 / 6,
        encoder_dims: Sequence[int] = (96, 128),
        encoder_depths: Sequence[int] = (2, 4),
        encoder_heads: Sequence[int] = (6, 8),
        decoder_dims: Sequence[int] = (128, 96),
        decoder_depths: Sequence[int] = (2, 4),
        decoder_heads: Sequence[int] = (8, 6),
        window_size: int = 4,
        patch_size: int = 2,
        mlp_ratio: float = 4.0,
        hidden: int = 32,
        **kwargs,
    ):
        super().__init__(**kwargs)
        rates = list(range(1, int(channels) + 1)) if rates is None else sorted({int(r) for r in rates})
        if not rates or rates[0] < 1 or rates[-1] > channels:
            raise ValueError(f"rates must be channel counts in [1, channels={channels}]; got {rates}")
        self.link = link = link_from_config(link)
        self.channels, self.rates, self.default_cr = int(channels), rates, float(default_cr)
        self.sizes = dict(
            encoder_dims=list(encoder_dims), encoder_depths=list(encoder_depths),
            encoder_heads=list(encoder_heads), decoder_dims=list(decoder_dims),
            decoder_depths=list(decoder_depths), decoder_heads=list(decoder_heads),
            window_size=int(window_size), patch_size=int(patch_size), mlp_ratio=float(mlp_ratio),
        )  # fmt: skip
        self.hidden_units = int(hidden)
        swin = dict(window_size=window_size, patch_size=patch_size, mlp_ratio=mlp_ratio)
        self.encoder = SwinEncoder(channels, encoder_dims, encoder_depths, encoder_heads, **swin)
        self.decoder = SwinDecoder(decoder_dims, decoder_depths, decoder_heads, **swin)
        self.factor = self.encoder.downsampling
        self.tx_snr = SNRModulator(channels, hidden)
        self.rx_snr = SNRModulator(channels, hidden)
        self.rate_mod = RateModulator(channels, 2 * hidden)
        self.latent_link = LatentLink(link)

    def cr_of(self, k: int) -> float:
        """CR of ``k`` kept channels: ``k / (3 f^2)``."""
        return k / (3 * self.factor**2)

    def rate_for(self, target_cr: float) -> int:
        """The largest trained channel count whose CR is at most ``target_cr`` (relative
        tolerance 1e-6), or the smallest count when all are above it."""
        fits = [k for k in self.rates if self.cr_of(k) <= target_cr * (1 + 1e-6)]
        return fits[-1] if fits else self.rates[0]

    def _pick_k(self, inputs, training):
        if "target_cr" in inputs:
            target = tf.reshape(tf.cast(inputs["target_cr"], tf.float32), [-1])[0]
            crs = tf.constant([self.cr_of(k) for k in self.rates], tf.float32)
            fits = tf.reduce_sum(tf.cast(crs <= target * (1 + 1e-6), tf.int64))
            index = tf.maximum(fits - 1, 0)
        elif training:
            # Sionna's generator: seeded, and saved in checkpoints (exact resume); one
            # rate per global batch under a multi-replica strategy (replica 0's draw)
            index = first_replica(
                sionna.phy.config.tf_rng.uniform([], 0, len(self.rates), dtype=tf.int64))
        else:
            return tf.constant(self.rate_for(self.default_cr), tf.int32)
        return tf.gather(tf.constant(self.rates, tf.int32), index)

    def call(self, inputs, training=False):
        image = tf.convert_to_tensor(inputs["image"], tf.float32)
        users_lib.check_batch(image, self.link.users)
        batch = tf.shape(image)[0]
        snr_db = tf.broadcast_to(tf.cast(inputs["snr_db"], tf.float32), [batch])
        k = self._pick_k(inputs, training)
        cr = self.cr_of(1) * tf.cast(k, tf.float32)
        h_lat, w_lat = image.shape[1] // self.factor, image.shape[2] // self.factor
        num_reals = h_lat * w_lat * self.channels
        state = self.latent_link.observe(batch, snr_db, h=inputs.get("h"), num_reals=num_reals)
        snr_hat = self.latent_link.image_snr_hat(state)
        z = self.encoder(image) * self.tx_snr(snr_hat)[:, None, None, :]
        z, mask = self.rate_mod(z, snr_hat, tf.fill([batch], cr), k)
        sent = tf.broadcast_to(mask[:, :, None, None], [batch, self.channels, h_lat, w_lat])
        z_hat, sent_reals = self.latent_link.send(tf.transpose(z, [0, 3, 1, 2]), state, snr_db,
                                                  sent=sent)
        z_hat = tf.transpose(z_hat, [0, 2, 3, 1]) * tf.cast(mask, z_hat.dtype)[:, None, None, :]
        z_hat = z_hat * self.rx_snr(snr_hat)[:, None, None, :]
        return {
            "image_hat": tf.cast(self.decoder(z_hat), tf.float32),
            "cr": sent_reals / float(3 * image.shape[1] * image.shape[2]),
            "kept_maps": tf.fill([batch], tf.cast(k, tf.float32)),
            "channel_mask": tf.reduce_sum(mask * 2.0 ** tf.range(self.channels, dtype=tf.float32), -1),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "link": link_to_config(self.link),
            "channels": self.channels,
            "rates": self.rates,
            "default_cr": self.default_cr,
            "hidden": self.hidden_units,
            **self.sizes,
        }


def build_swinjscc(params: SwinJSCCParams, link: LinkSpec, image_size, seed: int) -> KerasSystem:
    """SwinJSCC with SNR and rate adaptation (SA&RA) on the same MIMO link."""
    options = params.model_dump()
    eval_batch_size = options.pop("eval_batch_size")
    if eval_batch_size % link.users:
        raise ValueError(f"eval_batch_size ({eval_batch_size}) must be a multiple of "
                         f"link.users ({link.users})")
    model = SwinJSCC(link, **options)
    build_for_users(model, link, image_size)
    return KerasSystem(model, "swinjscc", eval_batch_size=eval_batch_size,
                       summarize=side_info_summary("channel_mask"))
