"""Transmitter-side CSI: SVD precoding with water-filling power allocation.

With ``H = U diag(s) V^H`` (``[B, Nr, Nt]``), sending ``x = V diag(sqrt(p)) u`` and
combining ``U^H y`` turns the MIMO channel into ``S = min(Nr, Nt)`` parallel scalar
channels ``z_i = s_i sqrt(p_i) u_i + n_i`` (``n_i ~ CN(0, no)``, ``U`` unitary keeps the
noise white). Water-filling chooses ``p_i = max(0, mu - no / s_i^2)`` with ``sum p_i = P``,
which maximizes ``sum log2(1 + p_i s_i^2 / no)`` (Telatar 1999; Cover & Thomas 9.4).

Conventions: ``u`` ``[B, S, L]`` complex64 streams of unit average energy per symbol;
``P`` the total transmit energy per channel use (the same ``Nt`` as ``Nt`` unit-energy
streams without precoding, so the SNR calibration of :mod:`semsim.phy.channel`'s
``"average"`` mode, ``no = P / snr``, is unchanged). Streams that water-filling switches
off (``p_i = 0``) carry nothing; :meth:`SVDPrecoder.combine` reports them with an
infinite effective noise variance so soft demapping yields zero LLRs (erasures).

The link option ``precoding: svd`` (:class:`~semsim.phy.AnalogLink`,
:class:`~semsim.phy.DigitalLink`, hence every system that sends through them) uses
:func:`svd_precoding_matrix`: the transmitter precodes the layout's ``Nt`` streams
(:mod:`semsim.phy.layout` unchanged: symbol ``n`` on stream ``n mod Nt``, stream ``i`` on
the ``i``-th strongest eigenmode) by ``F = V diag(sqrt(p))``, computed from the channel the
receiver estimated and fed back (``h_hat``, equal to ``h`` with perfect CSI) and
water-filling at the link's noise variance; the receiver runs its usual LMMSE detector on
the effective channel ``h_hat F``. :func:`semsim.phy.spec.check_precoding` says which links support it.
"""

from __future__ import annotations

import tensorflow as tf


def water_filling(gains: tf.Tensor, total_power) -> tf.Tensor:
    """Water-filling powers ``p`` ``[B, S]`` float32 over parallel channels.

    ``gains``: ``[B, S]`` float32 >= 0, the per-stream SNR at unit power
    (``s_i^2 / no``, linear). ``total_power``: scalar or ``[B]`` (linear, > 0).
    ``p_i = max(0, mu - 1 / gains_i)`` with ``mu`` such that ``sum_i p_i = total_power``;
    zero-gain streams get zero power.
    """
    gains = tf.convert_to_tensor(gains, tf.float32)
    if gains.shape.rank != 2:
        raise ValueError(f"gains must have shape [B, S], got {gains.shape}")
    total = tf.broadcast_to(tf.cast(total_power, tf.float32), tf.shape(gains)[:1])
    order = tf.argsort(gains, axis=1, direction="DESCENDING")
    g = tf.gather(gains, order, batch_dims=1)
    inv = tf.where(g > 0, 1.0 / tf.maximum(g, 1e-30), tf.fill(tf.shape(g), float("inf")))
    k = tf.cast(tf.range(1, tf.shape(g)[1] + 1), tf.float32)[tf.newaxis]
    # mu_k: water level if the k strongest streams are active; stream k is active iff
    # mu_k > 1 / g_k (the level stays above its floor). Active sets are nested.
    finite_inv = tf.where(tf.math.is_finite(inv), inv, 0.0)
    mu_k = (total[:, tf.newaxis] + tf.cumsum(finite_inv, axis=1)) / k
    active = tf.cast(mu_k > inv, tf.int32)
    n_active = tf.maximum(tf.reduce_sum(active, axis=1), 1)
    mu = tf.gather(mu_k, n_active - 1, batch_dims=1)
    p_sorted = tf.maximum(mu[:, tf.newaxis] - inv, 0.0)
    inverse = tf.argsort(order, axis=1)
    return tf.gather(p_sorted, inverse, batch_dims=1)


