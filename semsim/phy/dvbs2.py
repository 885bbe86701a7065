"""DVB-S2 LDPC codes (ETSI EN 302 307-1, section 5.3.2 and Annexes B/C).

The parity-check matrix ``H`` (``[n - k, n]``) of an IRA code is built from the standard's
parity-bit address table (``semsim/phy/data/dvbs2_<frame>_<rate>.txt``, one row per group of
360 information bits): information bit ``i_{360 r + m}`` (``m = 0..359``) is accumulated into
parity bits ``(x + m q) mod (n - k)`` for every address ``x`` of row ``r``, then
``p_j ^= p_{j-1}`` for ``j = 1..n-k-1`` (the dual-diagonal accumulator). Codewords are
systematic: ``c = [i_0..i_{k-1}, p_0..p_{n-k-1}]``.

Supported codes (BCH outer code not included):

===========  =======  ======  ===  ==============
frame        n        k       q    nominal rate
===========  =======  ======  ===  ==============
``normal``   64800    32400   90   1/2
``short``    16200    7200    25   1/2 (4/9 effective)
===========  =======  ======  ===  ==============

LLR convention (Sionna's): decoder inputs are logits ``ln(P(c=1|y) / P(c=0|y))``, the output
convention of :class:`semsim.phy.qam.QAMDemapper`.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from sionna.phy.fec.ldpc import LDPCBPDecoder

DATA_DIR = Path(__file__).parent / "data"
GROUP = 360  # information bits per table row (parallelism factor of the standard)

#: (frame, rate) -> (n, k, q)
CODES: dict[tuple[str, str], tuple[int, int, int]] = {
    ("normal", "1/2"): (64800, 32400, 90),
    ("short", "1/2"): (16200, 7200, 25),
}


def load_address_table(frame: str, rate: str) -> list[np.ndarray]:
    """Parity-bit address table of a code: one int64 array of addresses per row (``k/360``)."""
    _check_code(frame, rate)
    n, k, _ = CODES[(frame, rate)]
    path = DATA_DIR / f"dvbs2_{frame}_{rate.replace('/', '_')}.txt"
    rows = [np.array(line.split(), dtype=np.int64)
            for line in path.read_text().splitlines() if line.strip() and line[0] != "#"]
    if len(rows) != k // GROUP:
        raise ValueError(f"{path.name}: expected {k // GROUP} rows, found {len(rows)}")
    if any(r.min() < 0 or r.max() >= n - k for r in rows):
        raise ValueError(f"{path.name}: addresses must lie in [0, {n - k})")
    return rows


def info_edges(frame: str, rate: str) -> tuple[np.ndarray, np.ndarray]:
    """``(check_row, info_col)`` int64 arrays: the ones of ``H``'s information part."""
    n, k, q = CODES[(frame, rate)]
    m = np.arange(GROUP)
    rows, cols = [], []
    for r, addresses in enumerate(load_address_table(frame, rate)):
        checks = (addresses[:, None] + m[None, :] * q) % (n - k)  # [len(addresses), 360]
        rows.append(checks.ravel())
        cols.append(np.broadcast_to(r * GROUP + m, checks.shape).ravel())
    return np.concatenate(rows), np.concatenate(cols)


def parity_check_matrix(frame: str = "normal", rate: str = "1/2") -> sp.csr_matrix:
    """Sparse binary ``H`` ``[n - k, n]`` (int8 CSR) of a DVB-S2 LDPC code."""
    _check_code(frame, rate)
    n, k, _ = CODES[(frame, rate)]
    info_row, info_col = info_edges(frame, rate)
    j = np.arange(n - k)
    rows = np.concatenate([info_row, j, j[1:]])
    cols = np.concatenate([info_col, k + j, k + j[1:] - 1])
    h = sp.csr_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(n - k, n))
    if h.max() != 1:
        raise ValueError(f"address table of {frame} {rate} repeats an edge")
    return h


def _check_code(frame: str, rate: str) -> None:
    if (frame, rate) not in CODES:
        raise ValueError(f"(frame, rate) must be one of {sorted(CODES)}, got {(frame, rate)!r}")


@keras.saving.register_keras_serializable(package="semsim.phy")
class DVBS2LDPCCodec(keras.layers.Layer):
    """DVB-S2 LDPC code: systematic IRA encoder and belief-propagation decoder.

    * :meth:`encode`: ``bits`` ``[..., k]`` 0/1 -> codeword ``[..., n]`` float32 0/1. Computed
      in-graph without a generator matrix: parity sums ``A u`` by a gather + segment sum over
      the edges of ``H``'s information part (XLA-compatible), then the accumulator as a cumulative sum mod 2.
    * :meth:`decode`: ``llr`` ``[..., n]`` float32 logits -> hard info bits ``[..., k]``
      float32, Sionna's flooding BP (boxplus-phi) on ``H`` with ``num_iter`` iterations.
    """

    def __init__(self, frame: str = "normal", rate: str = "1/2", num_iter: int = 50, **kwargs):
        super().__init__(**kwargs)
        _check_code(frame, rate)
        if isinstance(num_iter, bool) or int(num_iter) != num_iter or num_iter < 1:
            raise ValueError(f"num_iter must be a positive integer, got {num_iter!r}")
        self.frame, self.rate_name, self.num_iter = frame, rate, int(num_iter)
        self.n, self.k, self.q = CODES[(frame, rate)]
        self.pcm = parity_check_matrix(frame, rate)
        row, col = info_edges(frame, rate)
        self._edge_col = tf.constant(col, tf.int32)
        self._edge_row = tf.constant(row, tf.int32)
        self._decoder = LDPCBPDecoder(self.pcm, num_iter=self.num_iter, hard_out=True,
                                      precision="single")
        self.built = True  # no weights; encode/decode are called directly

    @property
    def rate(self) -> float:
        """Effective code rate ``k / n``."""
        return self.k / self.n

    def encode(self, bits):
        """``[..., k]`` 0/1 -> ``[..., n]`` float32 systematic codeword."""
        bits = tf.convert_to_tensor(bits)
        if bits.shape[-1] != self.k:
            raise ValueError(f"bits last dimension must be k={self.k}, got {bits.shape[-1]}")
        u = tf.reshape(tf.cast(bits, tf.int32), [-1, self.k])
        per_edge = tf.transpose(tf.gather(u, self._edge_col, axis=1))  # [E, B]
        sums = tf.math.unsorted_segment_sum(per_edge, self._edge_row, self.n - self.k)  # A u
        parity = tf.math.floormod(tf.cumsum(sums, axis=0), 2)  # accumulator p_j ^= p_{j-1}
        c = tf.concat([u, tf.transpose(parity)], axis=1)
        out_shape = tf.concat([tf.shape(bits)[:-1], [self.n]], axis=0)
        return tf.reshape(tf.cast(c, tf.float32), out_shape)

    def decode(self, llr):
        """``[..., n]`` float32 logits ``ln(P(1)/P(0))`` -> ``[..., k]`` float32 hard bits."""
        llr = tf.convert_to_tensor(llr, tf.float32)
        if llr.shape[-1] != self.n:
            raise ValueError(f"llr last dimension must be n={self.n}, got {llr.shape[-1]}")
        return self._decoder(llr)[..., : self.k]

    def call(self, llr):
        """Same as :meth:`decode` (the layer's forward pass is the receiver side)."""
        return self.decode(llr)

    def get_config(self):
        return {**super().get_config(), "frame": self.frame, "rate": self.rate_name,
                "num_iter": self.num_iter}
