"""Monte-Carlo bit and block error rates of a :class:`~semsim.phy.digital.DigitalLink`.

Each SNR point sends ``ceil(num_bits / (users k))`` codewords (rounded up to whole batches) of
uniformly random information bits through the link, compiled once with
``tf.function(jit_compile=True)``, and counts bit errors and codeword (block) errors. A block
is one user's codeword. Reproducible: the information bits come from a generator seeded with
``seed`` and the channel/noise from Sionna's generator seeded by
:func:`semsim.seeding.set_seed`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import tensorflow as tf
from tqdm.auto import tqdm

from semsim.phy.digital import DigitalLink
from semsim.seeding import set_seed

#: code bits per batch the default batch size aims at (memory/speed compromise on CPU)
TARGET_BATCH_CODE_BITS = 2**19


@dataclasses.dataclass(frozen=True)
class BERResult:
    """Per-SNR results (lists aligned with ``snr_db``).

    ``ber = errors / bits``; ``bler = block_errors / blocks`` (``None`` for an uncoded link,
    where a "block" is an arbitrary grouping of bits).
    """

    snr_db: list[float]
    bits: list[int]
    errors: list[int]
    blocks: list[int]
    block_errors: list[int]
    coded: bool

    @property
    def ber(self) -> list[float]:
        return [e / b for e, b in zip(self.errors, self.bits, strict=True)]

    @property
    def bler(self) -> list[float] | None:
        if not self.coded:
            return None
        return [e / b for e, b in zip(self.block_errors, self.blocks, strict=True)]

    def to_dict(self) -> dict:
        """``{"snr_db", "ber", "bler", "bits", "errors"}`` (the ``semsim ber --json`` object)."""
        return {"snr_db": list(self.snr_db), "ber": self.ber, "bler": self.bler,
                "bits": list(self.bits), "errors": list(self.errors)}


def default_batch_size(link: DigitalLink, num_codewords: int) -> int:
    """Codewords per batch: about :data:`TARGET_BATCH_CODE_BITS` code bits, at most
    ``num_codewords``."""
    per_batch = max(1, TARGET_BATCH_CODE_BITS // (link.n * link.users))
    return max(1, min(num_codewords, per_batch))


def simulate_ber(link: DigitalLink, snr_db: Sequence[float], num_bits: int,
                 batch_size: int | None = None, seed: int = 0,
                 progress: bool = False) -> BERResult:
    """Simulate ``link`` at each ``snr_db`` (dB, the link's SNR convention).

    ``num_bits``: information bits (all users together) to simulate at least per SNR point.
    ``batch_size``: codewords per compiled step (default :func:`default_batch_size`).
    ``progress``: show a tqdm bar (stderr) over all batches.
    """
    if isinstance(num_bits, bool) or int(num_bits) != num_bits or num_bits < 1:
        raise ValueError(f"num_bits must be a positive integer, got {num_bits!r}")
    snr_db = [float(s) for s in snr_db]
    if not snr_db:
        raise ValueError("snr_db must contain at least one value")
    codewords = math.ceil(num_bits / (link.k * link.users))
    if batch_size is None:
        batch_size = default_batch_size(link, codewords)
    elif isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    num_batches = math.ceil(codewords / batch_size)

    set_seed(seed)
    bit_rng = tf.random.Generator.from_seed(seed)
    shape = [batch_size, link.users, link.k] if link.users > 1 else [batch_size, link.k]

    @tf.function(jit_compile=True)
    def step(snr):
        bits = tf.cast(bit_rng.uniform(shape, 0, 2, tf.int32), tf.float32)
        wrong = tf.not_equal(link(bits, snr), bits)
        bit_errors = tf.reduce_sum(tf.cast(wrong, tf.int64))
        block_errors = tf.reduce_sum(tf.cast(tf.reduce_any(wrong, axis=-1), tf.int64))
        return bit_errors, block_errors

    errors, block_errors = [], []
    with tqdm(total=num_batches * len(snr_db), desc="ber", unit="batch",
              disable=not progress, leave=False) as bar:
        for snr in snr_db:
            bit_err = blk_err = 0
            for _ in range(num_batches):
                be, ke = step(tf.constant(snr, tf.float32))
                bit_err += int(be)
                blk_err += int(ke)
                bar.update(1)
            bar.set_postfix(snr_db=snr, ber=bit_err / (num_batches * batch_size * link.k
                                                       * link.users))
            errors.append(bit_err)
            block_errors.append(blk_err)
    blocks = num_batches * batch_size * link.users
    return BERResult(snr_db=snr_db, bits=[blocks * link.k] * len(snr_db), errors=errors,
                     blocks=[blocks] * len(snr_db), block_errors=block_errors,
                     coded=link.codec is not None)
