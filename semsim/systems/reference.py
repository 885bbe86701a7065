"""The reference system: channel- and content-adaptive Swin deep JSCC over a MIMO link.

Data flow for one image ``X`` ``[H, W, 3]`` (``f = patch_size * 2**(stages - 1)``, 4 by default):

1. The receiver feeds back ``H_hat`` ``[Nr, Nt]`` and the SNR estimate
   (:meth:`semsim.phy.AnalogLink.observe`); :class:`ChannelStateEncoder` maps them to ``c``
   (``channel_embed_dim``, 32).
2. :class:`SwinEncoder` (CCAM after every block, conditioned on ``c``) gives ``Z0``
   ``[h, w, C]`` with ``h = H / f``, ``w = W / f``: ``C`` feature maps of ``N = h w`` real
   symbols each (symbol index ``j = row * w + col``).
3. :func:`entropy_2d` of each map (no gradient) -> ``EN`` ``[C]``; ``MLP(concat(EN, c))`` ->
   ``e`` (``entropy_embed_dim``, 64).
4. Policy 1 (:class:`CountPolicy`, ``C + 1`` choices) on ``concat(mean_j Z0, e)`` -> map mask
   ``m1`` ``[C]`` (prefix of ones).
5. Policy 2 (``N + 1`` choices) on ``concat(mean_i m1_i Z0_i, e)`` (mean over all ``C`` maps of
   the masked maps) -> symbol mask ``m2`` ``[N]``, shared by all maps. ``M[i, j] = m1[i] m2[j]``.
6. Transmit arrangement (:mod:`semsim.phy.layout`, the layout of every system): the kept
   reals of ``Z0 * M``, map-major, are compacted, paired into ``ceil(k1 k2 / 2)`` complex
   symbols and dealt round-robin over the antennas (symbol ``u`` on antenna ``u % Nt`` at
   channel use ``u // Nt``); pruned positions take no channel use, and only sent entries
   count in the power normalization. Detection is LMMSE (or ZF) with ``H_hat``; the
   receiver undoes the arrangement and zero-pads the pruned positions (it knows ``M`` from
   the side information).
7. Compensation slot (``"none"``: identity) -> :class:`SwinDecoder` (mirror, CCAM on ``c``)
   -> ``X_hat`` in ``(0, 1)``.

Gradients: the policies' masks are straight-through (exact 0/1 forward). The sent values
carry their own gradient through the channel, but the masks' gradient does not pass through
the PHY's power normalization: through it, "keep one map more" reads as "move power to a
weak map", which the loss always dislikes, and the policies drifted to sending nothing (CR
0 after ~1,000 steps of the `standard` mimo_2x2 profile). Instead every position, sent or
pruned, gets the gradient of its value arriving error-free at the normalization scale (a
zero-valued probe (:func:`~semsim.semantic.policy.mask_probe`, as the multi-user system does for pruned
positions; with nothing sent, the scale of sending everything,
:func:`~semsim.semantic.policy.transmit_scale`). In an 800-step run of that profile the
channel-path gradient drifted to CR 0.075 (3.6 maps) and this one held CR 0.104 (5 maps)
at a higher training PSNR (23.7 vs 23.3 dB at step 700).
Both policies start biased towards keeping most symbols (``policy_prior_slope``): from a
uniform start the untrained decoder makes extra symbols look harmful and the policies
collapse to sending almost nothing.

Rate and side information: CR = the real symbols that entered the channel layer / ``3HW``
= ``2 ceil(k1 k2 / 2) / (3 H W)`` with ``k1`` kept maps and ``k2`` kept symbols per map, so
``CR_max = C / (3 f^2)`` (``C / 48`` for ``f = 4``); the loss's rate term uses
``k1 k2 / (3HW)``, which carries the policies' gradient. The receiver needs
the pair ``(k1, k2)`` (one cut-off index into ``(C + 1)(N + 1)`` choices) to rebuild ``M``;
this side information is excluded from CR and reported separately as ``side_info_bits``
(its empirical entropy over a test set, :func:`semsim.systems.base.side_info_bits`).

Loss: :func:`semsim.semantic.losses.rate_distortion_loss` with ``Z0`` the encoder output
before masking, scaled by the same per-image power-normalization factor as the sent symbols
(so it lives at the receiver's scale), as a fixed target, and ``Z_refined`` the compensation
slot's output.
"""

from __future__ import annotations

