"""The analog path of a link as one layer: power normalization, channel, CSI, detection.

Learned systems use :class:`AnalogLink` in two steps, because the transmitter adapts
to the channel state that the receiver feeds back before the data are sent:

1. ``state = link.observe(batch_size, snr_db, h=None)``: draw (or reuse) ``H`` and
   estimate it as the scenario's CSI mode says, with pilots at the same SNR.
2. ``x_hat, no_eff, no = link.transmit(x, state, snr_db, mask)``: normalize the sent
   symbols' power, pass them through ``state.h`` and detect with ``state.h_hat``.

Shapes: single user ``x`` ``[B, Nt, L]``; multi-user ``x`` ``[B, K, A, L]`` (one power
constraint per user); ``x_hat`` and ``no_eff`` have the shape of ``x``.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import tensorflow as tf

from semsim.phy.channel import MultiUserUplinkChannel, RayleighMIMOChannel
from semsim.phy.csi import make_csi
from semsim.phy.detection import LMMSEDetector, ZFDetector
from semsim.phy.layer import PhyLayer
from semsim.phy.power import PowerNormalization
from semsim.phy.spec import LinkSpec, link_from_config, link_to_config


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


@keras.saving.register_keras_serializable(package="semsim.phy")
class AnalogLink(PhyLayer):
    """Power normalization -> MIMO channel -> CSI estimation -> linear detection.

    Parameters
    ----------
    link : LinkSpec
        Antennas, users, fading, correlation, CSI mode and detector.
    snr_mode : ``"realized"`` | ``"average"``
        Noise calibration of the channel (see :mod:`semsim.phy.channel`).
    power : float
        Average energy per sent complex symbol (per user for multi-user links).
    """

    def __init__(self, link: LinkSpec, snr_mode: str = "realized", power: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.link = link
        self.snr_mode = snr_mode
        self.multi_user = link.users > 1
        common = dict(fading=link.fading, rx_correlation=link.rx_correlation, snr_mode=snr_mode)
        if self.multi_user:
            self.channel = MultiUserUplinkChannel(
                link.users, link.num_rx_ant, link.antennas_per_user, **common
            )
            self.power = PowerNormalization(power, axes=(2, 3))
        else:
            self.channel = RayleighMIMOChannel(
                link.num_rx_ant, link.num_tx_ant, tx_correlation=link.tx_correlation, **common
            )
            self.power = PowerNormalization(power)
        self.csi = make_csi(link.csi.mode, link.num_tx_ant, link.csi.pilots, link.csi.error_var)
        if link.detector == "lmmse":
            self.detector = LMMSEDetector(symbol_energy=power)
        elif link.detector == "zf":
            self.detector = ZFDetector(symbol_energy=power)
        else:
            raise ValueError(f"detector must be 'lmmse' or 'zf', got {link.detector!r}")
        self.symbol_energy = float(power)

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

    def transmit(self, x, state: ChannelState, snr_db, mask=None):
        """Send ``x`` (see module docstring) over ``state``; returns ``(x_hat, no_eff,
        no)`` with ``no`` ``[B]`` the data's noise variance."""
        x = self.power(x, sent_mask=mask)
        y, _, no = self.channel(x, snr_db, h=state.h)
        x_hat, no_eff = self.detector(y, state.h_hat, no)
        if self.multi_user:
            shape = tf.shape(x)
            x_hat = tf.reshape(x_hat, shape)
            no_eff = tf.reshape(no_eff, shape)
        return x_hat, no_eff, no

    def get_config(self):
        return {**super().get_config(), "link": link_to_config(self.link),
                "snr_mode": self.snr_mode, "power": self.symbol_energy}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(link_from_config(config.pop("link")), **config)

    def call(self, x, snr_db, sent_mask=None, h=None):
        """Both steps at once (no CSI feedback to the transmitter)."""
        num_symbols = tf.shape(x)[-1] if self.link.fading == "fast" else None
        state = self.observe(tf.shape(x)[0], snr_db, h, num_symbols)
        return self.transmit(x, state, snr_db, sent_mask)