class SVDPrecoder:
    """SVD precoding, water-filling and the matching receive combiner for one ``H``.

    ``h``: ``[B, Nr, Nt]`` complex64 (the transmitter's CSI); ``no``: ``[B]`` or scalar
    noise variance per complex receive sample; ``total_power``: transmit energy per
    channel use (default ``Nt``). ``allocation``: ``"water-filling"`` or ``"equal"``
    (``P / S`` per stream).

    Attributes: ``v`` ``[B, Nt, S]``, ``u`` ``[B, Nr, S]``, ``s`` ``[B, S]`` singular
    values (descending), ``power`` ``[B, S]``.
    """

    def __init__(self, h, no, total_power: float | None = None,
                 allocation: str = "water-filling"):
        if allocation not in ("water-filling", "equal"):
            raise ValueError(f"allocation must be 'water-filling' or 'equal', got {allocation!r}")
        h = tf.convert_to_tensor(h, tf.complex64)
        if h.shape.rank != 3:
            raise ValueError(f"h must have shape [B, Nr, Nt], got {h.shape}")
        nt = h.shape[-1]
        total = float(nt if total_power is None else total_power)
        s, u, v = tf.linalg.svd(h, full_matrices=False)
        self.s, self.u, self.v = s, u, v
        no = tf.broadcast_to(tf.cast(no, tf.float32), tf.shape(s)[:1])
        if allocation == "equal":
            self.power = tf.fill(tf.shape(s), total / s.shape[-1])
        else:
            self.power = water_filling(s**2 / no[:, tf.newaxis], total)
        self.no = no

    @property
    def num_streams(self) -> int:
        return self.s.shape[-1]

    @property
    def stream_snr(self) -> tf.Tensor:
        """``[B, S]`` linear SNR of each stream after combining, ``s_i^2 p_i / no`` (0 for a
        switched-off stream)."""
        return self.s**2 * self.power / self.no[:, tf.newaxis]

    def precode(self, streams: tf.Tensor) -> tf.Tensor:
        """``streams`` ``[B, S, L]`` (unit energy) -> transmit ``[B, Nt, L]``."""
        amp = tf.complex(tf.sqrt(self.power), 0.0)[..., tf.newaxis]
        return tf.matmul(self.v, amp * tf.cast(streams, tf.complex64))

    def combine(self, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Receive combining of ``y`` ``[B, Nr, L]``.

        Returns the stream estimates ``[B, S, L]`` (``U^H y`` divided by each stream's
        gain ``s_i sqrt(p_i)``; 0 for switched-off streams) and their effective noise
        variance ``[B, S]`` (``no / (s_i^2 p_i)``, ``inf`` when ``p_i = 0``).
        """
        z = tf.matmul(self.u, tf.cast(y, tf.complex64), adjoint_a=True)
        gain = self.s * tf.sqrt(self.power)
        on = gain > 0
        scale = tf.where(on, 1.0 / tf.where(on, gain, 1.0), 0.0)
        est = z * tf.complex(scale, 0.0)[..., tf.newaxis]
        no_eff = tf.where(on, self.no[:, tf.newaxis] / tf.where(on, gain**2, 1.0), float("inf"))
        return est, no_eff


def svd_precoding_matrix(h_hat, no, symbol_energy: float = 1.0) -> tf.Tensor:
    """The precoder ``F = V diag(sqrt(p))`` ``[B, Nt, Nt]`` complex64 of ``precoding: svd``.

    ``h_hat``: ``[B, Nr, Nt]`` complex64, the transmitter's CSI (``Nr >= Nt``); ``no``:
    ``[B]`` or scalar noise variance per complex receive sample; ``symbol_energy``: ``Es``
    of each stream's symbols. ``p`` is the water-filling over the per-stream SNRs at unit
    power ``s_i^2 Es / no`` with ``sum_i p_i = Nt``, so ``F x`` carries ``Nt Es`` per channel
    use like ``Nt`` unprecoded streams: the same total transmit power, hence the same ``no``.
    Column ``i`` of ``F`` is the ``i``-th strongest eigenmode (singular values descending).
    """
    h_hat = tf.convert_to_tensor(h_hat, tf.complex64)
    if h_hat.shape.rank != 3:
        raise ValueError(f"h_hat must have shape [B, Nr, Nt] (block fading), got {h_hat.shape}")
    nr, nt = h_hat.shape[-2], h_hat.shape[-1]
    if nr < nt:
        raise ValueError(f"SVD precoding needs Nr >= Nt, got {nr} < {nt}")
    no = tf.cast(no, tf.float32) / float(symbol_energy)
    pre = SVDPrecoder(h_hat, no, total_power=nt)
    return pre.v * tf.complex(tf.sqrt(pre.power), 0.0)[:, tf.newaxis, :]
