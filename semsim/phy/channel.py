"""Flat Rayleigh MIMO channels (single-user link and multi-user uplink).

Model: ``y = H x + n`` per channel use, ``H`` with i.i.d. CN(0, 1) entries (optionally
spatially correlated by the Kronecker model with exponential correlation matrices),
``n`` ~ CN(0, no I). Channel generation, correlation and noise come from Sionna
(``GenerateFlatFadingChannel``, ``KroneckerModel``, ``exp_corr_mat``, ``AWGN``).

SNR definition
--------------
``snr_db`` is the per-receive-antenna SNR. The link declares how the noise variance ``no``
(per complex receive sample) follows from it (``LinkSpec.snr``, the scenario's
``link: {snr: ...}``; one definition for every system of a scenario):

* ``snr_mode="average"`` (default; classic BER curves and capacity): ``no = G Es / snr``,
  the *average* received power per receive antenna over ``no``: ``Es`` is the energy per
  sent complex symbol (``symbol_energy``, what :class:`~semsim.phy.PowerNormalization`
  sets), ``G`` the average channel gain per receive antenna, ``G = A`` with fading
  (``E|h_ij|^2 = 1`` summed over the sender's ``A`` antennas: ``Nt`` for a single user,
  ``antennas_per_user`` per user of an uplink) and ``G = 1`` without (``H = I``). It depends
  neither on the realization of ``H`` (fading is not normalized away) nor on what the
  system sends: the same ``h``, SNR and transmit power give every system the same ``no``.
* ``snr_mode="realized"`` (the seed papers): ``no = ||H X||_F^2 / (||H X||_0 snr)``: the
  received power averaged over the received entries that carry a sent symbol of this very
  transmission (``||H X||_0`` counts them from the ``sent`` mask, so a symbol that happens
  to be zero still counts and unsent positions do not).
"""

from __future__ import annotations

from typing import Literal

import keras
import tensorflow as tf
from sionna.phy.channel import AWGN, GenerateFlatFadingChannel, KroneckerModel, exp_corr_mat

from semsim.phy.layer import PhyLayer
from semsim.phy.spec import LinkSpec
from semsim.phy.tr38901 import TR38901FlatFading
from semsim.phy.utils import db_to_linear, per_example

FADING_MODES = ("block", "fast", "none")
SNR_MODES = ("average", "realized")


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


