"""LoRA (low-rank adaptation) for the linear projections of InternViT.

A :class:`LoRALinear` computes ``y = x W + b`` and, once LoRA is enabled,
``y = x W + b + (alpha / r) * dropout(x) A B`` with ``A`` ``[in, r]`` (uniform in
``+-1/sqrt(in)``) and ``B`` ``[r, out]`` (zeros, so enabling LoRA leaves the outputs
unchanged). ``W`` and ``b`` are frozen while LoRA is enabled.
:meth:`LoRALinear.merge_lora` folds ``(alpha / r) A B`` into ``W`` for inference.

``keras.layers.Dense.enable_lora`` is not used: it has no dropout on the LoRA path.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="semsim.internvit")
class LoRALinear(keras.layers.Layer):
    """Linear layer over the last axis with optional LoRA.

    ``call(x [..., in], training=None) -> [..., units]``. ``lora_rank=0`` disables
    LoRA; a positive ``lora_rank`` at construction enables it when the layer is built
    (this is how a saved, LoRA-enabled layer is rebuilt). ``lora_alpha`` defaults to
    ``lora_rank`` (scaling 1); ``lora_dropout`` applies to the LoRA input only.
    """

    def __init__(
        self,
        units: int,
        use_bias: bool = True,
        lora_rank: int = 0,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.05,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = units
        self.use_bias = use_bias
        self._init_lora = (lora_rank, lora_alpha, lora_dropout)
        self.lora_rank = 0
        self.lora_alpha = None
        self.lora_dropout = lora_dropout
        self.dropout = None

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_shape[-1], self.units),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer="zeros") if self.use_bias else None
        )
        rank, alpha, dropout = self._init_lora
        if rank:
            self._add_lora(rank, alpha, dropout)

    @property
    def lora_enabled(self) -> bool:
        return self.lora_rank > 0

    @property
    def lora_scale(self) -> float:
        return self.lora_alpha / self.lora_rank

    @property
    def lora_kernel_a(self):
        """``A`` under the name keras-hub's LoRA layers use."""
        return self.lora_a

    @property
    def lora_kernel_b(self):
        """``B`` under the name keras-hub's LoRA layers use."""
        return self.lora_b

    def enable_lora(self, rank: int, alpha: float | None = None, dropout: float = 0.05) -> None:
        """Freeze ``kernel``/``bias`` and add the trainable LoRA factors ``A``, ``B``."""
        if not self.built:
            raise ValueError(f"LoRALinear {self.name!r}: build the layer before enable_lora")
        if self.lora_enabled:
            raise ValueError(f"LoRALinear {self.name!r}: LoRA is already enabled")
        self._add_lora(rank, alpha, dropout)

    def _add_lora(self, rank: int, alpha: float | None, dropout: float) -> None:
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be a positive int, got {rank!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if alpha is not None and alpha <= 0:
            raise ValueError(f"alpha must be positive or None, got {alpha!r}")
        fan_in = self.kernel.shape[0]
        self.kernel.trainable = False
        if self.bias is not None:
            self.bias.trainable = False
        bound = fan_in**-0.5
        self._tracker.unlock()  # adding state to a built layer, as Dense.enable_lora does
        self.lora_a = self.add_weight(
            name="lora_a",
            shape=(fan_in, rank),
            initializer=keras.initializers.RandomUniform(-bound, bound),
        )
        self.lora_b = self.add_weight(name="lora_b", shape=(rank, self.units), initializer="zeros")
        self.lora_rank = rank
        self.lora_alpha = float(alpha) if alpha is not None else float(rank)
        self.lora_dropout = dropout
        self.dropout = keras.layers.Dropout(dropout, name="lora_dropout") if dropout else None
        self._tracker.lock()

    def merge_lora(self) -> None:
        """Fold ``(alpha / r) A B`` into ``kernel`` and remove the LoRA factors.

        The base weights stay frozen; the layer computes the same function as before
        in inference mode, with one matmul.
        """
        if not self.lora_enabled:
            raise ValueError(f"LoRALinear {self.name!r}: LoRA is not enabled, nothing to merge")
        delta = ops.matmul(self.lora_a, self.lora_b) * self.lora_scale
        self.kernel.assign(self.kernel + delta)
        del self.lora_a
        del self.lora_b
        self.lora_rank = 0
        self.lora_alpha = None
        self.dropout = None
        self._init_lora = (0, None, self.lora_dropout)

    def call(self, x, training=None):
        y = ops.matmul(x, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        if self.lora_enabled:
            h = self.dropout(x, training=training) if self.dropout is not None else x
            y = y + ops.matmul(ops.matmul(h, self.lora_a), self.lora_b) * self.lora_scale
        return y

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "use_bias": self.use_bias,
            "lora_rank": self.lora_rank,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
        }


def lora_linears(layer: keras.layers.Layer) -> list[LoRALinear]:
    """All :class:`LoRALinear` layers inside ``layer`` (itself included)."""
    return [sub for sub in layer._flatten_layers(include_self=True) if isinstance(sub, LoRALinear)]


def apply_lora(
    layers: Iterable[keras.layers.Layer],
    rank: int,
    alpha: float | None = None,
    dropout: float = 0.05,
) -> int:
    """Freeze every weight of ``layers`` and enable LoRA on all their projections.

    ``layers`` must be built. Afterwards the only trainable weights inside them are
    the LoRA factors. Returns the number of projections adapted (4 per InternViT block:
    ``qkv``, ``proj``, ``fc1``, ``fc2``).
    """
    layers = list(layers)
    for layer in layers:
        if not layer.built:
            raise ValueError(f"apply_lora: layer {layer.name!r} is not built")
        for variable in layer.weights:
            variable.trainable = False
    count = 0
    for layer in layers:
        for linear in lora_linears(layer):
            linear.enable_lora(rank, alpha, dropout)
            count += 1
    if count == 0:
        raise ValueError("apply_lora: no LoRALinear projection found in the given layers")
    return count


def merge_lora(layers: Iterable[keras.layers.Layer]) -> int:
    """Merge LoRA into the base kernels of every LoRA-enabled projection of ``layers``.

    Returns the number of projections merged.
    """
    count = 0
    for layer in layers:
        for linear in lora_linears(layer):
            if linear.lora_enabled:
                linear.merge_lora()
                count += 1
    return count


@dataclasses.dataclass(frozen=True)
class ParameterCount:
    """Scalar parameter counts of a layer: ``trainable <= total``."""

    trainable: int
    total: int

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0


def count_parameters(layer: keras.layers.Layer) -> ParameterCount:
    """Trainable and total number of scalar parameters of a built ``layer``."""
    if not layer.built:
        raise ValueError(f"count_parameters: layer {layer.name!r} is not built")
    trainable = sum(math.prod(v.shape) for v in layer.trainable_weights)
    total = sum(math.prod(v.shape) for v in layer.weights)
    return ParameterCount(trainable=int(trainable), total=int(total))
