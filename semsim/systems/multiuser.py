"""Multi-user MIMO semantic communication with entropy-and-channel-adaptive rate control.

After Chen et al., "Semantic Communication with Entropy-and-Channel-Adaptive Rate
Control" (multi-user MIMO): ``K`` single-antenna users send images at the same time to one
``M``-antenna receiver over :class:`semsim.phy.MultiUserUplinkChannel` (block fading); the
receiver estimates ``H`` (scenario CSI: perfect, LS pilots or noisy with
``sigma_e^2 = sigma_n^2``), feeds each user its column ``h_k`` and the SNR back, and
detects all users jointly (LMMSE with the estimate).

Batch layout (the adapter's batch is per *user image*)
------------------------------------------------------
``inputs["image"]`` ``[N, H, W, 3]`` with ``N = B K`` (``N`` must be a multiple of ``K``):
image ``n`` is sent by user ``k = n % K`` in channel realization ``b = n // K``, i.e.
consecutive groups of ``K`` images share one channel. ``snr_db`` ``[N]``: realization
``b`` uses the SNR of its first image ``n = b K``. ``h`` (optional) ``[N, M, K]`` per image:
realization ``b`` uses ``h[b K]``. Every output is per image, in the input order. The
mapping is :mod:`semsim.systems.users`, shared with the baselines of a multi-user scenario.

Transmitter of user ``k`` (weights per user, or shared with ``share_weights``)
--------------------------------------------------------------------------------
* condition ``c_k = [Re h_hat_k, Im h_hat_k, snr_db / 10]`` (``2M + 1`` reals;
  ``[snr_db / 10]`` without CSI feedback);
* CNN encoding module: conv 7x7 (``filters[0]``), conv 3x3 stride 2 (``filters[1]``),
  conv 3x3 stride 2 (``filters[2]``), PReLU: ``H x W`` -> ``H/4 x W/4``;
* channel-adaptive encoding module: 2 x [ResBlock, CBAM-CSI (:mod:`semsim.semantic.cbam`),
  channel-condition adaptive module ``z' = z + CCAM(z, c) = z * s + b + z`` (the paper's
  residual form; ``s, b`` from two MLPs on ``[GAP(z), c]``, :class:`~semsim.semantic.ccam.CCAM`)],
  then conv 3x3 to ``C = num_maps`` real maps ``Z0`` of ``L = HW/16`` values;
* pairing: complex map ``j`` = real map ``2j`` + i real map ``2j+1`` (``C/2`` complex maps,
  each a row of ``2L`` reals: map ``2j``'s ``L`` values, then map ``2j+1``'s);
* P1 (map selection, :class:`~semsim.semantic.policy.CountPolicy`; the paper's Fig. 9):
  features = the row-wise averages of the ``C`` real maps (each map's mean over its ``L``
  positions, ``[C]``) and ``c_k`` (``C + 2M + 1`` inputs) -> 2-layer MLP -> ``C/2 + 1``
  logits over "send ``n`` complex maps", ``n = 0..C/2`` -> Gumbel-Softmax (straight-through)
  -> thermometer mask (the first ``n`` complex maps are sent). With ``entropy_features``
  (an option, not in the paper's figure) the ``C/2`` softmax-normalized 2D entropies of the
  map pairs (:func:`semsim.semantic.entropy.entropy_2d`, no gradient) are appended;
* P2 (pruning ratio; the paper's Fig. 11): the same ``C`` row-wise averages with the
  unselected maps zeroed, and ``c_k`` (``C + 2M + 1`` inputs) -> 2-layer MLP -> one of ``T``
  ratios ``r_t`` (Gumbel-Softmax, straight-through); in every selected complex map the
  ``round(r_t 2L)`` *real values* of smallest magnitude are pruned (``l1`` rule; rounding
  half up, ``floor(r 2L + 1/2)``: 26, 38, 51, 64 of ``2L = 128``; ties in magnitude are
  broken by position, lower index pruned first).

Channel use
-----------
The kept real values of the selected maps are sent compactly (map by map, position order),
consecutive reals paired into one complex symbol (``ceil(kept / 2)`` channel uses per
user), and all users share the channel uses (user ``k``'s ``j``-th symbol interferes with
the other users' ``j``-th). Power is normalized per user over its sent symbols. The
receiver learns where the kept values go from the LDPC-coded index rows of the selected
maps, sent over the same channel (:mod:`semsim.systems.multiuser_index`, which also says
what is control information and how decoding errors count). In training the digital side
channel is taken as error-free (it carries no gradient) and not simulated.

Rate, per user image: ``CPP_k = (ceil(n R_k / 2) + n L'_k) / (HW)`` complex channel uses
per pixel with ``n`` complex maps (``C_k = 2 n`` real maps) sent, ``R_k`` kept reals per
selected complex map and ``L'_k`` its index symbols (``"cpp"``); ``"cr"`` = real symbols
(analog + index) that entered the channel layer (counted by :class:`semsim.phy.AnalogLink`;
in training the index symbols, not simulated, are added as planned) / ``3HW`` =
``2 CPP / 3``. Pilots are not counted.

Receiver, per user: zero-pad the pruned symbols and unselected maps, complex -> real maps,
semantic decoder: MHSA (:mod:`semsim.semantic.mhsa`), conv 3x3 to ``filters[2]``,
2 x [``z + CCAM(z, c)`` (the same residual form as the encoder), ResBlock], transposed
convs to ``filters[1]`` and ``filters[0]`` (stride 2),
conv 5x5 to 3, sigmoid.

Loss (per image, averaged)::

    MSE + alpha * ((R_k / 2 + L'_k) / (2L)) * sum(M_k) - beta * mean_i exp(H_soft(Z0_i))

with ``sum(M_k) = C_k`` (real maps; the rate term without the rounding of the channel-use
count, so that it stays linear in the choices), the entropy term only with
``use_entropy``, and ``H_soft`` the differentiable 2D entropy
(:mod:`semsim.semantic.soft_entropy`, bits). Gumbel temperature ``tau_init *
exp(-tau_decay * epoch)``.

The gradients of the masks (straight-through, and the probe at pruned positions), the
policy warm-up and the staged schedule are :mod:`semsim.systems.multiuser_training`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from semsim.phy import AnalogLink, ChannelState
from semsim.phy.layout import compact, expand
from semsim.phy.ldpc import LDPC5GCodec
from semsim.phy.qam import QAMDemapper, QAMMapper, bits_per_symbol
from semsim.phy.spec import link_from_config, link_to_config
from semsim.semantic.channel_state import channel_features
from semsim.semantic.entropy import entropy_2d
from semsim.semantic.policy import CountPolicy, thermometer_code
from semsim.semantic.soft_entropy import soft_entropy_2d
from semsim.systems import users as users_lib
from semsim.systems.base import LinkSpec, side_info_summary
from semsim.systems.keras_system import KerasSystem, LossModel
from semsim.systems.multiuser_index import send_index_rows
from semsim.systems.multiuser_layers import (
    DOWNSAMPLING,
    GROUPS,
    AdaptiveEncoding,
    CNNEncoding,
    RatioPolicy,
    SemanticDecoder,
    index_code_length,
    magnitude_keep_masks,
    pruned_count,
)
from semsim.systems.multiuser_training import (
    PolicyWarmup,
    StagedSchedule,
    pinned,
    probe_pruned,
    warmup_choice,
)
from semsim.systems.params import RATIOS, MultiUserParams


@keras.saving.register_keras_serializable(package="semsim")
class MultiUserSemCom(LossModel):
    """The multi-user system as one Keras model (see the module docstring).

    Parameters
    ----------
    link : LinkSpec
        ``users = K``, ``antennas_per_user = 1``, ``num_rx_ant = M``, block fading or none.
    image_size : (int, int)
        ``(H, W)`` of the images, multiples of 4 (fixes ``L = HW/16`` and the index code).
    num_maps : int
        ``C`` real feature maps (even).
    filters : (int, int, int)
        CNN encoding module widths (paper: 64, 128, 256); the decoder mirrors them.
    share_weights : bool
        One transmitter/receiver pair for all users instead of one per user.
    policy_units : int
        Hidden units of the P1/P2 MLPs.
    ratios : tuple of float
        P2's pruning ratios, each in ``[0, 1)``.
    alpha, beta : float
        Rate and entropy weights of the loss.
    entropy_levels : int
        Gray levels of the 2D entropy.
    num_heads : int
        MHSA heads.
    tau_init, tau_decay : float
        Gumbel temperature ``tau_init * exp(-tau_decay * epoch)``.
    use_entropy, use_attention, use_csi_feedback, use_pruning : bool
        Ablation switches (the entropy loss term, and the entropy features when
        ``entropy_features``; CBAM-CSI and MHSA; ``h_hat_k`` in the condition; P2 and the
        index side channel).
    entropy_features : bool
        Append the map pairs' normalized 2D entropies to P1's input (not in the paper's
        Fig. 9, whose P1 takes ``C + 2M + 1`` inputs; needs ``use_entropy``).
    index_modulation : str
        QAM of the index side channel (:mod:`semsim.phy.qam`).
    index_code_rate : float
        Target LDPC rate of the index codewords.
    ldpc_iterations : int
        Belief-propagation iterations of the index decoder.
    staged : bool
        Use the paper's staged schedule (else the scenario's learning rate throughout).
    stage_fractions, stage_learning_rates : 4-tuples
        Stage lengths (fractions of the run's epochs, summing to 1) and learning rates.
    policy_warmup : float
        Fraction of the training steps (in ``[0, 1)``) during which the policies do not
        decide: random map counts and ratios (see "Policy warm-up" in
        :mod:`semsim.systems.multiuser_training`).
    policy_prior_slope : float
        Initial bias ramp of P1's logits (:class:`~semsim.semantic.policy.CountPolicy`'s
        ``prior_slope``; > 0 favours sending more maps at the start).
    seed : int | None
        Seed of the Gumbel noise.
    """

    def __init__(
        self,
        link: LinkSpec,
        image_size: tuple[int, int] = (32, 32),
        num_maps: int = 16,
        filters: tuple[int, int, int] = (64, 128, 256),
        share_weights: bool = False,
        policy_units: int = 256,
        ratios: tuple[float, ...] = RATIOS,
        alpha: float = 2e-4,
        beta: float = 1e-5,
        entropy_levels: int = 256,
        num_heads: int = 4,
        tau_init: float = 5.0,
        tau_decay: float = 0.01,
        use_entropy: bool = True,
        use_attention: bool = True,
        use_csi_feedback: bool = True,
        use_pruning: bool = True,
        entropy_features: bool = False,
        index_modulation: str = "64qam",
        index_code_rate: float = 0.75,
        ldpc_iterations: int = 20,
        staged: bool = True,
        stage_fractions: tuple[float, ...] = (0.5, 0.25, 0.125, 0.125),
        stage_learning_rates: tuple[float, ...] = (1e-3, 1e-4, 1e-5, 1e-5),
        policy_warmup: float = 0.3,
        policy_prior_slope: float = 3.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.link = link = link_from_config(link)
        if link.antennas_per_user != 1:
            raise ValueError(f"link.antennas_per_user must be 1 (single-antenna users), "
                             f"got {link.antennas_per_user}")
        if link.fading == "fast":
            raise ValueError("link.fading must be 'block' or 'none' (the transmitter adapts to "
                             "one fed-back channel per image), got 'fast'")
        height, width = (int(v) for v in image_size)
        if height < DOWNSAMPLING or width < DOWNSAMPLING or height % DOWNSAMPLING or width % DOWNSAMPLING:
            raise ValueError(f"image_size must be two positive multiples of 4, got {image_size!r}")
        self.image_size = (height, width)
        self.length = height * width // DOWNSAMPLING**2
        if use_pruning and 2 * self.length < 12:
            raise ValueError(f"pruning needs maps of >= 6 symbols (an index of >= 12 bits for "
                             f"the LDPC code); image_size {image_size!r} gives {self.length}")
        if num_maps < 2 or num_maps % 2:
            raise ValueError(f"num_maps must be an even integer >= 2, got {num_maps}")
        if len(filters) != 3 or min(filters) < 1:
            raise ValueError(f"filters must be three positive integers, got {filters!r}")
        if not ratios or any(not 0.0 <= r < 1.0 for r in ratios):
            raise ValueError(f"ratios must be a non-empty tuple of values in [0, 1), got {ratios!r}")
        if len(stage_fractions) != 4 or len(stage_learning_rates) != 4:
            raise ValueError("stage_fractions and stage_learning_rates must have 4 entries, got "
                             f"{stage_fractions!r}, {stage_learning_rates!r}")
        if min(stage_fractions) < 0 or abs(sum(stage_fractions) - 1.0) > 1e-6:
            raise ValueError(f"stage_fractions must be >= 0 and sum to 1, got {stage_fractions!r}")
        if not 0.0 <= policy_warmup < 1.0:
            raise ValueError(f"policy_warmup must be a fraction of the training steps in [0, 1), "
                             f"got {policy_warmup!r}")
        if tau_init <= 0 or tau_decay < 0:
            raise ValueError(f"tau_init must be > 0 and tau_decay >= 0, got {tau_init}, {tau_decay}")
        self.num_users = link.users
        self.num_maps = int(num_maps)
        self.filters = tuple(int(f) for f in filters)
        self.share_weights = bool(share_weights)
        self.policy_units = int(policy_units)
        self.ratios = tuple(float(r) for r in ratios)
        self.alpha, self.beta = float(alpha), float(beta)
        self.entropy_levels, self.num_heads = int(entropy_levels), int(num_heads)
        self.tau_init, self.tau_decay = float(tau_init), float(tau_decay)
        self.use_entropy, self.use_attention = bool(use_entropy), bool(use_attention)
        self.use_csi_feedback, self.use_pruning = bool(use_csi_feedback), bool(use_pruning)
        if entropy_features and not use_entropy:
            raise ValueError("entropy_features needs use_entropy (the entropy ablation removes "
                             "both the loss term and the features)")
        self.entropy_features = bool(entropy_features)
        self.index_modulation, self.index_code_rate = index_modulation, float(index_code_rate)
        self.ldpc_iterations = int(ldpc_iterations)
        self.staged = bool(staged)
        self.stage_fractions = tuple(float(f) for f in stage_fractions)
        self.stage_learning_rates = tuple(float(r) for r in stage_learning_rates)
        self.policy_warmup = float(policy_warmup)
        self.policy_prior_slope = float(policy_prior_slope)
        self.seed = seed
        self._bps = bits_per_symbol(index_modulation)
        modules = 1 if self.share_weights else self.num_users
        half = self.num_maps // 2
        seeds = [None if seed is None else seed + 2 * u for u in range(modules)]
        self.cnn = [CNNEncoding(self.filters) for _ in range(modules)]
        self.adaptive = [AdaptiveEncoding(self.filters[2], self.num_maps, self.use_attention)
                         for _ in range(modules)]
        self.p1 = [CountPolicy(half, self.policy_units, seed=s,
                               prior_slope=self.policy_prior_slope) for s in seeds]
        self.p2 = [RatioPolicy(len(self.ratios), self.policy_units,
                               seed=None if s is None else s + 1) for s in seeds]
        self.warmup_seed = keras.random.SeedGenerator(
            None if seed is None else seed + 2 * modules, name="warmup_seed")
        self.decoders = [SemanticDecoder(self.filters, self.num_heads, self.use_attention)
                         for _ in range(modules)]
        self.analog = AnalogLink(link)
        self.mapper = QAMMapper(index_modulation)
        self.demapper = QAMDemapper(index_modulation)
        self.codec = None
        if self.use_pruning:
            n = index_code_length(2 * self.length, self.index_code_rate, self._bps)
            self.codec = LDPC5GCodec(2 * self.length, n, num_iter=self.ldpc_iterations)
        self.temperature = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.tau_init), trainable=False,
            name="temperature")
        # 1.0: P1/P2 decide; 0.0 (policy warm-up, training only): random counts and ratios.
        self.policy_on = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(1.0), trainable=False,
            name="policy_on")

    # ------------------------------------------------------------------ helpers
    def group_layers(self, group: str) -> list[keras.layers.Layer]:
        """The layers of a trainable group (``"cnn"``, ``"adaptive"``, ``"p1"``, ``"p2"``)."""
        if group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
        return list(getattr(self, group))

    @property
    def index_symbols_per_map(self) -> int:
        """Index-side-channel QAM symbols ``L'`` per selected map with a ratio > 0."""
        return index_code_length(2 * self.length, self.index_code_rate, self._bps) // self._bps

    def _channel_shape(self, x):
        """``[B, K, P]`` -> what :class:`AnalogLink` expects (``[B, K, 1, P]`` multi-user,
        ``[B, 1, P]`` for one user)."""
        return x[:, :, None, :] if self.num_users > 1 else x

    def through_channel(self, x, mask, state: ChannelState, snr_db, normalize=True):
        """Send user streams ``x`` ``[B, K, P]`` (``mask`` 0/1 of sent entries; compacted, one
        antenna per user, so stream entry ``j`` is channel use ``j``: the layout of
        :mod:`semsim.phy.layout`); returns the detected streams and effective noise variances,
        both ``[B, K, P]``, and the real symbols each user put into the channel ``[B, K]``."""
        shape = tf.shape(x)
        x_hat, no_eff, _, sent_reals = self.analog.transmit(
            self._channel_shape(x), state, snr_db, mask=self._channel_shape(mask),
            normalize=normalize)
        return tf.reshape(x_hat, shape), tf.reshape(no_eff, shape), \
            tf.reshape(sent_reals, [-1, self.num_users])

    def _condition(self, state: ChannelState, snr_db, user: int):
        if self.use_csi_feedback:
            return channel_features(state.h_hat[:, :, user:user + 1], snr_db)
        return tf.reshape(snr_db, [-1, 1]) / 10.0

    # ------------------------------------------------------------------ forward
    def _forward(self, inputs, training):
        image = tf.convert_to_tensor(inputs["image"], tf.float32)
        height, width = image.shape[1], image.shape[2]
        k_users = self.num_users
        if (height, width) != self.image_size:
            raise ValueError(f"images must be {self.image_size}, got shape {image.shape}")
        users_lib.check_batch(image, k_users)
        length = self.length
        groups = users_lib.group(image, k_users)  # [B, K, H, W, 3]
        batch = tf.shape(groups)[0]
        snr_db = users_lib.realization_snr(inputs["snr_db"], tf.shape(image)[0], k_users)
        h = users_lib.realization_h(inputs.get("h"), k_users)
        if h is not None and h.shape.rank != 3:
            raise ValueError(f"h must be [N, M, K] per image (block fading), got shape {h.shape}")
        state = self.analog.observe(batch, snr_db, h=h)
        counts = tuple(pruned_count(r, 2 * length) for r in self.ratios)
        counts_f = tf.constant(counts, tf.float32)
        needs_index = tf.constant([r > 0 for r in self.ratios], tf.float32)
        idx_syms = float(self.index_symbols_per_map) if self.use_pruning else 0.0

        tx = {key: [] for key in ("x", "x_full", "mask", "keep", "map_mask", "z0", "cond", "maps",
                                  "pruned", "index")}
        for k in range(k_users):
            u = 0 if self.share_weights else k
            cond = self._condition(state, snr_db, k)
            # learned blocks may compute in float16/bfloat16 (train.precision); the latent,
            # the entropy, the policies' sampling and the link stay float32
            z0 = tf.cast(self.adaptive[u](self.cnn[u](groups[:, k]), cond), tf.float32)
            rows = tf.transpose(tf.reshape(z0, [-1, length, self.num_maps]), [0, 2, 1])
            x = tf.concat([rows[:, 0::2], rows[:, 1::2]], axis=-1)  # [B, C/2, 2L] reals
            map_means = tf.reduce_mean(rows, axis=2)  # [B, C]: row-wise averages
            feats1 = map_means
            if self.entropy_features:
                ent = tf.nn.softmax(entropy_2d(z0, self.entropy_levels), axis=-1)
                feats1 = tf.concat([feats1, ent[:, 0::2] + ent[:, 1::2]], axis=-1)
            map_mask, _ = self.p1[u](feats1, cond, self.temperature, training=training)
            if training:
                map_mask = pinned(self, map_mask, thermometer_code(
                    warmup_choice(self, batch, self.num_maps // 2 + 1, low=1)))
            if self.use_pruning:
                real_mask = tf.repeat(map_mask, 2, axis=1)  # [B, C]: both reals of a pair
                choice = self.p2[u](map_means * real_mask, cond, self.temperature,
                                    training=training)
                if training:
                    choice = pinned(self, choice, warmup_choice(self, batch, len(self.ratios)))
                keep = tf.einsum("bt,btrl->brl", choice, magnitude_keep_masks(x, counts))
                pruned = tf.linalg.matvec(choice, counts_f)
                index = tf.linalg.matvec(choice, needs_index)
            else:
                keep = tf.ones_like(x)
                pruned = tf.zeros([batch])
                index = tf.zeros([batch])
            mask = map_mask[..., None] * keep  # [B, C/2, 2L]; hard values, ST gradients
            tx["x"].append(tf.reshape(x * mask, [batch, -1]))
            tx["x_full"].append(tf.reshape(x, [batch, -1]))
            tx["mask"].append(tf.reshape(mask, [batch, -1]))
            for key, value in (("keep", keep), ("map_mask", map_mask), ("z0", z0),
                               ("cond", cond), ("maps", tf.reduce_sum(map_mask, axis=-1)),
                               ("pruned", pruned), ("index", index)):
                tx[key].append(value)

        x_all = tf.stack(tx["x"], axis=1)  # [B, K, C L] reals
        mask_all = tf.stack(tx["mask"], axis=1)
        hard_mask = tf.stop_gradient(mask_all)
        stream = compact(x_all, hard_mask)  # kept reals first, then zeros
        stream_mask = compact(hard_mask, hard_mask)
        x_hat, _, sent_reals = self.through_channel(
            tf.complex(stream[..., 0::2], stream[..., 1::2]),
            tf.maximum(stream_mask[..., 0::2], stream_mask[..., 1::2]), state, snr_db)
        x_hat = tf.reshape(tf.stack([tf.math.real(x_hat), tf.math.imag(x_hat)], axis=-1),
                           tf.shape(x_all))
        rx_mask, failed = hard_mask, tf.zeros([batch, k_users])
        if self.use_pruning and not training:
            rx_mask, failed, index_reals = send_index_rows(self, tx, state, snr_db)
            sent_reals = sent_reals + index_reals
        z_hat = expand(x_hat, rx_mask)  # [B, K, C L] reals
        if training:
            z_hat = z_hat + probe_pruned(self, tf.stack(tx["x_full"], axis=1), x_all, mask_all)

        images = []
        for k in range(k_users):
            u = 0 if self.share_weights else k
            rows = tf.reshape(z_hat[:, k], [batch, self.num_maps, length])
            maps = tf.reshape(tf.transpose(rows, [0, 2, 1]),
                              [batch, height // DOWNSAMPLING, width // DOWNSAMPLING,
                               self.num_maps])
            images.append(tf.cast(self.decoders[u](maps, tx["cond"][k]), tf.float32))
        per_image = lambda values: users_lib.ungroup(tf.stack(values, axis=1))  # [B*K]
        n_sel = per_image(tx["maps"])
        kept_reals = n_sel * (2.0 * length - per_image(tx["pruned"]))
        index_uses = n_sel * idx_syms * per_image(tx["index"])
        # Complex channel uses: the kept reals paired (the last one alone when odd).
        channel_uses = tf.math.ceil(kept_reals / 2.0 - 1e-3) + index_uses
        if training and self.use_pruning:  # the index side channel is not simulated
            sent_reals = sent_reals + 2.0 * users_lib.group(index_uses, k_users)
        out = {
            "image_hat": users_lib.ungroup(tf.stack(images, axis=1)),
            "cr": users_lib.ungroup(sent_reals) / (3.0 * height * width),
            "cpp": channel_uses / float(height * width),
            "kept_maps": 2.0 * n_sel,
            "kept_symbols": kept_reals,
            "index_symbols": index_uses,
            "index_bits": n_sel * 2.0 * length * per_image(tx["index"]),
            "prune_ratio": per_image(tx["pruned"]) / (2.0 * length),
            "failed": per_image(tf.unstack(failed, axis=1)),
        }
        # The loss's rate term: the same count without the rounding (linear in the choices).
        aux = {"z0": tf.concat(tx["z0"], axis=0),
               "rate": (kept_reals / 2.0 + index_uses) / float(length),
               "tx_mask": hard_mask, "rx_mask": rx_mask}
        return out, aux

    def build(self, input_shape=None):
        """Create every weight with one forward pass on ``K`` blank images."""
        k = self.num_users
        self._forward({"image": tf.zeros([k, *self.image_size, 3]), "snr_db": tf.fill([k], 10.0)},
                      training=False)
        self.built = True

    def call(self, inputs, training=False):
        return self._forward(inputs, training)[0]

    # ------------------------------------------------------------------ training
    def _loss(self, data, training):
        out, aux = self._forward(data, training)
        image = tf.convert_to_tensor(data["image"], tf.float32)
        mse = tf.reduce_mean(tf.square(image - out["image_hat"]), axis=[1, 2, 3])
        loss = tf.reduce_mean(mse) + self.alpha * tf.reduce_mean(aux["rate"])
        if self.use_entropy:
            loss -= self.beta * tf.reduce_mean(tf.exp(soft_entropy_2d(aux["z0"],
                                                                      self.entropy_levels)))
        mean_mse = tf.reduce_mean(mse)
        return loss, {"loss": loss, "mse": mean_mse,
                      "psnr": -10.0 * tf.math.log(mean_mse) / tf.math.log(10.0),
                      "cpp": tf.reduce_mean(out["cpp"]), "cr": tf.reduce_mean(out["cr"])}

    def training_callbacks(self, steps_per_epoch: int) -> list[keras.callbacks.Callback]:
        """Temperature decay per epoch, (``staged``) the paper's staged schedule and the
        policy warm-up."""
        return [StagedSchedule(self), PolicyWarmup(self)]

    def get_config(self):
        return {
            **super().get_config(),
            "link": link_to_config(self.link), "image_size": list(self.image_size),
            "num_maps": self.num_maps,
            "filters": list(self.filters), "share_weights": self.share_weights,
            "policy_units": self.policy_units, "ratios": list(self.ratios),
            "alpha": self.alpha, "beta": self.beta, "entropy_levels": self.entropy_levels,
            "num_heads": self.num_heads, "tau_init": self.tau_init, "tau_decay": self.tau_decay,
            "use_entropy": self.use_entropy, "use_attention": self.use_attention,
            "use_csi_feedback": self.use_csi_feedback, "use_pruning": self.use_pruning,
            "entropy_features": self.entropy_features,
            "index_modulation": self.index_modulation, "index_code_rate": self.index_code_rate,
            "ldpc_iterations": self.ldpc_iterations, "staged": self.staged,
            "stage_fractions": list(self.stage_fractions),
            "stage_learning_rates": list(self.stage_learning_rates),
            "policy_warmup": self.policy_warmup, "policy_prior_slope": self.policy_prior_slope,
            "seed": self.seed,
        }


def build_multiuser(params: MultiUserParams, link: LinkSpec, image_size, seed: int) -> KerasSystem:
    """Multi-user MIMO SemCom with entropy-and-channel-adaptive rate control (Chen et al.)."""
    if params.eval_batch_size % link.users:
        raise ValueError(f"eval_batch_size ({params.eval_batch_size}) must be a multiple of "
                         f"link.users ({link.users})")
    kwargs = params.model_dump(exclude={"train_snr_db", "eval_batch_size"})
    height, width = image_size
    model = MultiUserSemCom(link, image_size=(height, width), seed=seed, **kwargs)
    model({"image": tf.zeros([link.users, height, width, 3]),
           "snr_db": tf.fill([link.users], 10.0)}, training=False)
    return KerasSystem(model, "multiuser", snr_range_db=params.train_snr_db,
                       eval_batch_size=params.eval_batch_size,
                       summarize=side_info_summary("kept_maps", "kept_symbols"))
