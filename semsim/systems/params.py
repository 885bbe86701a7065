"""The scenario parameters of every shipped system type (a ``systems:`` entry's ``params``).

Pydantic models only, with the few constants they need: this module imports no
TensorFlow, Keras or Sionna, so reading and validating a scenario (``semsim validate``,
:func:`semsim.scenario.loader.load_scenario`) stays fast. The system modules
(:mod:`semsim.systems.deepjscc`, ...) import their model from here and build the
system; :mod:`semsim.systems.registry` maps each type name to its model and builder.
Unknown keys are errors in every model (``extra="forbid"``).
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from semsim.systems.registry import get_system_type

#: Gumbel-Softmax temperature schedules (:func:`semsim.semantic.policy.annealed_temperature`).
Schedule = Literal["exponential", "linear", "constant"]

#: Pruning ratios of P2 (paper) of the multi-user system (:mod:`semsim.systems.multiuser`).
RATIOS: tuple[float, ...] = (0.0, 0.2, 0.3, 0.4, 0.5)


class DeepJSCCParams(pydantic.BaseModel):
    """Scenario params of ``deepjscc`` and ``adjscc``.

    ``cr``: target CR; the nearest achievable ``c / 48`` is used and reported.
    ``train_snr_db``: fixed training SNR in dB (the multi-user paper: 25); ``None`` uses
    the scenario's training SNR range. ``filters``/``kernel_size``: layer sizes.
    ``eval_batch_size``: images per forward pass, a multiple of ``link.users``.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    cr: float = pydantic.Field(1 / 6, gt=0, le=1)
    train_snr_db: float | None = None
    filters: tuple[int, int, int, int] = (16, 32, 32, 32)
    kernel_size: int = pydantic.Field(5, ge=1)
    eval_batch_size: int = pydantic.Field(64, ge=1)


class SeparationParams(pydantic.BaseModel):
    """Scenario params of ``separation`` (see :class:`semsim.systems.separation.SeparationSystem`)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    codec: Literal["hevc", "jpeg", "jpeg2000"] = "hevc"
    code: Literal["dvbs2", "ldpc5g"] = "dvbs2"
    frame: Literal["normal", "short"] = "normal"
    modulation: Literal["auto", "qpsk", "16qam", "64qam", "256qam"] = "auto"
    cr: float | None = pydantic.Field(None, gt=0)
    required_snr_db: dict[Literal["qpsk", "16qam", "64qam", "256qam"], float] | None = None
    num_iter: int | None = pydantic.Field(None, ge=1)
    workers: int | None = pydantic.Field(None, ge=1)


class CapacityBoundParams(pydantic.BaseModel):
    """Scenario params of ``capacity_bound`` (see
    :class:`semsim.systems.capacity_bound.CapacityBoundSystem`)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    codec: Literal["hevc", "jpeg", "jpeg2000"] = "hevc"
    cr: float | None = pydantic.Field(None, gt=0)


