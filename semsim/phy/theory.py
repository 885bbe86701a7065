"""Closed-form uncoded bit error rates of the Gray constellations of :mod:`semsim.phy.qam`.

Everything here is **exact** (no nearest-neighbour approximation). A square Gray ``M^2``-QAM
is two independent Gray ``M``-PAMs (I and Q), each with levels ``(2i - M + 1) d``; a bit of a
PAM symbol is in error when the received amplitude falls in a decision interval whose label
differs in that bit. Each such probability is a difference of Gaussian tails at odd multiples
of ``d``, so the bit error rate is a finite sum

    BER(gamma) = sum_j c_j Q(k_j a),   a = sqrt(alpha * gamma),

with integer ``k_j`` and ``alpha = 3 / (M^2 - 1)`` (QAM; ``alpha = 2`` for BPSK, whose real
symbols see only the real half of the complex noise). ``gamma`` is the **linear Es/N0**:
average symbol energy over the noise variance per complex sample. For QPSK this reduces to
``Q(sqrt(gamma))`` (= ``Q(sqrt(2 Eb/N0))``); for 16-QAM to
``(3 Q(a) + 2 Q(3a) - Q(5a)) / 4`` with ``a = sqrt(gamma / 5)``.

SISO Rayleigh fading (``h ~ CN(0, 1)``) with perfect CSI and coherent detection scales the
instantaneous SNR by ``|h|^2 ~ Exp(1)``; averaging each term gives

    E[Q(sqrt(b |h|^2))] = (1 - sqrt((b/2) / (1 + b/2))) / 2,

so e.g. QPSK gives ``(1 - sqrt(g / (1 + g))) / 2`` with ``g = gamma / 2 = Eb/N0``.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import erfc

from semsim.phy.qam import bits_per_symbol


def qfunc(x: np.ndarray) -> np.ndarray:
    """Gaussian tail ``Q(x) = P(N(0,1) > x)``."""
    return 0.5 * erfc(np.asarray(x, np.float64) / np.sqrt(2.0))


def _gray(m: int) -> np.ndarray:
    """Binary-reflected Gray labels of the ``2**m`` PAM levels, ordered by amplitude."""
    i = np.arange(2**m)
    return i ^ (i >> 1)


@functools.cache
def _pam_terms(bits_per_dim: int) -> tuple[tuple[int, float], ...]:
    """Gray ``2**bits_per_dim``-PAM bit error rate as ``((k, c), ...)``: ``sum c Q(k a)``.

    ``a = d / sigma`` (half the level spacing over the per-dimension noise std).
    """
    levels = 2**bits_per_dim
    labels = _gray(bits_per_dim)
    amp = 2 * np.arange(levels) - levels + 1  # level positions in units of d (odd)
    coeff: dict[int, float] = {}
    const = 0.0

    def add_tail(dist: int, sign: float) -> None:
        # sign * P(noise > dist * d) = sign * Q(dist * a), Q(-z) = 1 - Q(z)
        nonlocal const
        if dist < 0:
            const += sign
            sign, dist = -sign, -dist
        coeff[dist] = coeff.get(dist, 0.0) + sign

    weight = 1.0 / (levels * bits_per_dim)
    for tx in range(levels):
        for rx in range(levels):
            wrong = bin(int(labels[tx] ^ labels[rx])).count("1")
            if tx == rx or not wrong:
                continue
            # P(decide rx | tx) = P(lo < x + noise < hi), boundaries at amp[rx] -+ 1 (in d);
            # the outermost intervals are open (P(noise > -inf) = 1, P(noise > inf) = 0)
            if rx > 0:
                add_tail(int(amp[rx] - 1 - amp[tx]), wrong * weight)
            else:
                const += wrong * weight
            if rx < levels - 1:
                add_tail(int(amp[rx] + 1 - amp[tx]), -wrong * weight)
    if abs(const) > 1e-12:
        raise AssertionError(f"error probability does not vanish at high SNR ({const})")
    return tuple(sorted((k, c) for k, c in coeff.items() if abs(c) > 1e-12))


def ber_terms(modulation: str) -> tuple[float, tuple[tuple[int, float], ...]]:
    """``(alpha, ((k, c), ...))`` with ``BER = sum c Q(k sqrt(alpha gamma))`` over AWGN."""
    m = bits_per_symbol(modulation)
    if modulation == "bpsk":
        return 2.0, _pam_terms(1)
    per_dim = m // 2
    return 3.0 / (4**per_dim - 1), _pam_terms(per_dim)


def _esno_linear(esno_db) -> np.ndarray:
    return 10.0 ** (np.asarray(esno_db, np.float64) / 10.0)


def ber_awgn(modulation: str, esno_db) -> np.ndarray:
    """Exact uncoded BER of Gray ``modulation`` over AWGN.

    ``esno_db``: Es/N0 in dB (scalar or array; Es = average symbol energy, N0 = noise variance
    per complex sample). Returns float64 of the same shape.
    """
    alpha, terms = ber_terms(modulation)
    gamma = _esno_linear(esno_db)
    return sum(c * qfunc(k * np.sqrt(alpha * gamma)) for k, c in terms)


def ber_rayleigh(modulation: str, esno_db) -> np.ndarray:
    """Exact uncoded BER of Gray ``modulation`` over SISO Rayleigh fading, perfect CSI.

    ``h ~ CN(0, 1)`` per symbol (or per block: the average is the same), coherent detection
    ``y / h``. ``esno_db``: average Es/N0 in dB. Returns float64 of the same shape.
    """
    alpha, terms = ber_terms(modulation)
    gamma = _esno_linear(esno_db)
    total = 0.0
    for k, c in terms:
        half_b = 0.5 * k * k * alpha * gamma
        total = total + c * 0.5 * (1.0 - np.sqrt(half_b / (1.0 + half_b)))
    return total