import importlib

import keras
import tensorflow as tf

from semsim.phy import AnalogLink, layout
from semsim.phy.spec import link_from_config, link_to_config
from semsim.semantic.channel_state import ChannelStateEncoder
from semsim.semantic.entropy import entropy_2d
from semsim.semantic.losses import SNR_WEIGHTS, rate_distortion_loss
from semsim.semantic.policy import (
    CountPolicy,
    TemperatureAnnealing,
    check_temperatures,
    mask_probe,
    transmit_scale,
)
from semsim.semantic.swin import SwinDecoder, SwinEncoder
from semsim.systems.base import side_info_summary
from semsim.systems.keras_system import KerasSystem, LossModel
from semsim.systems.params import ReferenceParams

TYPE_NAME = "reference"


@keras.saving.register_keras_serializable(package="semsim")
class ReferenceModel(LossModel):
    """The reference system as a Keras model (convention of :mod:`semsim.systems.keras_system`).

    Parameters
    ----------
    params : ReferenceParams | dict
    link : LinkSpec | dict
        Single-user link with block fading or no fading (the transmitter adapts to one
        ``H_hat`` per image).
    image_size : (int, int)
        ``(H, W)``, multiples of the encoder's downsampling factor.
    seed : int
        Seeds the policies' Gumbel noise.

    ``call(inputs, training=False)``: ``inputs`` dict ``"image"`` ``[B, H, W, 3]`` float32 in
    ``[0, 1]``, ``"snr_db"`` ``[B]`` float32 (dB), optional ``"h"`` ``[B, Nr, Nt]`` complex64.
    Returns ``"image_hat"`` ``[B, H, W, 3]``, ``"cr"`` ``[B]``, ``"kept_maps"`` ``[B]`` and
    ``"kept_symbols"`` ``[B]`` (real symbols kept per kept map), all float32.
    """

    def __init__(self, params, link, image_size, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.params = params if isinstance(params, ReferenceParams) else ReferenceParams(**params)
        self.link_spec = link if not isinstance(link, dict) else link_from_config(link)
        if self.link_spec.users != 1:
            raise ValueError(f"the reference system is single-user, got users={link.users}")
        if self.link_spec.fading not in ("block", "none"):
            raise ValueError(
                f"link fading must be 'block' or 'none' (one H_hat per image), got {self.link_spec.fading!r}"
            )
        p = self.params
        check_temperatures(
            p.temperature_initial,
            p.temperature_final,
            p.temperature_anneal_steps,
            p.temperature_schedule,
        )
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.seed = int(seed)
        factor = p.patch_size * 2 ** (len(p.encoder_dims) - 1)
        height, width = self.image_size
        if height % factor or width % factor or min(height, width) < factor:
            raise ValueError(
                f"image_size must be positive multiples of {factor} (patch_size * "
                f"2**(stages - 1)), got {self.image_size}"
            )
        self.grid = (height // factor, width // factor)
        self.num_symbols = self.grid[0] * self.grid[1]
        self.num_tx_ant = self.link_spec.num_tx_ant
        self.analog = AnalogLink(self.link_spec, name="analog_link")
        self.channel_encoder = ChannelStateEncoder(p.channel_embed_dim, p.hidden_units, name="channel_state")
        swin = dict(
            window_size=p.window_size,
            patch_size=p.patch_size,
            mlp_ratio=p.mlp_ratio,
            conditioned=True,
        )
        self.encoder = SwinEncoder(
            p.num_maps, p.encoder_dims, p.encoder_depths, p.encoder_heads, **swin, name="encoder"
        )
        self.decoder = SwinDecoder(p.decoder_dims, p.decoder_depths, p.decoder_heads, **swin, name="decoder")
        self.entropy_mlp = [
            keras.layers.Dense(p.hidden_units, activation="relu", name="entropy_hidden"),
            keras.layers.Dense(p.entropy_embed_dim, name="entropy_out"),
        ]
        self.map_policy = CountPolicy(
            p.num_maps, p.hidden_units, seed, p.policy_prior_slope, name="map_policy"
        )
        self.symbol_policy = CountPolicy(
            self.num_symbols, p.hidden_units, seed + 1, p.policy_prior_slope, name="symbol_policy"
        )
        self.compensation = self._build_compensation()
        self.temperature = self.add_weight(
            name="temperature",
            shape=(),
            initializer=keras.initializers.Constant(p.temperature_initial),
            trainable=False,
        )
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "mse", "rate", "feature", "cr", "psnr")
        }

    def _build_compensation(self):
        p = self.params
        if p.compensation == "none":
            return None
        module = importlib.import_module("semsim.semantic.compensation")
        return module.build_compensation(
            p.compensation,
            num_channels=p.num_maps,
            cond_dim=p.channel_embed_dim,
            grid_size=self.grid,
            **p.compensation_options,
        )

    def build(self, inputs_shape=None):
        """Create every weight with one forward pass on a dummy image (batch of 1)."""
        height, width = self.image_size
        self.forward_with_latents(
            {"image": tf.zeros([1, height, width, 3]), "snr_db": tf.zeros([1])}, training=False
        )

    def _check_inputs(self, inputs) -> None:
        if not isinstance(inputs, dict) or "image" not in inputs or "snr_db" not in inputs:
            raise ValueError("inputs must be a dict with 'image' and 'snr_db' (and optional 'h')")
        unknown = set(inputs) - {"image", "snr_db", "h"}
        if unknown:
            raise ValueError(
                f"unsupported inputs {sorted(unknown)} (the reference system takes image, "
                "snr_db and h; it cannot match a target CR)"
            )
        shape = tuple(inputs["image"].shape[1:])
        if shape != (*self.image_size, 3):
            raise ValueError(
                f"image must be [B, {self.image_size[0]}, {self.image_size[1]}, 3], "
                f"got {inputs['image'].shape}"
            )

    def forward_with_latents(self, inputs, training: bool) -> dict[str, tf.Tensor]:
        self._check_inputs(inputs)
        image = tf.cast(inputs["image"], tf.float32)
        batch = tf.shape(image)[0]
        snr_db = tf.broadcast_to(tf.cast(inputs["snr_db"], tf.float32), [batch])
        c_maps, n_sym = self.params.num_maps, self.num_symbols

        state = self.analog.observe(batch, snr_db, h=inputs.get("h"))
        c = self.channel_encoder(state.h_hat, state.snr_hat_db)
        # the learned blocks may compute in float16/bfloat16 (train.precision); the
        # latent, the entropy, the policies' inputs and the link stay float32
        z0 = tf.cast(self.encoder(image, c), tf.float32)  # [B, h, w, C]
        e = tf.concat([entropy_2d(z0, self.params.entropy_levels), tf.cast(c, tf.float32)],
                      axis=-1)
        e = self.entropy_mlp[1](self.entropy_mlp[0](e))

        maps = tf.reshape(tf.transpose(z0, [0, 3, 1, 2]), [-1, c_maps, n_sym])  # [B, C, N]
        m1, _ = self.map_policy(
            tf.reduce_mean(maps, axis=2), e, temperature=self.temperature, training=training
        )
        selected = maps * m1[:, :, None]
        m2, _ = self.symbol_policy(
            tf.reduce_mean(selected, axis=1), e, temperature=self.temperature, training=training
        )
        mask = m1[:, :, None] * m2[:, None, :]  # [B, C, N]

        z_hat, sent_reals, scale = self.through_link(maps, mask, state, snr_db)
        to_grid = lambda t: tf.transpose(tf.reshape(t, [-1, c_maps, *self.grid]), [0, 2, 3, 1])
        z_refined = to_grid(z_hat)
        if self.compensation is not None:
            z_refined = tf.cast(self.compensation(z_refined, c), tf.float32)
        image_hat = tf.cast(self.decoder(z_refined, c), tf.float32)
        kept_maps, kept_symbols = tf.reduce_sum(m1, -1), tf.reduce_sum(m2, -1)
        height, width = self.image_size
        rate = kept_maps * kept_symbols / (3.0 * height * width)  # carries the policies' gradient
        return {
            "image_hat": image_hat,
            "cr": rate + tf.stop_gradient(sent_reals / (3.0 * height * width) - rate),
            "kept_maps": kept_maps,
            "kept_symbols": kept_symbols,
            "z0": z0 * scale[:, None, None, None],
            "z_refined": z_refined,
        }

    def through_link(self, maps, mask, state, snr_db):
        """Send ``maps * mask`` (``[B, C, N]`` float32 reals, ``mask`` 0/1 with
        straight-through gradients) over the link: the kept reals compacted onto the
        antennas (:mod:`semsim.phy.layout`), detected and put back in place (pruned reals
        0). Returns ``(z_hat [B, C, N], sent_reals [B], scale [B])``, ``scale`` the per-image
        power-normalization factor of the sent values. The sent values carry their own
        gradient through the channel; the mask's gradient comes from a zero-valued probe
        at every position, sent or pruned, as if its value arrived error-free at the PHY's
        power-normalization scale (module docstring)."""
        c_maps, n_sym = self.params.num_maps, self.num_symbols
        keep = tf.stop_gradient(tf.reshape(mask, [-1, c_maps * n_sym]))
        sent_maps = maps * tf.stop_gradient(mask)
        x, sent = layout.pack_reals(tf.reshape(sent_maps, [-1, c_maps * n_sym]), self.num_tx_ant, keep)
        x_hat, _, _, sent_reals = self.analog.transmit(x, state, snr_db, mask=sent)
        z_hat = tf.reshape(layout.unpack_reals(x_hat, c_maps * n_sym, keep), [-1, c_maps, n_sym])
        scale = transmit_scale(
            tf.reduce_sum(tf.square(sent_maps), axis=[1, 2]), tf.reduce_sum(sent, axis=[1, 2]),
            tf.reduce_sum(tf.square(maps), axis=[1, 2]), float((c_maps * n_sym + 1) // 2),
            self.analog.symbol_energy)
        probe = mask_probe(maps * scale[:, None, None], mask, pruned_only=False)
        return z_hat + probe, sent_reals, scale

    def call(self, inputs, training=False):
        out = self.forward_with_latents(inputs, training=bool(training))
        return {k: out[k] for k in ("image_hat", "cr", "kept_maps", "kept_symbols")}

    def loss_terms(self, inputs, out) -> dict[str, tf.Tensor]:
        p = self.params
        return rate_distortion_loss(
            tf.cast(inputs["image"], tf.float32),
            out["image_hat"],
            out["cr"],
            tf.broadcast_to(tf.cast(inputs["snr_db"], tf.float32), tf.shape(out["cr"])),
            out["z0"],
            out["z_refined"],
            p.lam,
            p.mu,
            p.beta,
            p.snr_range_db,
            SNR_WEIGHTS[p.snr_weight],
        )

    def _track_metrics(self, terms, inputs, out) -> dict[str, tf.Tensor]:
        mse = tf.reduce_mean(
            tf.square(tf.cast(inputs["image"], tf.float32) - out["image_hat"]), axis=[1, 2, 3]
        )
        psnr = 10.0 * tf.math.log(1.0 / tf.maximum(mse, 1e-12)) / tf.math.log(10.0)
        values = {**terms, "cr": tf.reduce_mean(out["cr"]), "psnr": tf.reduce_mean(psnr)}
        for name, tracker in self.trackers.items():
            tracker.update_state(values[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _loss(self, data, training):
        out = self.forward_with_latents(data, training=training)
        terms = self.loss_terms(data, out)
        return terms["loss"], self._track_metrics(terms, data, out)

    def training_callbacks(self, steps_per_epoch: int) -> list[keras.callbacks.Callback]:
        """Gumbel-Softmax temperature schedule (constant ``temperature_initial`` by default;
        an annealing schedule counts optimizer steps, so ``steps_per_epoch`` does not
        change it)."""
        p = self.params
        return [
            TemperatureAnnealing(
                p.temperature_initial,
                p.temperature_final,
                p.temperature_anneal_steps,
                p.temperature_schedule,
            )
        ]

    def get_config(self):
        return {
            **super().get_config(),
            "params": self.params.model_dump(mode="json"),
            "link": link_to_config(self.link_spec),
            "image_size": list(self.image_size),
            "seed": self.seed,
        }


def build(params: ReferenceParams, link, image_size: tuple[int, int], seed: int) -> KerasSystem:
    """Channel- and content-adaptive Swin JSCC with learned map selection and symbol pruning
    (2D-entropy-aware Gumbel-Softmax policies) over a MIMO link with LMMSE detection."""
    model = ReferenceModel(params, link, image_size, seed)
    # Built now, as every other learned model: a shipped checkpoint's config hash covers the
    # weight shapes, which are read before training (semsim.weights.shipped).
    model.build()
    return KerasSystem(
        model,
        TYPE_NAME,
        snr_range_db=params.snr_range_db,
        summarize=side_info_summary("kept_maps", "kept_symbols"),
    )
