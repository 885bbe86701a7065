"""Monte-Carlo bit and block error rates of a :class:`~semsim.phy.digital.DigitalLink`.

Each SNR point sends up to ``ceil(num_bits / (users k))`` codewords (rounded up to whole
batches) of uniformly random information bits through the link, compiled once with
``tf.function(jit_compile=True)``, and counts bit errors and codeword (block) errors. A block
is one user's codeword. With ``target_bit_errors`` / ``target_block_errors`` a point stops
after the first batch that reaches either target (as Sionna's ``sim_ber`` does), so the
budget ``num_bits`` goes to the high-SNR points, where errors are rare; a point that ends
with no error reports BER 0 with the upper end of its confidence interval
(:meth:`BERResult.ber_interval`). Reproducible: the information bits come from a generator
seeded with ``seed`` and the channel/noise from Sionna's generator seeded by
:func:`semsim.seeding.set_seed`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import tensorflow as tf
from scipy.stats import beta
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

    def ber_interval(self, confidence: float = 0.95) -> list[tuple[float, float]]:
        """Two-sided Clopper-Pearson interval of each BER (:func:`clopper_pearson`). It
        treats bits as independent trials: exact for an uncoded link with fast fading or
        AWGN, too narrow where errors come in bursts (decoded codewords, block fading)."""
        return [clopper_pearson(e, n, confidence)
                for e, n in zip(self.errors, self.bits, strict=True)]

    def bler_interval(self, confidence: float = 0.95) -> list[tuple[float, float]] | None:
        """Clopper-Pearson interval of each BLER (blocks are independent codewords)."""
        if not self.coded:
            return None
        return [clopper_pearson(e, n, confidence)
                for e, n in zip(self.block_errors, self.blocks, strict=True)]

    def to_dict(self, confidence: float = 0.95) -> dict:
        """The ``semsim ber --json`` object: ``snr_db``, ``ber``, ``bler`` (``None``
        uncoded), ``bits``, ``errors``, ``blocks``, ``block_errors``, ``confidence`` and
        the intervals ``ber_ci`` / ``bler_ci`` (``[low, high]`` per point)."""
        bler_ci = self.bler_interval(confidence)
        return {"snr_db": list(self.snr_db), "ber": self.ber, "bler": self.bler,
                "bits": list(self.bits), "errors": list(self.errors),
                "blocks": list(self.blocks), "block_errors": list(self.block_errors),
                "confidence": confidence,
                "ber_ci": [list(ci) for ci in self.ber_interval(confidence)],
                "bler_ci": None if bler_ci is None else [list(ci) for ci in bler_ci]}


def clopper_pearson(errors: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval of a binomial proportion ``errors /
    trials`` at ``confidence``; ``(0, 1 - (alpha/2)^(1/n))`` when no error was seen."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    low = 0.0 if errors == 0 else float(beta.ppf(alpha / 2, errors, trials - errors + 1))
    high = 1.0 if errors == trials else float(beta.ppf(1 - alpha / 2, errors + 1,
                                                       trials - errors))
    return low, high


def default_batch_size(link: DigitalLink, num_codewords: int) -> int:
    """Codewords per batch: about :data:`TARGET_BATCH_CODE_BITS` code bits, at most
    ``num_codewords``."""
    per_batch = max(1, TARGET_BATCH_CODE_BITS // (link.n * link.users))
    return max(1, min(num_codewords, per_batch))


def _positive_or_none(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def simulate_ber(link: DigitalLink, snr_db: Sequence[float], num_bits: int,
                 batch_size: int | None = None, seed: int = 0,
                 progress: bool = False, target_bit_errors: int | None = None,
                 target_block_errors: int | None = None) -> BERResult:
    """Simulate ``link`` at each ``snr_db`` (dB, the link's SNR convention).

    ``num_bits``: information bits (all users together) per SNR point: the number sent
    (rounded up to whole batches) without targets, the budget with them.
    ``target_bit_errors`` / ``target_block_errors``: stop a point after the batch that
    reaches either count (``None``: no target).
    ``batch_size``: codewords per compiled step (default :func:`default_batch_size`).
    ``progress``: show a tqdm bar (stderr) over all batches.
    """
    if isinstance(num_bits, bool) or int(num_bits) != num_bits or num_bits < 1:
        raise ValueError(f"num_bits must be a positive integer, got {num_bits!r}")
    target_bit_errors = _positive_or_none(target_bit_errors, "target_bit_errors")
    target_block_errors = _positive_or_none(target_block_errors, "target_block_errors")
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

    def reached(bit_err: int, blk_err: int) -> bool:
        return ((target_bit_errors is not None and bit_err >= target_bit_errors)
                or (target_block_errors is not None and blk_err >= target_block_errors))

    blocks_per_batch = batch_size * link.users
    errors, block_errors, blocks = [], [], []
    with tqdm(total=num_batches * len(snr_db), desc="ber", unit="batch",
              disable=not progress, leave=False) as bar:
        for snr in snr_db:
            bit_err = blk_err = done = 0
            while done < num_batches and not reached(bit_err, blk_err):
                be, ke = step(tf.constant(snr, tf.float32))
                bit_err += int(be)
                blk_err += int(ke)
                done += 1
                bar.update(1)
            bar.update(num_batches - done)
            bar.set_postfix(snr_db=snr, ber=bit_err / (done * blocks_per_batch * link.k))
            errors.append(bit_err)
            block_errors.append(blk_err)
            blocks.append(done * blocks_per_batch)
    return BERResult(snr_db=snr_db, bits=[b * link.k for b in blocks], errors=errors,
                     blocks=blocks, block_errors=block_errors, coded=link.codec is not None)