class SwinSizeParams(pydantic.BaseModel):
    """Sizes of the channel-aware Swin encoder/decoder (the paper's by default), shared by
    every Swin-based system so that comparisons use the same backbone: per-stage widths,
    block counts and heads, the attention window in tokens (4 suits the 16x16 and 8x8
    grids of 32x32 images), the patch size and the MLP expansion ratio. Paper sizes:
    encoder stage 1 2 blocks x 6 heads (width 96), stage 2 4 blocks x 8 heads (128);
    decoder stage 1 2 blocks x 8 heads (128), stage 2 4 blocks x 6 heads (96)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    encoder_dims: tuple[int, ...] = (96, 128)
    encoder_depths: tuple[int, ...] = (2, 4)
    encoder_heads: tuple[int, ...] = (6, 8)
    decoder_dims: tuple[int, ...] = (128, 96)
    decoder_depths: tuple[int, ...] = (2, 4)
    decoder_heads: tuple[int, ...] = (8, 6)
    window_size: int = pydantic.Field(4, ge=1)
    patch_size: int = pydantic.Field(2, ge=1)
    mlp_ratio: float = pydantic.Field(4.0, gt=0)


class ReferenceParams(SwinSizeParams):
    """Parameters of the reference system (a scenario's ``params:``; unknown keys are errors).

    Sizes: ``num_maps`` is ``C``; ``encoder_*``/``decoder_*`` list per-stage widths, block
    counts and heads (paper sizes by default); ``window_size`` is the attention window in
    tokens (4 suits the 16x16 and 8x8 grids of 32x32 images). Loss: ``lam`` (rate weight
    lambda), ``mu`` (feature-consistency weight), ``beta`` and ``snr_weight`` (``w(SNR)``, see
    :mod:`semsim.semantic.losses`), ``snr_range_db`` (training SNRs are drawn from it and ``w``
    is normalized by it). Gumbel-Softmax temperature: ``temperature_initial`` (the paper's
    tau = 5), constant by default (``temperature_schedule: constant``, as published); the
    ``exponential`` or ``linear`` schedules anneal it to ``temperature_final`` over
    ``temperature_anneal_steps`` optimizer steps (an option, not the paper's setting).
    ``policy_prior_slope``: initial preference of both policies for
    larger counts (see :class:`semsim.semantic.policy.CountPolicy`; 5 starts at about 80 %
    of the maximum). ``compensation``: name for
    ``semsim.semantic.compensation.build_compensation`` (``"none"``: identity) with
    ``compensation_options`` as keyword arguments.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    num_maps: int = pydantic.Field(16, ge=1)
    channel_embed_dim: int = pydantic.Field(32, ge=1)
    entropy_embed_dim: int = pydantic.Field(64, ge=1)
    entropy_levels: int = pydantic.Field(256, ge=2)
    hidden_units: int = pydantic.Field(64, ge=1)
    lam: float = pydantic.Field(0.02, ge=0)
    mu: float = pydantic.Field(0.0, ge=0)
    beta: float = pydantic.Field(1.0, ge=0)
    snr_weight: Literal["linear", "constant"] = "linear"
    snr_range_db: tuple[float, float] = (0.0, 20.0)
    temperature_initial: float = pydantic.Field(5.0, gt=0)
    temperature_final: float = pydantic.Field(0.5, gt=0)
    temperature_anneal_steps: int = pydantic.Field(10_000, ge=1)
    temperature_schedule: Schedule = "constant"
    policy_prior_slope: float = 5.0
    compensation: str = "none"
    compensation_options: dict[str, Any] = pydantic.Field(default_factory=dict)

    @pydantic.model_validator(mode="after")
    def _check(self):
        if len(self.encoder_dims) != len(self.decoder_dims):
            raise ValueError(
                f"encoder_dims {self.encoder_dims} and decoder_dims {self.decoder_dims} must "
                "have as many stages (the decoder mirrors the encoder's resolutions)"
            )
        if self.snr_range_db[1] < self.snr_range_db[0]:
            raise ValueError(f"snr_range_db must be (low, high), got {self.snr_range_db}")
        return self


class SwinJSCCParams(SwinSizeParams):
    """Scenario params of ``swinjscc`` (sizes default to the reference system's; ``rates``
    ``None`` trains every channel count ``1..channels``)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    channels: int = pydantic.Field(16, ge=1)
    rates: tuple[int, ...] | None = None
    default_cr: float = pydantic.Field(1 / 6, gt=0)
    hidden: int = pydantic.Field(32, ge=1)
    eval_batch_size: int = pydantic.Field(64, ge=1)


class MultiUserParams(pydantic.BaseModel):
    """Scenario params of ``multiuser`` (see :class:`semsim.systems.multiuser.MultiUserSemCom`
    for their meaning).

    ``train_snr_db``: training SNR range ``(lo, hi)`` dB (paper: U[0, 25]); ``None`` uses the
    scenario's. ``eval_batch_size`` must be a multiple of the number of users. The paper's
    optimizer (Adam with weight decay 5e-4) is set in the scenario's training section.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    num_maps: int = pydantic.Field(16, ge=2)
    filters: tuple[int, int, int] = (64, 128, 256)
    share_weights: bool = False
    policy_units: int = pydantic.Field(256, ge=1)
    ratios: tuple[float, ...] = RATIOS
    alpha: float = pydantic.Field(2e-4, ge=0)
    beta: float = pydantic.Field(1e-5, ge=0)
    entropy_levels: int = pydantic.Field(256, ge=2)
    num_heads: int = pydantic.Field(4, ge=1)
    tau_init: float = pydantic.Field(5.0, gt=0)
    tau_decay: float = pydantic.Field(0.01, ge=0)
    use_entropy: bool = True
    use_attention: bool = True
    use_csi_feedback: bool = True
    use_pruning: bool = True
    entropy_features: bool = False
    index_modulation: str = "64qam"
    index_code_rate: float = pydantic.Field(0.75, gt=0, lt=1)
    ldpc_iterations: int = pydantic.Field(20, ge=1)
    staged: bool = True
    stage_fractions: tuple[float, float, float, float] = (0.5, 0.25, 0.125, 0.125)
    stage_learning_rates: tuple[float, float, float, float] = (1e-3, 1e-4, 1e-5, 1e-5)
    policy_warmup: float = pydantic.Field(0.3, ge=0, lt=1)
    policy_prior_slope: float = 3.0
    train_snr_db: tuple[float, float] | None = (0.0, 25.0)
    eval_batch_size: int = pydantic.Field(64, ge=1)


class MIJSCCParams(pydantic.BaseModel):
    """Scenario params of ``mijscc``.

    ``cr``: target CR; the nearest ``c / 192`` is used (every symbol sent).
    ``filters``: channels of the three residual blocks. ``mi_weight``: lambda (the paper
    selects it from 0.1, 0.05, 0.01, 0.005, 0.001, 0.0005; 0 gives Deep JSCC trained on
    MSE only). ``mu_global``/``mu_local``: mu1/mu2. ``bits``: 4, 8 or null (analog).
    ``adaptive``: A-MIJSCC (needs ``bits``), fine-tuned for ``finetune_fraction`` of the
    steps with mask threshold ``eta`` and ``rate_weight`` on the kept ratio.
    ``num_classes``, ``classifier_hidden``, ``classifier_steps``,
    ``classifier_learning_rate``: the frozen-encoder classifier. ``train_snr_db``: fixed
    training SNR (dB), ``None`` for the scenario's range. ``eval_batch_size``: images per
    forward pass, a multiple of ``link.users``.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    cr: float = pydantic.Field(1 / 12, gt=0, le=1)
    filters: tuple[int, int, int] = (32, 64, 128)
    mi_weight: float = pydantic.Field(0.01, ge=0)
    mu_global: float = pydantic.Field(0.01, ge=0)
    mu_local: float = pydantic.Field(1.0, ge=0)
    bits: int | None = None
    adaptive: bool = False
    eta: float = pydantic.Field(0.5, gt=0, lt=1)
    rate_weight: float = pydantic.Field(0.01, ge=0)
    finetune_fraction: float = pydantic.Field(0.5, gt=0, lt=1)
    num_classes: int = pydantic.Field(10, ge=2)
    classifier_hidden: int = pydantic.Field(256, ge=2)
    classifier_steps: int = pydantic.Field(500, ge=1)
    classifier_learning_rate: float = pydantic.Field(1e-3, gt=0)
    train_snr_db: float | None = None
    eval_batch_size: int = pydantic.Field(64, ge=1)

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> MIJSCCParams:
        if self.bits not in (None, 4, 8):
            raise ValueError(f"bits: must be 4, 8 or null (analog), got {self.bits!r}")
        if self.adaptive and self.bits is None:
            raise ValueError("adaptive: A-MIJSCC fine-tunes a quantized model; set bits: 8 (or 4)")
        return self


class ClassifiedParams(pydantic.BaseModel):
    """Scenario params of ``classified``: ``system`` (the wrapped type) and its
    ``params``; ``classifier_cr`` (CR at which the training images are decoded; ``None``:
    the wrapped system's own rate, for systems whose rate its params fix, e.g. ``scsc``),
    ``classifier_train_images``, ``batch`` (images per decoded training batch),
    ``num_classes``, ``classifier_hidden``, ``classifier_steps``,
    ``classifier_learning_rate``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    system: str
    params: dict = pydantic.Field(default_factory=dict)
    classifier_cr: float | None = pydantic.Field(None, gt=0, le=10)
    classifier_train_images: int = pydantic.Field(512, ge=1)
    batch: int = pydantic.Field(64, ge=1)
    num_classes: int = pydantic.Field(10, ge=2)
    classifier_hidden: int = pydantic.Field(256, ge=2)
    classifier_steps: int = pydantic.Field(500, ge=1)
    classifier_learning_rate: float = pydantic.Field(1e-3, gt=0)

    @pydantic.model_validator(mode="after")
    def _inner_known(self) -> ClassifiedParams:
        if self.system == "classified":
            raise ValueError("system: cannot wrap 'classified' in itself")
        try:
            stype = get_system_type(self.system)
        except KeyError as err:
            raise ValueError(err.args[0]) from err
        stype.params.model_validate(self.params)
        return self


#: Default weight ``lambda1`` of the rate term in the loss of an ``scsc`` system's PPEN. The
#: paper's 0.1 belongs to its own rate term, which was not available here; with this
#: project's surrogate (the mean absolute gradient ratio, about 1 for an unchanged image,
#: against a distortion of about 0.001-0.01) 0.1 lets PPEN cut the CR at QP 34 from 0.359
#: to 0.195 at a cost of 2-11 dB; with 0.003 SCSC stays within 0.6 dB of the chain's
#: rate-distortion curve: ``python benchmarks/scsc_proxy.py --steps --rate-weights 0.1
#: 0.01 0.003 0``, docs/scsc.md.
SCSC_RATE_WEIGHT = 0.003

#: Proxy-vs-chain PSNR (dB) of an ``scsc`` system below which its proxy is reported as not
#: tracking the chain (a failed training: the run warns, and the report and tables say so).
PROXY_MIN_PSNR_DB = 20.0


class SCSCParams(pydantic.BaseModel):
    """Scenario params of ``scsc`` (see :class:`semsim.systems.scsc.system.SCSCSystem`)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    qp: Literal[28, 31, 34, 37, 41] = 34
    rate: Literal["1/2", "3/4"] = "1/2"
    ppen: bool = True
    pcen: bool = True
    qa: bool = True
    filters: int = pydantic.Field(32, ge=1)
    ppen_depth: int = pydantic.Field(3, ge=1)
    admm_layers: int = pydantic.Field(8, ge=1)
    proxy_steps: int = pydantic.Field(900, ge=1)
    pcen_steps: int = pydantic.Field(200, ge=1)
    ppen_steps: int | None = pydantic.Field(None, ge=1)
    proxy_check_batches: int = pydantic.Field(4, ge=1)
    ppen_forward: Literal["chain", "proxy"] = "chain"
    rate_weight: float = pydantic.Field(SCSC_RATE_WEIGHT, ge=0.0)

    @pydantic.model_validator(mode="after")
    def _proxy_forward_needs_ppen(self):
        if self.ppen_forward == "proxy" and not self.ppen:
            raise ValueError("ppen_forward: proxy trains PPEN through the proxy alone; "
                             "it needs ppen: true")
        return self
