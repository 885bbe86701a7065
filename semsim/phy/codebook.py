"""3GPP NR Type I single-panel codebook for 2 antenna ports (TS 38.214 Table 5.2.2.2.1-1).

Codewords (``phi_n = exp(j pi n / 2)``)::

    rank 1, n = 0..3:  W = (1 / sqrt 2) [1, phi_n]^T                        (2 PMI bits)
    rank 2, n = 0..1:  W = (1 / 2) [[1, 1], [phi_n, -phi_n]]                (1 PMI bit)

Every codeword has unit Frobenius norm (``trace W W^H = 1``) and orthogonal columns.
The link option ``precoding: type1`` (:class:`~semsim.phy.AnalogLink`,
:class:`~semsim.phy.DigitalLink`) sends ``F x`` with ``F = sqrt(Nt) W``, so unit-energy
streams carry ``Nt Es`` per channel use, the total of ``Nt`` unprecoded streams and of
``precoding: svd`` (same SNR calibration, same ``no``), split equally over the layers (no
water-filling: a codebook fixes the power split). The rank is the number of streams the
layout sends (``Nt = 2`` on the links that allow the option, :func:`semsim.phy.spec.check_precoding`);
at rank 2 ``F`` is unitary, so ``F F^H = I``.

PMI selection (at the receiver, from its estimate ``h_hat``, fed back without error or
delay at ``TYPE1_PMI_BITS[rank]`` bits per channel block): the codeword maximizing the
sum over layers of ``log2(1 + SINR_k)``, with ``SINR_k`` the post-LMMSE SINR of layer ``k``
on the effective channel ``h_hat F`` at the link's ``Es / no``:
``SINR_k = 1 / [(I + (Es / no) F^H h_hat^H h_hat F)^{-1}]_kk - 1``. At rank 1 this is
``log2(1 + (Es / no) ||h_hat f||^2)``, the mutual information of the precoded channel. At
rank 2 the mutual information ``log2 det(I + (Es / no) h_hat F F^H h_hat^H)`` is the same
for every codeword (``F F^H = I``), so it cannot choose; the LMMSE sum rate is the rate of
the receiver the links run, and it can.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

TYPE1_PMI_BITS = {1: 2, 2: 1}
"""PMI feedback bits per channel block (per ``H``) for each rank."""


def type1_codebook(rank: int) -> tf.Tensor:
    """The 2-port Type I codewords ``W`` as in the table, ``[N, 2, rank]`` complex64.

    ``N = 4`` for rank 1, ``2`` for rank 2; index ``n`` along axis 0 is the PMI ``i_2``.
    """
    if rank not in TYPE1_PMI_BITS:
        raise ValueError(f"the 2-port Type I codebook has rank 1 or 2, got {rank!r}")
    words = []
    for n in range(2 ** TYPE1_PMI_BITS[rank]):
        phi = np.exp(1j * np.pi * n / 2)
        if rank == 1:
            words.append(np.array([[1.0], [phi]]) / math.sqrt(2.0))
        else:
            words.append(np.array([[1.0, 1.0], [phi, -phi]]) / 2.0)
    return tf.constant(np.stack(words), tf.complex64)


def _check_h(h_hat) -> tf.Tensor:
    h_hat = tf.convert_to_tensor(h_hat, tf.complex64)
    if h_hat.shape.rank != 3:
        raise ValueError(f"h_hat must have shape [B, Nr, Nt] (block fading), got {h_hat.shape}")
    if h_hat.shape[-1] != 2:
        raise ValueError(f"only the 2-port Type I codebook is implemented, got Nt={h_hat.shape[-1]}")
    return h_hat


def type1_lmmse_rates(h_hat, no, symbol_energy: float = 1.0, rank: int | None = None) -> tf.Tensor:
    """The selection metric of every codeword, ``[B, N]`` float32 (bit per channel use).

    ``h_hat``: ``[B, Nr, 2]`` complex64; ``no``: ``[B]`` or scalar noise variance per
    complex receive sample; ``symbol_energy``: ``Es`` of each layer's symbols (linear);
    ``rank``: layers (default ``Nt = 2``). Entry ``n`` is ``sum_k log2(1 + SINR_k)`` of the
    LMMSE receiver on ``h_hat F_n``, ``F_n = sqrt(2) W_n`` (module docstring).
    """
    h_hat = _check_h(h_hat)
    rank = h_hat.shape[-1] if rank is None else rank
    f = type1_codebook(rank) * math.sqrt(h_hat.shape[-1])  # [N, 2, rank]
    hf = tf.einsum("brt,ntk->bnrk", h_hat, f)  # [B, N, Nr, rank]
    snr = tf.broadcast_to(tf.cast(symbol_energy, tf.float32) / tf.cast(no, tf.float32),
                          tf.shape(h_hat)[:1])
    # A = I + (Es / no) F^H h^H h F; 1 + SINR_k = 1 / [A^-1]_kk. A is 1x1 or 2x2, so its
    # inverse's diagonal is written out (XLA has no complex matrix inverse): for 2x2,
    # [A^-1]_11 = A_22 / det A and [A^-1]_22 = A_11 / det A.
    gram = tf.matmul(hf, hf, adjoint_a=True)
    a = tf.math.real(tf.linalg.diag_part(gram)) * snr[:, None, None] + 1.0  # [B, N, rank]
    log_a = tf.math.log(a)
    if rank == 1:
        return log_a[..., 0] / math.log(2.0)
    det = a[..., 0] * a[..., 1] - tf.abs(gram[..., 0, 1]) ** 2 * snr[:, None] ** 2
    return (2.0 * tf.math.log(tf.maximum(det, 1e-30)) - log_a[..., 0] - log_a[..., 1]) / math.log(2.0)


def type1_pmi(h_hat, no, symbol_energy: float = 1.0, rank: int | None = None) -> tf.Tensor:
    """The PMI fed back, ``[B]`` int32: argmax of :func:`type1_lmmse_rates` (on an exact
    tie, e.g. ``H = I`` at rank 2, either codeword: the rate is the same)."""
    return tf.argmax(type1_lmmse_rates(h_hat, no, symbol_energy, rank), axis=-1,
                     output_type=tf.int32)


def type1_precoding_matrix(h_hat, no, symbol_energy: float = 1.0,
                           rank: int | None = None) -> tf.Tensor:
    """The precoder ``F = sqrt(Nt) W_pmi`` ``[B, 2, rank]`` complex64 of ``precoding: type1``.

    ``h_hat``: ``[B, Nr, 2]`` complex64, the receiver's estimate (fed back); ``no``: ``[B]``
    or scalar noise variance per complex receive sample; ``symbol_energy``: ``Es`` of each
    layer's symbols; ``rank`` default ``Nt = 2`` (the layout's streams). ``F x`` carries
    ``Nt Es`` per channel use, ``Nt Es / rank`` per layer; the PMI is :func:`type1_pmi`.
    """
    h_hat = _check_h(h_hat)
    rank = h_hat.shape[-1] if rank is None else rank
    pmi = type1_pmi(h_hat, no, symbol_energy, rank)
    return tf.gather(type1_codebook(rank), pmi) * math.sqrt(h_hat.shape[-1])
