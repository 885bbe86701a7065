"""Gray-labelled QAM mapping and soft demapping (Sionna's mapper/demapper as Keras layers).

Constellations have unit average energy ``E|x|^2 = 1``. Supported names:

* ``"bpsk"``: Sionna's 1-bit PAM, points ``{+1, -1}`` (real, carried in ``complex64``);
  bit 0 -> +1. Only the real part of a received sample carries information.
* ``"qpsk"``, ``"16qam"``, ``"64qam"``, ``"256qam"``: square Gray QAM with 2, 4, 6, 8 bits per
  symbol (Sionna's ``"qam"`` constellation, the product of two Gray PAMs on I and Q).

LLR sign convention (Sionna's): ``llr = ln(P(b=1|y) / P(b=0|y))``, i.e. logits; a positive
LLR favours bit 1. Sionna's LDPC decoders take the same convention, so demapper output feeds
them directly.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from sionna.phy.mapping import Demapper, Mapper

from semsim.phy.layer import PhyLayer

#: modulation name -> (Sionna constellation type, bits per symbol)
MODULATIONS: dict[str, tuple[str, int]] = {
    "bpsk": ("pam", 1),
    "qpsk": ("qam", 2),
    "16qam": ("qam", 4),
    "64qam": ("qam", 6),
    "256qam": ("qam", 8),
}

DEMAPPING_METHODS = ("app", "maxlog")


def bits_per_symbol(modulation: str) -> int:
    """Number of bits carried by one symbol of ``modulation`` (validated)."""
    return _parse_modulation(modulation)[1]


def _parse_modulation(modulation: str) -> tuple[str, int]:
    if modulation not in MODULATIONS:
        raise ValueError(
            f"modulation must be one of {sorted(MODULATIONS)}, got {modulation!r}")
    return MODULATIONS[modulation]


@keras.saving.register_keras_serializable(package="semsim.phy")
class QAMMapper(PhyLayer):
    """Bits -> unit-energy Gray constellation symbols.

    ``call(bits)``: ``bits`` ``[..., n]`` (any real or int dtype with 0/1 entries, ``n`` a
    multiple of :attr:`bits_per_symbol`) -> ``[..., n / bits_per_symbol]`` ``complex64``.
    Bit ``j * m + i`` (``m`` bits per symbol) is label bit ``i`` (MSB first) of symbol ``j``.
    """

    def __init__(self, modulation: str, **kwargs):
        super().__init__(**kwargs)
        kind, m = _parse_modulation(modulation)
        self.modulation = modulation
        self._mapper = Mapper(kind, m, precision="single")

    @property
    def bits_per_symbol(self) -> int:
        """Bits per constellation symbol."""
        return self._mapper.constellation.num_bits_per_symbol

    @property
    def points(self) -> tf.Tensor:
        """Constellation points ``[2**bits_per_symbol]`` complex64, index = bit label."""
        return self._mapper.constellation.points

    def call(self, bits):
        n = bits.shape[-1]
        if n is not None and n % self.bits_per_symbol:
            raise ValueError(f"bits last dimension must be a multiple of {self.bits_per_symbol}"
                             f" for {self.modulation}, got {n}")
        return self._mapper(bits)

    def get_config(self):
        return {**super().get_config(), "modulation": self.modulation}


@keras.saving.register_keras_serializable(package="semsim.phy")
class QAMDemapper(PhyLayer):
    """Received symbols -> bit LLRs (or hard bits), for the constellation of :class:`QAMMapper`.

    ``call(y, no)``: ``y`` ``[..., s]`` complex64 (equalized symbols); ``no`` float32, the
    noise variance per complex sample (linear), scalar or broadcastable to ``y`` (e.g. the
    detector's per-stream ``no_eff``). Returns ``[..., s * bits_per_symbol]`` float32: LLRs
    ``ln(P(b=1|y)/P(b=0|y))`` (``hard_out=False``) or hard bits 0/1.

    ``method``: ``"app"`` (exact a-posteriori LLRs) or ``"maxlog"`` (max-log approximation).
    """

    def __init__(self, modulation: str, method: str = "app", hard_out: bool = False, **kwargs):
        super().__init__(**kwargs)
        kind, m = _parse_modulation(modulation)
        if method not in DEMAPPING_METHODS:
            raise ValueError(f"method must be one of {DEMAPPING_METHODS}, got {method!r}")
        self.modulation = modulation
        self.method = method
        self.hard_out = bool(hard_out)
        self._demapper = Demapper(method, kind, m, hard_out=self.hard_out, precision="single")

    @property
    def bits_per_symbol(self) -> int:
        """Bits per constellation symbol."""
        return self._demapper.constellation.num_bits_per_symbol

    def call(self, y, no):
        y = tf.cast(y, tf.complex64)
        no = tf.cast(no, tf.float32)
        return self._demapper(y, no)

    def get_config(self):
        return {**super().get_config(), "modulation": self.modulation, "method": self.method,
                "hard_out": self.hard_out}
