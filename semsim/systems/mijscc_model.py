"""The MIJSCC / A-MIJSCC transceiver as a Keras model (see :mod:`semsim.systems.mijscc`).

Encoder: three down-sampling residual blocks (:class:`DownResBlock`, stride 2 each)
and a 3x3 convolution with ``c`` output channels: the representation ``z`` is
``[B, H/8, W/8, c]``, i.e. ``2n = H W c / 64`` reals = ``n`` complex symbols per image,
flattened channel-major (``[B, c, H/8, W/8]``: the representation's real ``i`` is channel
``i // (HW/64)``; reals ``2j, 2j+1`` form symbol ``j``). A-MIJSCC's consecutive mask keeps
the first ``k`` symbols, so it drops trailing channels at every position of the grid,
never a region of the image (row-major order would drop the bottom rows).
Decoder: four transposed convolutions (strides 2, 2, 2, 1), each followed by batch
normalization and an activation (PReLU, sigmoid for the last, which outputs the image).

Transmission of ``z`` (per image, on the scenario's link through
:class:`semsim.systems.deepjscc.LatentLink`, i.e. the shared
:class:`semsim.phy.AnalogLink`: per-image power normalization over the sent symbols,
the channel, the scenario's CSI and detector):

* analog (``bits=None``): ``z`` itself, power-normalized;
* quantized (``bits`` 4 or 8): ``z`` on the ``2^q x 2^q`` grid of
  :mod:`semsim.semantic.quantize`, dequantized at the receiver;
* adaptive (A-MIJSCC, after :meth:`MIJSCCModel.enable_adaptive`): the fed-back noise
  variance ``10^(-snr_hat/10)`` of the image's channel gives a consecutive mask of the
  first ``k`` symbols (:class:`semsim.semantic.noise_mask.NoiseMask`); the kept reals
  are re-weighted by :class:`~semsim.semantic.noise_mask.MaskAttention`, only they are
  quantized and sent, the receiver sets the others to zero. In training the mask's
  straight-through gradient multiplies what each real would be received as if sent
  (:meth:`MIJSCCModel._probe`, a second pass over the link without gradient).

Loss (minimized): ``MSE - lambda (mu1 I_global + mu2 I_local)`` with the Deep InfoMax
JS estimates of :mod:`semsim.semantic.infomax` between the image (global) or the
encoder's second feature map ``[B, H/4, W/4, f2]`` (local) and the sent representation
(before quantization); ``+ rate_weight * (k / n)`` in the adaptive stage. Encoder,
decoder and discriminators are trained together on this loss (the discriminators
maximize the same JS estimate the encoder maximizes, as in Deep InfoMax).
CR = sent reals / ``3HW`` = ``c k / (192 n)`` (``c / 192`` when every symbol is sent).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from semsim.phy.spec import LinkSpec, link_from_config, link_to_config
from semsim.semantic import infomax
from semsim.semantic.noise_mask import MaskAttention, NoiseMask
from semsim.semantic.quantize import from_constellation, to_constellation
from semsim.systems import users as users_lib
from semsim.systems.deepjscc import LatentLink
from semsim.systems.keras_system import LossModel

#: Spatial down-sampling of the encoder (three stride-2 residual blocks).
DOWNSAMPLING = 8
#: Batch-norm moving-average momentum: 0.9 so that the evaluation statistics settle
#: within a few hundred steps (short trainings); Keras's 0.99 needs thousands.
BN_MOMENTUM = 0.9


class DownResBlock(keras.layers.Layer):
    """``PReLU(conv3x3(PReLU(conv3x3_stride2(x))) + conv1x1_stride2(x))``:
    ``[B, H, W, C] -> [B, H/2, W/2, filters]``."""

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.conv1 = keras.layers.Conv2D(self.filters, 3, strides=2, padding="same")
        self.conv2 = keras.layers.Conv2D(self.filters, 3, padding="same")
        self.skip = keras.layers.Conv2D(self.filters, 1, strides=2, padding="same")
        self.act1 = keras.layers.PReLU(shared_axes=[1, 2])
        self.act2 = keras.layers.PReLU(shared_axes=[1, 2])

    def build(self, input_shape):
        self.conv1.build(input_shape)
        self.skip.build(input_shape)
        out = self.conv1.compute_output_shape(input_shape)
        self.act1.build(out)
        self.conv2.build(out)
        self.act2.build(out)
        self.built = True

    def call(self, x):
        return self.act2(self.conv2(self.act1(self.conv1(x))) + self.skip(x))

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(input_shape)


@keras.saving.register_keras_serializable(package="semsim")
class MIJSCCModel(LossModel):
    """MIJSCC over a link; ``enable_adaptive()`` turns on the A-MIJSCC mask.

    Parameters
    ----------
    link : LinkSpec
    latent_channels : int
        ``c``; ``n = H W c / 128`` complex symbols per image.
    filters : (int, int, int)
        Channels of the three residual blocks (decoder: mirrored).
    bits : int | None
        Quantizer resolution (4, 8) or ``None`` (analog).
    mi_weight, mu_global, mu_local : float
        ``lambda``, ``mu1``, ``mu2`` of the loss; ``lambda = 0`` is plain Deep JSCC
        (no discriminators are built).
    adaptive : bool
        Build the A-MIJSCC noise encoder and attention (used after ``enable_adaptive``).
    eta, rate_weight : float
        Mask threshold; weight of the kept-symbol ratio ``k / n`` in the adaptive loss.
    image_size : (int, int)
        ``(H, W)``, multiples of 8.

    ``call(inputs, training)`` takes the inputs dict of :mod:`semsim.systems.keras_system`
    and returns ``image_hat`` ``[B, H, W, 3]``, ``cr`` ``[B]``, ``rep_hat`` ``[B, 2n]``
    (the received, dequantized representation, zero where not sent), ``active_ratio``
    ``[B]`` (``k / n``).
    """

    def __init__(self, link: LinkSpec, image_size, latent_channels: int = 16,
                 filters=(32, 64, 128), bits: int | None = None, mi_weight: float = 0.01,
                 mu_global: float = 0.01, mu_local: float = 1.0, adaptive: bool = False,
                 eta: float = 0.5, rate_weight: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        height, width = (int(v) for v in image_size)
        if height % DOWNSAMPLING or width % DOWNSAMPLING:
            raise ValueError(f"image height and width must be multiples of 8; got {image_size}")
        if len(filters) != 3 or min(filters) < 1:
            raise ValueError(f"filters must be three positive integers; got {filters!r}")
        if bits is not None and bits not in (4, 8):
            raise ValueError(f"bits must be 4, 8 or None (analog); got {bits!r}")
        self.link = link_from_config(link)
        self.image_size = (height, width)
        self.latent_channels = int(latent_channels)
        self.filters = tuple(int(f) for f in filters)
        self.bits = bits
        self.mi_weight = float(mi_weight)
        self.mu_global = float(mu_global)
        self.mu_local = float(mu_local)
        self.adaptive = bool(adaptive)
        self.eta = float(eta)
        self.rate_weight = float(rate_weight)
        self.adaptive_active = False
        self.latent_shape = (height // DOWNSAMPLING, width // DOWNSAMPLING, self.latent_channels)
        self.num_reals = self.latent_shape[0] * self.latent_shape[1] * self.latent_channels
        if self.num_reals % 2:
            raise ValueError(f"the representation must hold an even number of reals; "
                             f"got {self.num_reals}")
        self.num_symbols = self.num_reals // 2
        self.blocks = [DownResBlock(f) for f in self.filters]
        self.to_latent = keras.layers.Conv2D(self.latent_channels, 3, padding="same")
        dec_filters = [*self.filters[::-1], 3]
        self.deconvs = [keras.layers.Conv2DTranspose(f, 3, strides=s, padding="same")
                        for f, s in zip(dec_filters, (2, 2, 2, 1), strict=True)]
        self.norms = [keras.layers.BatchNormalization(momentum=BN_MOMENTUM) for _ in dec_filters]
        self.acts = [keras.layers.PReLU(shared_axes=[1, 2]) for _ in dec_filters[:-1]]
        self.latent_link = LatentLink(self.link)
        self.global_d = self.local_d = None
        if self.mi_weight > 0:
            self.global_d = infomax.GlobalDiscriminator()
            self.local_d = infomax.LocalDiscriminator()
        self.noise_mask = self.attention = None
        if self.adaptive:
            self.noise_mask = NoiseMask(self.num_symbols, eta=eta)
            self.attention = MaskAttention(self.num_reals)

    def enable_adaptive(self) -> None:
        """Switch on the A-MIJSCC mask and attention (fine-tuning stage)."""
        if not self.adaptive:
            raise ValueError("this model was built with adaptive=False")
        self.adaptive_active = True

    def get_config(self):
        """Constructor arguments, and ``adaptive_active`` (the A-MIJSCC stage reached),
        so that a saved ``.keras`` model computes what this one does."""
        return {
            **super().get_config(),
            "link": link_to_config(self.link),
            "image_size": list(self.image_size),
            "latent_channels": self.latent_channels,
            "filters": list(self.filters),
            "bits": self.bits,
            "mi_weight": self.mi_weight,
            "mu_global": self.mu_global,
            "mu_local": self.mu_local,
            "adaptive": self.adaptive,
            "eta": self.eta,
            "rate_weight": self.rate_weight,
            "adaptive_active": self.adaptive_active,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        active = config.pop("adaptive_active", False)
        model = cls(**config)
        if active:
            model.enable_adaptive()
        return model

    # ---- the representation's order ------------------------------------------------------
    def grid_to_reals(self, z):
        """Latent ``[B, H/8, W/8, c]`` -> representation ``[B, 2n]``, channel-major."""
        return tf.reshape(tf.transpose(z, [0, 3, 1, 2]), [-1, self.num_reals])

    def reals_to_grid(self, reals):
        """Representation ``[B, 2n]`` (channel-major) -> latent ``[B, H/8, W/8, c]``."""
        height, width, channels = self.latent_shape
        return tf.transpose(tf.reshape(reals, [-1, channels, height, width]), [0, 2, 3, 1])

    # ---- the two ends ----------------------------------------------------------------
    def encode(self, image):
        """``[B, H, W, 3]`` -> ``(features [B, H/4, W/4, f2], z [B, H/8, W/8, c])``."""
        x = image
        features = None
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == 1:
                features = x
        return features, self.to_latent(x)

    def decode(self, z, training=False):
        """Received representation ``[B, H/8, W/8, c]`` -> image ``[B, H, W, 3]`` in ``[0, 1]``."""
        x = z
        for i, (deconv, norm) in enumerate(zip(self.deconvs, self.norms, strict=True)):
            x = norm(deconv(x), training=training)
            x = self.acts[i](x) if i < len(self.acts) else tf.sigmoid(x)
        return x

    def transmit_representation(self, inputs, training=False) -> dict[str, tf.Tensor]:
        """Encoder -> (mask, attention, quantizer) -> link -> receiver's representation.

        Returns ``features``, ``sent_rep`` ``[B, 2n]`` (before quantization), ``rep_hat``
        ``[B, 2n]``, ``mask`` ``[B, 2n]`` (1 where sent), ``symbols`` (what was sent) and
        ``sent_reals`` ``[B]`` (the real symbols that entered the channel layer).
        """
        image = tf.convert_to_tensor(inputs["image"], tf.float32)
        users_lib.check_batch(image, self.link.users)
        batch = tf.shape(image)[0]
        snr_db = tf.broadcast_to(tf.cast(inputs["snr_db"], tf.float32), [batch])
        state = self.latent_link.observe(batch, snr_db, h=inputs.get("h"), num_reals=self.num_reals)
        features, z = self.encode(image)
        raw = rep = self.grid_to_reals(z)
        mask = tf.ones_like(rep)
        if self.adaptive_active:
            noise_var = tf.pow(10.0, -self.latent_link.image_snr_hat(state) / 10.0)
            symbol_mask, _ = self.noise_mask(noise_var, training=training)
            mask = tf.repeat(symbol_mask, 2, axis=1)
            rep = self.attention(rep, mask, noise_var)
        if self.bits is None:
            sent = rep * mask
        else:
            sent, params = to_constellation(rep, self.bits, mask)
        sent_mask = mask if self.adaptive_active else None
        received, sent_reals = self.latent_link.send(sent, state, snr_db, sent=sent_mask)
        if self.bits is not None:
            received = from_constellation(received, self.bits, params)
        rep_hat = received * mask
        if training and self.adaptive_active:
            # Forward: the same value. Backward: d rep_hat / d mask is what each real would
            # be received as if it were sent, so a dropped symbol learns what it would add
            # (with ``received * mask`` a dropped real is received as 0 and its mask entry
            # gets no gradient from the distortion, only the rate term's push down).
            probe = self._probe(raw, state, snr_db)
            rep_hat = received * tf.stop_gradient(mask) + probe * (mask - tf.stop_gradient(mask))
        return {"features": features, "sent_rep": rep, "rep_hat": rep_hat, "mask": mask,
                "symbols": sent, "sent_reals": sent_reals}

    def _probe(self, rep, state, snr_db):
        """Every real of ``rep`` ``[B, 2n]`` quantized, sent and dequantized over the same
        channel ``state`` with fresh noise, as if the mask kept everything; no gradient.
        Training only (a second pass through the link): see :meth:`transmit_representation`."""
        sent, params = to_constellation(tf.stop_gradient(rep), self.bits)
        received, _ = self.latent_link.send(sent, state, snr_db)
        return tf.stop_gradient(from_constellation(received, self.bits, params))

    def call(self, inputs, training=False):
        out = self.transmit_representation(inputs, training=training)
        image_hat = self.decode(self.reals_to_grid(out["rep_hat"]), training=training)
        kept = tf.reduce_sum(out["mask"], axis=1)
        height, width = self.image_size
        # CR: the real symbols that entered the channel layer (counted there) per 3HW
        return {"image_hat": image_hat, "cr": out["sent_reals"] / (3.0 * height * width),
                "rep_hat": out["rep_hat"], "active_ratio": kept / self.num_reals,
                "sent_rep": out["sent_rep"], "features": out["features"]}

    def build(self, input_shape):
        """Create every weight (discriminators, noise encoder and attention included)."""
        height, width = self.image_size
        shape = (None, height, width, 3)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        self.to_latent.build(shape)
        shape = (None, *self.latent_shape)
        for i, (deconv, norm) in enumerate(zip(self.deconvs, self.norms, strict=True)):
            deconv.build(shape)
            shape = deconv.compute_output_shape(shape)
            norm.build(shape)
            if i < len(self.acts):
                self.acts[i].build(shape)
        if self.global_d is not None:
            feat = (height // 4, width // 4, self.filters[1])
            self.global_d(tf.zeros([1, height, width, 3]), tf.zeros([1, self.num_reals]))
            self.local_d(tf.zeros([1, *feat]), tf.zeros([1, self.num_reals]))
        if self.noise_mask is not None:
            self.noise_mask.build((None,))
            self.attention.build((None, self.num_reals))
        self.built = True

    # ---- training ----------------------------------------------------------------------
    def _loss(self, data, training):
        out = self(data, training=training)
        mse = tf.reduce_mean(tf.square(data["image"] - out["image_hat"]))
        metrics = {"psnr": -10.0 * tf.math.log(mse) / tf.math.log(10.0)}
        loss = mse
        if self.global_d is not None:
            mi_g, mi_l = infomax.global_local_mi(self.global_d, self.local_d, data["image"],
                                                 out["features"], out["sent_rep"])
            loss = loss - self.mi_weight * (self.mu_global * mi_g + self.mu_local * mi_l)
            metrics.update(mi_global=mi_g, mi_local=mi_l)
        if self.adaptive_active:
            ratio = tf.reduce_mean(out["active_ratio"])
            loss = loss + self.rate_weight * ratio
            metrics["active_ratio"] = ratio
        metrics.update(loss=loss, mse=mse)
        return loss, metrics
