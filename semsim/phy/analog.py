"""The analog path of a link as one layer: power normalization, channel, CSI, detection.

Learned systems use :class:`AnalogLink` in two steps, because the transmitter adapts
to the channel state that the receiver feeds back before the data are sent:

1. ``state = link.observe(batch_size, snr_db, h=None)``: draw (or reuse) ``H`` and
   estimate it as the scenario's CSI mode says, with pilots at the same SNR.
2. ``x_hat, no_eff, no, sent_reals = link.transmit(x, state, snr_db, mask)``: normalize the
   sent symbols' power, pass them through ``state.h`` and detect with ``state.h_hat``.

Shapes: single user ``x`` ``[B, Nt, L]``; multi-user ``x`` ``[B, K, A, L]`` (one power
constraint per user); ``x_hat`` and ``no_eff`` have the shape of ``x``. Systems lay their
symbols out with :mod:`semsim.phy.layout` (the one symbol-to-antenna mapping).

Transmitter CSI (``link.precoding == "svd"``, :mod:`semsim.phy.precoding`): ``transmit``
precodes the normalized block by ``F = V diag(sqrt(p))`` from ``state.h_hat`` (the
receiver's estimate, fed back) and water-filling at ``state.no_pilot`` (the noise variance
of the link's SNR), sends ``F x`` through ``state.h`` and detects with the scenario's LMMSE
detector on the effective channel ``h_hat F``. The layout, the power of ``x``, the total
transmit power (``Nt Es`` per channel use) and hence ``no`` are those of the unprecoded
link. With perfect CSI ``h F = U diag(s sqrt(p))`` has orthogonal columns, so LMMSE on it
is ``U^H`` combining followed by each stream's MMSE scaling; a stream water-filling
switches off comes back as 0 with error variance ``Es`` (its symbols are lost).
``link.precoding == "type1"`` does the same with ``F = sqrt(2) W`` from the 3GPP Type I
2-port codebook, the PMI chosen from ``state.h_hat`` (:mod:`semsim.phy.codebook`).

Rate accounting: ``sent_reals`` counts the real symbols that entered the channel layer
(2 per sent complex entry of ``mask``), per example ``[B]`` (multi-user: per user,
``[B, K]``); systems report their CR from it.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import tensorflow as tf

from semsim.phy.channel import make_channel
from semsim.phy.codebook import type1_precoding_matrix
from semsim.phy.csi import make_csi
from semsim.phy.detection import LMMSEDetector, ZFDetector
from semsim.phy.layer import PhyLayer
from semsim.phy.power import PowerNormalization
from semsim.phy.precoding import svd_precoding_matrix
from semsim.phy.spec import LinkSpec, check_precoding, link_from_config, link_to_config


class ChannelState(NamedTuple):
    """What one transmission's channel looks like, to the simulator and to the receiver.

    h, h_hat: complex64 ``[B, Nr, Nt]`` (``[B, L, Nr, Nt]`` for fast fading);
    snr_hat_db: float32 ``[B]``, the SNR estimate fed back; no_pilot: float32 ``[B]``,
    the noise variance the pilots saw.
    """

    h: tf.Tensor
    h_hat: tf.Tensor
    snr_hat_db: tf.Tensor
    no_pilot: tf.Tensor


class Transmission(NamedTuple):
    """What :meth:`AnalogLink.transmit` returns: ``x_hat`` and ``no_eff`` shaped like ``x``;
    ``no`` float32 ``[B]``, the data's noise variance; ``sent_reals`` float32 ``[B]``
    (multi-user ``[B, K]``), the real symbols that entered the channel."""

    x_hat: tf.Tensor
    no_eff: tf.Tensor
    no: tf.Tensor
    sent_reals: tf.Tensor


@keras.saving.register_keras_serializable(package="semsim.phy")
class AnalogLink(PhyLayer):
    """Power normalization -> MIMO channel -> CSI estimation -> linear detection.

    Parameters
    ----------
    link : LinkSpec
        Antennas, users, fading, correlation, SNR definition (``link.snr``), CSI mode and
        detector; the channel comes from :func:`semsim.phy.channel.make_channel`.
    power : float
        Average energy per sent complex symbol (per user for multi-user links).
    """

    def __init__(self, link: LinkSpec, power: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.link = link
        self.multi_user = link.users > 1
        self.channel = make_channel(link, symbol_energy=power)
        self.power = PowerNormalization(power, axes=(2, 3) if self.multi_user else None)
        self.csi = make_csi(link.csi.mode, link.num_tx_ant, link.csi.pilots, link.csi.error_var)
        if link.detector == "lmmse":
            self.detector = LMMSEDetector(symbol_energy=power)
        elif link.detector == "zf":
            self.detector = ZFDetector(symbol_energy=power)
        else:
            raise ValueError(f"detector must be 'lmmse' or 'zf', got {link.detector!r}")
        self.symbol_energy = float(power)
        check_precoding(link.precoding, users=link.users, num_rx_ant=link.num_rx_ant,
                        num_tx_ant=link.num_tx_ant, fading=link.fading, snr=link.snr,
                        detector=link.detector)

    @property
    def pilot_overhead(self) -> int:
        """Pilot channel uses per channel realization (0 for perfect or noisy CSI)."""
        return int(self.csi.overhead)

    def observe(self, batch_size, snr_db, h=None, num_symbols=None) -> ChannelState:
        """Draw (or reuse ``h``) and estimate the channel; ``num_symbols`` is needed for
        fast fading only."""
        if h is None:
            h = self.channel.sample_channel(batch_size, num_symbols)
        h = tf.cast(h, tf.complex64)
        no_pilot = self.channel.noise_variance(h, snr_db, symbol_energy=self.symbol_energy)
        h_hat, snr_hat_db = self.csi(h, no_pilot)
        return ChannelState(h, h_hat, snr_hat_db, no_pilot)

    def transmit(self, x, state: ChannelState, snr_db, mask=None,
                 normalize: bool = True) -> Transmission:
        """Send ``x`` (see module docstring) over ``state``. ``mask`` (0/1, shape of ``x``
        or broadcastable; ``None``: every entry) marks the entries sent; the others are
        forced to zero. ``normalize=False`` sends ``x`` at its own power (e.g. unit-energy
        QAM) instead of normalizing it to ``power``."""
        x = tf.cast(x, tf.complex64)
        sent = tf.ones(tf.shape(x), tf.float32) if mask is None else tf.broadcast_to(
            tf.cast(mask, tf.float32), tf.shape(x))
        x = self.power(x, sent_mask=sent) if normalize else x * tf.cast(sent, tf.complex64)
        if self.link.precoding != "none":
            matrix = svd_precoding_matrix if self.link.precoding == "svd" else type1_precoding_matrix
            f = matrix(state.h_hat, state.no_pilot, self.symbol_energy)
            used = tf.broadcast_to(tf.reduce_max(sent, axis=-2, keepdims=True), tf.shape(sent))
            y, _, no = self.channel(tf.matmul(f, x), snr_db, h=state.h, sent=used)
            x_hat, no_eff = self.detector(y, tf.matmul(state.h_hat, f), no)
        else:
            y, _, no = self.channel(x, snr_db, h=state.h, sent=sent)
            x_hat, no_eff = self.detector(y, state.h_hat, no)
        if self.multi_user:
            shape = tf.shape(x)
            x_hat = tf.reshape(x_hat, shape)
            no_eff = tf.reshape(no_eff, shape)
        return Transmission(x_hat, no_eff, no, 2.0 * tf.reduce_sum(sent, axis=[-2, -1]))

    def get_config(self):
        return {**super().get_config(), "link": link_to_config(self.link),
                "power": self.symbol_energy}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(link_from_config(config.pop("link")), **config)

    def call(self, x, snr_db, sent_mask=None, h=None):
        """Both steps at once (no CSI feedback to the transmitter)."""
        num_symbols = tf.shape(x)[-1] if self.link.fading == "fast" else None
        state = self.observe(tf.shape(x)[0], snr_db, h, num_symbols)
        return self.transmit(x, state, snr_db, sent_mask)
