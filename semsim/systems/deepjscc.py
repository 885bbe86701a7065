"""Fixed-rate Deep JSCC and ADJSCC baselines on the shared MIMO link.

Deep JSCC (Bourtsoulatze et al., 2019): a convolutional autoencoder whose latent is the
channel input. Encoder: five 5x5 convolutions with PReLU, the first two with stride 2,
the last with ``c`` output channels; decoder: the mirror image with transposed
convolutions and a sigmoid output. ADJSCC (Xu et al., 2021) adds an *attention feature*
(AF) module after every layer but the last of both stacks: global average pooling of the
features, concatenated with the SNR in dB, through ``Dense(hidden, ReLU)`` and
``Dense(C, sigmoid)``, scales the feature channels (``hidden = max(4, C // 4)``).

Channel mapping (:class:`LatentLink`)
    The latent ``[B, H/4, W/4, c]`` of each image is flattened (row-major) into ``2N``
    reals, ``N = H W c / 32``, and laid out by :func:`semsim.phy.layout.pack_reals`, the
    layout of every system: kept reals (all of them here; a ``sent`` mask selects them for
    systems that drop some, e.g. SwinJSCC) are compacted, paired into complex symbols
    (``z[2i] + j z[2i+1]``) and dealt over the ``A`` transmit antennas of the image's
    sender, symbol ``n`` on antenna ``n mod A`` in channel use ``n // A``
    (``L = ceil(N / A)``). Single user: ``A = Nt``, the block is ``[B, Nt, L]``.
    Multi-user uplink (``K`` users of ``A`` antennas): image ``n`` is sent by user ``n % K``
    in channel realization ``n // K`` (:mod:`semsim.systems.users`), so the block is
    ``[B/K, K, A, L]``, every user sending its own image, with one power constraint per
    user. :class:`semsim.phy.AnalogLink` normalizes the power per image over the sent
    symbols, applies the channel (the given ``h`` of each realization or a fresh draw)
    and detects all users jointly with the scenario's CSI and detector (LMMSE). The
    ADJSCC receiver and transmitter use the fed-back SNR estimate of the image's
    realization (``ChannelState.snr_hat_db``).

CR = the real symbols that entered the channel layer (``sent_reals`` of
:class:`semsim.phy.Transmission`) / ``3HW``; for Deep JSCC ``2N / (3HW) = c / 48``
(pilots are not counted).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from semsim.phy import AnalogLink, layout
from semsim.phy.spec import LinkSpec, link_from_config, link_to_config
from semsim.systems import users as users_lib
from semsim.systems.keras_system import KerasSystem, LossModel
from semsim.systems.params import DeepJSCCParams

#: Spatial down-sampling factor of the Deep JSCC encoder (two stride-2 convolutions).
DOWNSAMPLING = 4


def channels_for_cr(cr: float) -> int:
    """Latent channels ``c`` whose CR ``c / 48`` is nearest to ``cr`` (at least 1).

    ``c`` channels at ``H/4 x W/4`` are ``HWc/16`` reals, i.e. CR ``c / (3 * 16)``.
    """
    if not 0 < cr <= 1:
        raise ValueError(f"cr must lie in (0, 1]; got {cr!r}")
    return max(1, round(cr * 3 * DOWNSAMPLING**2))


def _static_size(z) -> int:
    """Number of entries per example of ``z`` (its non-batch shape must be static)."""
    dims = z.shape[1:]
    if any(d is None for d in dims):
        raise ValueError(f"the latent's non-batch shape must be static; got {z.shape}")
    size = 1
    for d in dims:
        size *= int(d)
    return size


class LatentLink(keras.layers.Layer):
    """Real latent ``[N, ...]`` per image -> complex symbols on the MIMO link -> detected latent.

    See the module docstring for the layout. ``call(z, snr_db, h=None)`` with ``z``
    float32 ``[N, *shape]`` (``2N`` reals per image), ``snr_db`` ``[N]`` (dB), ``h``
    optional complex64 ``[N, Nr, Nt]`` per image (multi-user: realization ``b`` uses
    ``h[b K]``); returns ``(z_hat, state)`` with ``z_hat`` like ``z`` and the
    :class:`semsim.phy.ChannelState` used (one entry per realization, ``N / K``).
    :meth:`send` also returns the real symbols of each image that entered the channel.
    Use :meth:`observe` / :meth:`send` separately when the transmitter needs the state,
    and :meth:`image_snr_hat` for the fed-back SNR estimate of each image.
    """

    def __init__(self, link: LinkSpec, **kwargs):
        super().__init__(**kwargs)
        self.link = link
        self.analog = AnalogLink(link)

    def observe(self, num_images, snr_db, h=None, num_reals=None):
        """Channel state (fed-back CSI and SNR estimate) of the ``N / K`` realizations of a
        batch of ``num_images`` images; ``num_reals`` (reals per image) is needed for fast
        fading only."""
        users = self.link.users
        num_symbols = None
        if self.link.fading == "fast":
            num_symbols = layout.num_channel_uses((num_reals + 1) // 2,
                                                  self.link.antennas_per_user)
        snr = users_lib.realization_snr(snr_db, num_images, users)
        return self.analog.observe(tf.shape(snr)[0], snr, h=users_lib.realization_h(h, users),
                                   num_symbols=num_symbols)

    def image_snr_hat(self, state):
        """The fed-back SNR estimate (dB) of every image, ``[N]``."""
        return users_lib.per_image(state.snr_hat_db, self.link.users)

    def send(self, z, state, snr_db, sent=None):
        """Send the reals ``z`` ``[N, *shape]``; ``sent`` optional ``[N, *shape]`` 0/1 mask
        of the reals actually sent; ``snr_db`` ``[N]`` or scalar (dB). Returns ``(z_hat,
        sent_reals)``: ``z_hat`` like ``z`` (unsent reals 0, ``z``'s dtype) and the real
        symbols of each image that entered the channel, ``[N]`` float32. Under mixed
        precision ``z`` may be float16/bfloat16: the channel gets it as float32 (complex64
        symbols) and ``z_hat`` is cast back."""
        compute_dtype = z.dtype
        z = tf.cast(z, tf.float32)
        num_reals = _static_size(z)
        shape = tf.shape(z)
        flat = tf.reshape(z, [shape[0], num_reals])
        keep = None if sent is None else tf.reshape(tf.cast(sent, tf.float32), [shape[0], num_reals])
        x, mask = layout.pack_reals(flat, self.link.antennas_per_user, keep)  # [N, A, L]
        users = self.link.users
        if users > 1:
            x, mask = users_lib.group(x, users), users_lib.group(mask, users)
        snr = users_lib.realization_snr(snr_db, shape[0], users)
        x_hat, _, _, sent_reals = self.analog.transmit(x, state, snr, mask=mask)
        x_hat = tf.reshape(x_hat, [shape[0], self.link.antennas_per_user, -1])
        z_hat = layout.unpack_reals(x_hat, num_reals, keep)
        return tf.cast(tf.reshape(z_hat, shape), compute_dtype), tf.reshape(sent_reals, [shape[0]])

    def build(self, input_shape):
        self.built = True  # the analog link has no weights

    def call(self, z, snr_db, h=None):
        state = self.observe(tf.shape(z)[0], snr_db, h=h, num_reals=_static_size(z))
        return self.send(z, state, snr_db)[0], state


def build_for_users(model: keras.Model, link: LinkSpec, image_size) -> None:
    """Create the weights of a learned system with one forward pass on ``link.users`` blank
    ``image_size`` images (the smallest batch a multi-user link accepts)."""
    users = link.users
    model({"image": tf.zeros([users, *image_size, 3]), "snr_db": tf.fill([users], 10.0)},
          training=False)


class AttentionFeature(keras.layers.Layer):
    """ADJSCC's AF module: ``x * sigmoid(W2 relu(W1 [GAP(x), snr_db]))``.

    ``call(x, snr_db)``: ``x`` ``[B, H, W, C]`` float32, ``snr_db`` ``[B]`` (dB);
    returns ``x`` scaled per channel, same shape.
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.hidden = keras.layers.Dense(max(4, self.channels // 4), activation="relu")
        self.gate = keras.layers.Dense(self.channels, activation="sigmoid")

    def build(self, input_shape):
        self.hidden.build((input_shape[0], self.channels + 1))
        self.gate.build((input_shape[0], self.hidden.units))
        self.built = True

    def call(self, x, snr_db):
        context = tf.concat([tf.reduce_mean(x, axis=[1, 2]), tf.reshape(snr_db, [-1, 1])], -1)
        return x * self.gate(self.hidden(context))[:, None, None, :]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


class MSEModel(LossModel):
    """A learned system trained on the image MSE (``train_step``/``test_step`` take the
    inputs dict of :mod:`semsim.systems.keras_system`; metrics ``loss`` = MSE, ``psnr``)."""

    def _loss(self, data, training):
        out = self(data, training=training)
        mse = tf.reduce_mean(tf.square(data["image"] - out["image_hat"]))
        return mse, {"loss": mse, "psnr": -10.0 * tf.math.log(mse) / tf.math.log(10.0)}


@keras.saving.register_keras_serializable(package="semsim")
class DeepJSCC(MSEModel):
    """Deep JSCC (``snr_attention=False``) or ADJSCC (``True``) over a MIMO link.

    Parameters
    ----------
    link : LinkSpec
    latent_channels : int
        ``c``; CR = ``c / 48``.
    filters : (int, int, int, int)
        Output channels of the first four encoder layers (paper: 16, 32, 32, 32); the
        decoder mirrors them.
    kernel_size : int
    snr_attention : bool
        Insert AF modules (ADJSCC).

    Inputs/outputs follow :mod:`semsim.systems.keras_system` (``"image"`` ``[B, H, W, 3]``,
    ``H`` and ``W`` multiples of 4; ``"snr_db"`` ``[B]``; optional ``"h"``;
    ``"target_cr"`` is ignored: the rate is fixed). Outputs ``"image_hat"``, ``"cr"``.
    """

    def __init__(
        self,
        link: LinkSpec,
        latent_channels: int = 8,
        filters: tuple[int, ...] = (16, 32, 32, 32),
        kernel_size: int = 5,
        snr_attention: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(filters) != 4 or min(filters) < 1:
            raise ValueError(f"filters must be four positive integers; got {filters!r}")
        if latent_channels < 1:
            raise ValueError(f"latent_channels must be >= 1; got {latent_channels!r}")
        self.link = link = link_from_config(link)
        self.latent_channels = int(latent_channels)
        self.filters = tuple(int(f) for f in filters)
        self.kernel_size = int(kernel_size)
        self.snr_attention = bool(snr_attention)
        enc_out = [*self.filters, self.latent_channels]
        dec_out = [*self.filters[::-1], 3]
        strides = [2, 2, 1, 1, 1]
        conv = dict(kernel_size=self.kernel_size, padding="same")
        self.encoder_layers = [
            keras.layers.Conv2D(f, strides=s, **conv) for f, s in zip(enc_out, strides, strict=True)
        ]
        self.decoder_layers = [
            keras.layers.Conv2DTranspose(f, strides=s, **conv)
            for f, s in zip(dec_out, strides[::-1], strict=True)
        ]
        self.encoder_acts = [keras.layers.PReLU(shared_axes=[1, 2]) for _ in enc_out]
        self.decoder_acts = [keras.layers.PReLU(shared_axes=[1, 2]) for _ in dec_out[:-1]]
        self.encoder_af = []
        self.decoder_af = []
        if self.snr_attention:
            self.encoder_af = [AttentionFeature(f) for f in enc_out[:-1]]
            self.decoder_af = [AttentionFeature(f) for f in dec_out[:-1]]
        self.latent_link = LatentLink(link)

    def build(self, input_shape):
        """Create all weights from ``input_shape["image"]`` (``[B, H, W, 3]``)."""
        shape = tuple(input_shape["image"])
        for stack, acts, afs in (
            (self.encoder_layers, self.encoder_acts, self.encoder_af),
            (self.decoder_layers, self.decoder_acts, self.decoder_af),
        ):
            for i, layer in enumerate(stack):
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
                if i < len(acts):
                    acts[i].build(shape)
                if i < len(afs):
                    afs[i].build(shape)
        self.built = True

    def encode(self, image, snr_db):
        """``[B, H, W, 3]`` -> latent ``[B, H/4, W/4, c]`` (before power normalization)."""
        x = image
        for i, (layer, act) in enumerate(zip(self.encoder_layers, self.encoder_acts, strict=True)):
            x = act(layer(x))
            if self.snr_attention and i < len(self.encoder_af):
                x = self.encoder_af[i](x, snr_db)
        return x

    def decode(self, z, snr_db):
        """Detected latent ``[B, H/4, W/4, c]`` -> image ``[B, H, W, 3]`` in ``[0, 1]``,
        float32 whatever the compute dtype of the layers."""
        x = z
        for i, layer in enumerate(self.decoder_layers[:-1]):
            x = self.decoder_acts[i](layer(x))
            if self.snr_attention:
                x = self.decoder_af[i](x, snr_db)
        return tf.sigmoid(tf.cast(self.decoder_layers[-1](x), tf.float32))

    def call(self, inputs, training=False):
        image = tf.convert_to_tensor(inputs["image"], tf.float32)
        height, width = image.shape[1], image.shape[2]
        if height % DOWNSAMPLING or width % DOWNSAMPLING:
            raise ValueError(f"image height and width must be multiples of 4; got {image.shape}")
        users_lib.check_batch(image, self.link.users)
        batch = tf.shape(image)[0]
        snr_db = tf.broadcast_to(tf.cast(inputs["snr_db"], tf.float32), [batch])
        num_reals = height * width * self.latent_channels // DOWNSAMPLING**2
        state = self.latent_link.observe(batch, snr_db, h=inputs.get("h"), num_reals=num_reals)
        snr_hat = self.latent_link.image_snr_hat(state)
        z = self.encode(image, snr_hat)
        z_hat, sent_reals = self.latent_link.send(z, state, snr_db)
        image_hat = self.decode(z_hat, snr_hat)
        return {"image_hat": image_hat, "cr": sent_reals / float(3 * height * width)}

    def get_config(self):
        return {
            **super().get_config(),
            "link": link_to_config(self.link),
            "latent_channels": self.latent_channels,
            "filters": list(self.filters),
            "kernel_size": self.kernel_size,
            "snr_attention": self.snr_attention,
        }


def _build(params: DeepJSCCParams, link: LinkSpec, image_size, attention: bool, name: str) -> KerasSystem:
    if params.eval_batch_size % link.users:
        raise ValueError(f"eval_batch_size ({params.eval_batch_size}) must be a multiple of "
                         f"link.users ({link.users})")
    model = DeepJSCC(
        link,
        latent_channels=channels_for_cr(params.cr),
        filters=params.filters,
        kernel_size=params.kernel_size,
        snr_attention=attention,
    )
    build_for_users(model, link, image_size)
    snr_range = None if params.train_snr_db is None else (params.train_snr_db,) * 2
    return KerasSystem(model, name, snr_range_db=snr_range, eval_batch_size=params.eval_batch_size)


def build_deepjscc(params: DeepJSCCParams, link: LinkSpec, image_size, seed: int) -> KerasSystem:
    """Fixed-rate Deep JSCC (conv autoencoder, PReLU, per-image power normalization)."""
    return _build(params, link, image_size, attention=False, name="deepjscc")


def build_adjscc(params: DeepJSCCParams, link: LinkSpec, image_size, seed: int) -> KerasSystem:
    """ADJSCC: Deep JSCC with SNR attention-feature modules."""
    return _build(params, link, image_size, attention=True, name="adjscc")
