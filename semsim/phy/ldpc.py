"""5G NR LDPC code (3GPP TS 38.212) as a Keras layer around Sionna's encoder/decoder.

LLR convention (Sionna's): decoder inputs are logits ``ln(P(c=1|y) / P(c=0|y))``, so a
positive value favours bit 1 -- the same convention as :class:`semsim.phy.qam.QAMDemapper`
output, which therefore feeds :meth:`LDPC5GCodec.decode` unchanged. (Textbook LLRs
``ln(P(0)/P(1))`` must be negated first.)
"""

from __future__ import annotations

import keras
import tensorflow as tf
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder


@keras.saving.register_keras_serializable(package="semsim.phy")
class LDPC5GCodec(keras.layers.Layer):
    """5G NR LDPC code with ``k`` information bits and ``n`` transmitted code bits.

    Sionna selects the base graph and lifting size and applies 5G rate matching
    (puncturing the first ``2 Z`` systematic bits, shortening with filler bits, truncation to
    ``n``). Supported: ``12 <= k <= 8448``, ``1/5 <= k/n <= 0.95``, ``n <= 316 * 384``.

    * :meth:`encode`: ``bits`` ``[..., k]`` float32 0/1 -> codeword ``[..., n]`` float32 0/1.
    * :meth:`decode`: ``llr`` ``[..., n]`` float32 logits -> hard info bits ``[..., k]`` float32,
      flooding belief propagation (boxplus-phi) with ``num_iter`` iterations.
    """

    def __init__(self, k: int, n: int, num_iter: int = 20, **kwargs):
        super().__init__(**kwargs)
        k, n, num_iter = _as_int(k, "k"), _as_int(n, "n"), _as_int(num_iter, "num_iter")
        if not 12 <= k <= 8448:
            raise ValueError(f"k must be in [12, 8448] for the 5G LDPC code, got {k}")
        if n <= k or n > 316 * 384:
            raise ValueError(f"n must be in ({k}, {316 * 384}] for k={k}, got {n}")
        if not 0.2 <= k / n <= 0.95:
            raise ValueError(f"code rate k/n must be in [0.2, 0.95], got {k}/{n} = {k / n:.3f}")
        if num_iter < 1:
            raise ValueError(f"num_iter must be >= 1, got {num_iter}")
        self.k, self.n, self.num_iter = k, n, num_iter
        self._encoder = LDPC5GEncoder(k, n, precision="single")
        self._decoder = LDPC5GDecoder(self._encoder, num_iter=num_iter, hard_out=True,
                                      return_infobits=True, precision="single")
        self.built = True  # no weights; encode/decode are called directly

    @property
    def rate(self) -> float:
        """Code rate ``k / n``."""
        return self.k / self.n

    def encode(self, bits):
        """``[..., k]`` 0/1 -> ``[..., n]`` float32 0/1 codeword."""
        return self._encoder(tf.cast(bits, tf.float32))

    def decode(self, llr):
        """``[..., n]`` float32 logits ``ln(P(1)/P(0))`` -> ``[..., k]`` float32 hard bits."""
        return self._decoder(tf.cast(llr, tf.float32))

    def call(self, llr):
        """Same as :meth:`decode` (the layer's forward pass is the receiver side)."""
        return self.decode(llr)

    def get_config(self):
        return {**super().get_config(), "k": self.k, "n": self.n, "num_iter": self.num_iter}


def _as_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)