@keras.saving.register_keras_serializable(package="semsim.phy")
class RayleighMIMOChannel(PhyLayer):
    """Flat-fading ``num_rx_ant x num_tx_ant`` Rayleigh MIMO channel with AWGN.

    Build it from a scenario's link with :func:`make_channel` (the one channel factory).

    Parameters
    ----------
    num_rx_ant, num_tx_ant : int
        Receive and transmit antennas (``Nr``, ``Nt``).
    fading : ``"block"`` | ``"fast"`` | ``"none"``
        ``block``: one ``H`` per example (image/codeword), ``fast``: a new ``H`` per
        channel use, ``none``: AWGN only (``H = I``, needs ``Nr == Nt``).
    rx_correlation, tx_correlation : float in [0, 1)
        Exponential correlation coefficients of the Kronecker model (0: i.i.d.).
    snr_mode : ``"average"`` | ``"realized"``
        Noise calibration, see the module docstring.
    symbol_energy : float
        ``Es``, energy per sent complex symbol (linear) that ``"average"`` refers to.
    model : ``"rayleigh"`` or a TR 38.901 model (``"cdl-a"`` ... ``"tdl-e"``,
        :mod:`semsim.phy.tr38901`; unit average power per entry, no extra correlation).
    delay_spread_ns : float
        RMS delay spread of a TR 38.901 model, in ns.

    Call
    ----
    x : complex64 ``[B, Nt, L]``.
    snr_db : float32 scalar or ``[B]``, per-receive-antenna SNR in dB.
    h : optional complex64 channel to reuse instead of drawing one
        (``[B, Nr, Nt]``, or ``[B, L, Nr, Nt]`` for fast fading).
    sent : optional ``[B, Nt, L]`` 0/1 mask of the entries actually sent (default: the
        nonzero entries of ``x``); only ``"realized"`` uses it.

    Returns
    -------
    y : complex64 ``[B, Nr, L]``
    h : complex64 ``[B, Nr, Nt]`` (block, none) or ``[B, L, Nr, Nt]`` (fast)
    no : float32 ``[B]``, noise variance per complex receive sample.
    """

    def __init__(
        self,
        num_rx_ant: int,
        num_tx_ant: int,
        fading: Literal["block", "fast", "none"] = "block",
        rx_correlation: float = 0.0,
        tx_correlation: float = 0.0,
        snr_mode: Literal["average", "realized"] = "average",
        symbol_energy: float = 1.0,
        model: str = "rayleigh",
        delay_spread_ns: float = 100.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("num_rx_ant", num_rx_ant), ("num_tx_ant", num_tx_ant)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        _check_choice("fading", fading, FADING_MODES)
        _check_choice("snr_mode", snr_mode, SNR_MODES)
        for name, value in (("rx_correlation", rx_correlation), ("tx_correlation", tx_correlation)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if not symbol_energy > 0:
            raise ValueError(f"symbol_energy must be positive, got {symbol_energy!r}")
        if fading == "none" and num_rx_ant != num_tx_ant:
            raise ValueError(
                f"fading='none' (AWGN, H = I) needs num_rx_ant == num_tx_ant, "
                f"got {num_rx_ant} x {num_tx_ant}"
            )
        self.num_rx_ant = int(num_rx_ant)
        self.num_tx_ant = int(num_tx_ant)
        self.fading = fading
        self.rx_correlation = float(rx_correlation)
        self.tx_correlation = float(tx_correlation)
        self.snr_mode = snr_mode
        self.symbol_energy = float(symbol_energy)
        spatial_corr = None
        if rx_correlation > 0 or tx_correlation > 0:
            spatial_corr = KroneckerModel(
                r_tx=exp_corr_mat(tx_correlation, num_tx_ant) if tx_correlation > 0 else None,
                r_rx=exp_corr_mat(rx_correlation, num_rx_ant) if rx_correlation > 0 else None,
            )
        self.model, self.delay_spread_ns = model, float(delay_spread_ns)
        if model == "rayleigh":
            self._generate = GenerateFlatFadingChannel(num_tx_ant, num_rx_ant, spatial_corr)
        else:
            if spatial_corr is not None or fading == "none":
                raise ValueError(f"model {model!r} brings its own spatial structure; it needs "
                                 "rx/tx_correlation 0 and fading 'block' or 'fast'")
            self._generate = TR38901FlatFading(model, num_rx_ant, num_tx_ant, delay_spread_ns)
        self._awgn = AWGN()

    @property
    def sender_antennas(self) -> int:
        """``A``: antennas of one sender (``Nt`` for a single user)."""
        return self.num_tx_ant

    @property
    def average_gain(self) -> float:
        """``G``: average received power per receive antenna per unit symbol energy (``A``
        with fading, 1 for ``H = I``)."""
        return 1.0 if self.fading == "none" else float(self.sender_antennas)

    def sample_channel(self, batch_size, num_symbols=None) -> tf.Tensor:
        """Draw a channel: ``[B, Nr, Nt]`` (block, none) or ``[B, L, Nr, Nt]`` (fast,
        ``num_symbols = L`` required)."""
        if self.fading == "none":
            eye = tf.eye(self.num_rx_ant, dtype=tf.complex64)
            return tf.tile(eye[tf.newaxis], [batch_size, 1, 1])
        if self.fading == "block":
            return self._generate(batch_size)
        if num_symbols is None:
            raise ValueError("fast fading needs num_symbols (channel uses per example)")
        h = self._generate(batch_size * num_symbols)
        return tf.reshape(h, [batch_size, num_symbols, self.num_rx_ant, self.num_tx_ant])

    def apply_channel(self, x: tf.Tensor, h: tf.Tensor) -> tf.Tensor:
        """Noiseless ``H x``: ``x`` ``[B, Nt, L]`` -> ``[B, Nr, L]``."""
        if h.shape.rank == 4:
            hx = tf.linalg.matvec(h, tf.transpose(x, [0, 2, 1]))
            return tf.transpose(hx, [0, 2, 1])
        return tf.matmul(h, x)

    def _nominal(self, batch, snr, symbol_energy=None) -> tf.Tensor:
        """``"average"``: ``G Es / snr`` ``[B]``."""
        es = self.symbol_energy if symbol_energy is None else float(symbol_energy)
        return tf.fill([batch], self.average_gain * es) / snr

    def noise_variance(self, h, snr_db, x=None, symbol_energy: float | None = None,
                       sent=None) -> tf.Tensor:
        """Noise variance ``no`` ``[B]`` for ``snr_db``, as :meth:`call` draws it.

        ``"average"``: ``G Es / snr`` (``symbol_energy`` overrides ``Es``). ``"realized"``
        with ``x`` (``[B, Nt, L]``, ``sent`` as in :meth:`call`): the received power of
        ``x``; without ``x`` its expectation over i.i.d. symbols of energy ``Es`` on
        every stream, ``||H||_F^2 Es / Nr`` (used for pilots, sent before the data).
        """
        h = tf.cast(h, tf.complex64)
        batch = tf.shape(h)[0]
        snr = db_to_linear(per_example(snr_db, batch, "snr_db"))
        if self.snr_mode == "average":
            return self._nominal(batch, snr, symbol_energy)
        if x is None:
            es = self.symbol_energy if symbol_energy is None else float(symbol_energy)
            gains = tf.reduce_sum(tf.abs(h) ** 2, axis=tf.range(1, tf.rank(h)))
            per_use = tf.cast(tf.reduce_prod(tf.shape(h)[1:-2]), tf.float32)
            return gains * es / (self.num_rx_ant * per_use) / snr
        x = tf.cast(x, tf.complex64)
        return self._realized_power(x, h, _sent_mask(x, sent)) / snr

    def _realized_power(self, x, h, sent) -> tf.Tensor:
        """``||H X||_F^2 / ||H X||_0`` ``[B]``, the support counted from ``sent``."""
        support = self.apply_channel(tf.cast(sent, tf.complex64), tf.cast(tf.abs(h), tf.complex64))
        count = tf.reduce_sum(tf.cast(tf.abs(support) > 0, tf.float32), axis=[1, 2])
        power = tf.reduce_sum(tf.abs(self.apply_channel(x, h)) ** 2, axis=[1, 2])
        return tf.math.divide_no_nan(power, count)

    def call(self, x, snr_db, h=None, sent=None):
        x = tf.cast(x, tf.complex64)
        batch = tf.shape(x)[0]
        if h is None:
            h = self.sample_channel(batch, tf.shape(x)[-1] if self.fading == "fast" else None)
        h = tf.cast(h, tf.complex64)
        no = self.noise_variance(h, snr_db, x, sent=sent)
        y = self._awgn(self.apply_channel(x, h), no)
        return y, h, no

    def get_config(self):
        return {
            **super().get_config(),
            "num_rx_ant": self.num_rx_ant,
            "num_tx_ant": self.num_tx_ant,
            "fading": self.fading,
            "rx_correlation": self.rx_correlation,
            "tx_correlation": self.tx_correlation,
            "snr_mode": self.snr_mode,
            "symbol_energy": self.symbol_energy,
            "model": self.model,
            "delay_spread_ns": self.delay_spread_ns,
        }


def _sent_mask(x: tf.Tensor, sent) -> tf.Tensor:
    """float32 0/1 mask of the sent entries of ``x`` (``sent`` given, else ``x != 0``)."""
    if sent is None:
        return tf.cast(tf.not_equal(x, 0), tf.float32)
    return tf.broadcast_to(tf.cast(sent, tf.float32), tf.shape(x))


@keras.saving.register_keras_serializable(package="semsim.phy")
class MultiUserUplinkChannel(RayleighMIMOChannel):
    """Uplink of ``num_users`` users with ``antennas_per_user`` antennas each to one
    ``num_rx_ant``-antenna receiver: the MIMO channel with ``Nt = K * A`` columns,
    user ``k`` owning columns ``k*A:(k+1)*A``.

    The SNR is per user: ``"average"``: ``no = G Es / snr`` with ``G = A`` (each user's
    average received power per antenna); ``"realized"``: the mean over users of each
    user's received power per antenna (as :class:`RayleighMIMOChannel` defines it for that
    user alone) over ``snr``. Spatial correlation applies at the receiver only (users are
    not co-located).

    Call
    ----
    x : complex64 ``[B, K, A, L]``, each user power-normalized on its own
        (``PowerNormalization(axes=(2, 3))``).
    snr_db : scalar or ``[B]``; h : optional ``[B, M, K*A]``; sent : optional ``[B, K, A, L]``.

    Returns ``y`` ``[B, M, L]``, ``h`` ``[B, M, K*A]`` (or ``[B, L, M, K*A]`` fast),
    ``no`` ``[B]``.
    """

    def __init__(
        self,
        num_users: int,
        num_rx_ant: int,
        antennas_per_user: int = 1,
        fading: Literal["block", "fast", "none"] = "block",
        rx_correlation: float = 0.0,
        snr_mode: Literal["average", "realized"] = "average",
        symbol_energy: float = 1.0,
        **kwargs,
    ):
        kwargs.pop("num_tx_ant", None)
        kwargs.pop("tx_correlation", None)
        if int(num_users) != num_users or num_users < 1:
            raise ValueError(f"num_users must be a positive integer, got {num_users!r}")
        if int(antennas_per_user) != antennas_per_user or antennas_per_user < 1:
            raise ValueError(f"antennas_per_user must be a positive integer, got {antennas_per_user!r}")
        super().__init__(
            num_rx_ant, num_users * antennas_per_user, fading, rx_correlation, 0.0, snr_mode,
            symbol_energy, **kwargs
        )
        self.num_users = int(num_users)
        self.antennas_per_user = int(antennas_per_user)

    @property
    def sender_antennas(self) -> int:
        return self.antennas_per_user

    def _per_user(self, x):
        """``[B, K, A, L]`` -> ``[B, K*A, L]``."""
        x = tf.convert_to_tensor(x)
        if x.shape.rank != 4:
            raise ValueError(f"multi-user x must have shape [B, K, A, L], got {x.shape}")
        return tf.reshape(x, [tf.shape(x)[0], self.num_tx_ant, -1])

    def noise_variance(self, h, snr_db, x=None, symbol_energy: float | None = None,
                       sent=None) -> tf.Tensor:
        """As :meth:`RayleighMIMOChannel.noise_variance`, per user (``"realized"``:
        averaged over users); ``x`` and ``sent`` are ``[B, K, A, L]``."""
        h = tf.cast(h, tf.complex64)
        if self.snr_mode == "average" or x is None:
            # Without data each user's expected power is 1/K of all streams' together.
            scale = 1.0 if self.snr_mode == "average" else 1.0 / self.num_users
            return super().noise_variance(h, snr_db, None, symbol_energy) * scale
        snr = db_to_linear(per_example(snr_db, tf.shape(h)[0], "snr_db"))
        x = self._per_user(tf.cast(x, tf.complex64))
        sent = _sent_mask(x, None if sent is None else self._per_user(sent))
        powers = []
        for k in range(self.num_users):
            cols = slice(k * self.antennas_per_user, (k + 1) * self.antennas_per_user)
            powers.append(self._realized_power(x[:, cols], h[..., cols], sent[:, cols]))
        return tf.reduce_mean(tf.stack(powers, axis=1), axis=1) / snr

    def call(self, x, snr_db, h=None, sent=None):
        x = tf.cast(x, tf.complex64)
        flat = self._per_user(x)
        batch = tf.shape(flat)[0]
        if h is None:
            h = self.sample_channel(batch, tf.shape(flat)[-1] if self.fading == "fast" else None)
        h = tf.cast(h, tf.complex64)
        no = self.noise_variance(h, snr_db, x, sent=sent)
        y = self._awgn(self.apply_channel(flat, h), no)
        return y, h, no

    def get_config(self):
        config = super().get_config()
        for key in ("num_tx_ant", "tx_correlation"):
            config.pop(key)
        return {
            **config,
            "num_users": self.num_users,
            "antennas_per_user": self.antennas_per_user,
        }


def make_channel(link: LinkSpec, symbol_energy: float = 1.0) -> RayleighMIMOChannel:
    """The one channel factory: the channel layer of ``link`` (antennas, users, fading,
    correlation, channel model ``link.model`` and SNR definition ``link.snr``), a
    :class:`MultiUserUplinkChannel` when ``link.users > 1``. ``symbol_energy``: ``Es`` of
    ``"average"`` (linear)."""
    if link.snr not in SNR_MODES:
        raise ValueError(f"link.snr must be one of {SNR_MODES}, got {link.snr!r}")
    common = dict(fading=link.fading, rx_correlation=link.rx_correlation, snr_mode=link.snr,
                  symbol_energy=symbol_energy)
    if link.model != "rayleigh":
        if link.users > 1:
            raise ValueError(f"link.model {link.model!r} is single-user; got users={link.users}")
        common.update(model=link.model, delay_spread_ns=link.delay_spread_ns)
    if link.users > 1:
        return MultiUserUplinkChannel(link.users, link.num_rx_ant, link.antennas_per_user,
                                      **common)
    return RayleighMIMOChannel(link.num_rx_ant, link.num_tx_ant,
                               tx_correlation=link.tx_correlation, **common)
