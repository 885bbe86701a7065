"""Flat Rayleigh MIMO channels (single-user link and multi-user uplink).

Model: ``y = H x + n`` per channel use, ``H`` with i.i.d. CN(0, 1) entries (optionally
spatially correlated by the Kronecker model with exponential correlation matrices),
``n`` ~ CN(0, no I). Channel generation, correlation and noise come from Sionna
(``GenerateFlatFadingChannel``, ``KroneckerModel``, ``exp_corr_mat``, ``AWGN``).

SNR definition
--------------
``snr_db`` is the per-receive-antenna average SNR. Two calibrations of the noise
variance ``no`` (per complex receive sample) are offered:

* ``snr_mode="realized"`` (the seed papers): ``no = ||H X||_F^2 / (||H X||_0 * snr)``:
  the received power averaged over the nonzero received entries of this very
  transmission, so pruned (zero) symbols do not count.
* ``snr_mode="average"`` (classic BER curves): ``no = ||X||_F^2 / (n_sent * snr)`` with
  ``n_sent`` the number of channel uses carrying at least one nonzero symbol: the
  average received power per antenna when ``E|h_ij|^2 = 1``, independent of the
  realization of ``H`` (so fading is not normalized away).

Without fading (``fading="none"``, ``H = I``) both are the same: the mean power of the
nonzero received entries.
"""

from __future__ import annotations

from typing import Literal

import tensorflow as tf
from sionna.phy.channel import AWGN, GenerateFlatFadingChannel, KroneckerModel, exp_corr_mat

from semsim.phy.layer import PhyLayer
from semsim.phy.tr38901 import TR38901FlatFading
from semsim.phy.utils import db_to_linear, per_example

FADING_MODES = ("block", "fast", "none")
SNR_MODES = ("realized", "average")


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


class RayleighMIMOChannel(PhyLayer):
    """Flat-fading ``num_rx_ant x num_tx_ant`` Rayleigh MIMO channel with AWGN.

    Parameters
    ----------
    num_rx_ant, num_tx_ant : int
        Receive and transmit antennas (``Nr``, ``Nt``).
    fading : ``"block"`` | ``"fast"`` | ``"none"``
        ``block``: one ``H`` per example (image/codeword), ``fast``: a new ``H`` per
        channel use, ``none``: AWGN only (``H = I``, needs ``Nr == Nt``).
    rx_correlation, tx_correlation : float in [0, 1)
        Exponential correlation coefficients of the Kronecker model (0: i.i.d.).
    snr_mode : ``"realized"`` | ``"average"``
        Noise calibration, see the module docstring.
    model : ``"rayleigh"`` or a TR 38.901 model (``"cdl-a"`` ... ``"tdl-e"``,
        :mod:`semsim.phy.tr38901`; unit average power per entry, no extra correlation).
    delay_spread_ns : float
        RMS delay spread of a TR 38.901 model, in ns.

    Call
    ----
    x : complex64 ``[B, Nt, L]``; zero entries are symbols not sent.
    snr_db : float32 scalar or ``[B]``, per-receive-antenna SNR in dB.
    h : optional complex64 channel to reuse instead of drawing one
        (``[B, Nr, Nt]``, or ``[B, L, Nr, Nt]`` for fast fading).

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
        snr_mode: Literal["realized", "average"] = "realized",
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
        # With H = I both calibrations are the received power per antenna; "realized"
        # computes it exactly (each antenna receives only its own stream).
        self._calibration = "realized" if fading == "none" else snr_mode
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

    def noise_variance(self, h, snr_db, x=None, symbol_energy: float = 1.0) -> tf.Tensor:
        """Noise variance ``no`` ``[B]`` for ``snr_db``.

        With ``x`` (``[B, Nt, L]``) it follows ``snr_mode`` exactly as :meth:`call`
        does. Without ``x`` it is the expectation over i.i.d. symbols of energy
        ``symbol_energy`` on every stream: ``realized`` gives
        ``||H||_F^2 Es / (Nr snr)``, ``average`` gives ``Nt Es / snr``. Used for
        pilots, which are sent before the data exist.
        """
        h = tf.cast(h, tf.complex64)
        batch = tf.shape(h)[0]
        snr = db_to_linear(per_example(snr_db, batch, "snr_db"))
        if x is None:
            if self._calibration == "average":
                power = tf.fill([batch], self.num_tx_ant * float(symbol_energy))
            else:
                gains = tf.reduce_sum(tf.abs(h) ** 2, axis=tf.range(1, tf.rank(h)))
                per_use = tf.cast(tf.reduce_prod(tf.shape(h)[1:-2]), tf.float32)
                power = gains * float(symbol_energy) / (self.num_rx_ant * per_use)
            return power / snr
        x = tf.cast(x, tf.complex64)
        return _received_power(x, self.apply_channel(x, h), self._calibration) / snr

    def call(self, x, snr_db, h=None):
        x = tf.cast(x, tf.complex64)
        batch = tf.shape(x)[0]
        if h is None:
            h = self.sample_channel(batch, tf.shape(x)[-1] if self.fading == "fast" else None)
        h = tf.cast(h, tf.complex64)
        hx = self.apply_channel(x, h)
        snr = db_to_linear(per_example(snr_db, batch, "snr_db"))
        no = _received_power(x, hx, self._calibration) / snr
        y = self._awgn(hx, no)
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
            "model": self.model,
            "delay_spread_ns": self.delay_spread_ns,
        }


def _received_power(x: tf.Tensor, hx: tf.Tensor, snr_mode: str) -> tf.Tensor:
    """Received power per antenna that ``snr`` refers to, ``[B]`` (see module docstring).

    ``x`` ``[B, Nt, L]``, ``hx`` ``[B, Nr, L]`` complex64.
    """
    if snr_mode == "realized":
        return _mean_power_over_nonzero(hx)
    sent = tf.cast(tf.reduce_any(tf.not_equal(x, 0), axis=1), tf.float32)
    energy = tf.reduce_sum(tf.abs(x) ** 2, axis=[1, 2])
    return tf.math.divide_no_nan(energy, tf.reduce_sum(sent, axis=1))


def _mean_power_over_nonzero(z: tf.Tensor) -> tf.Tensor:
    """``||z||_F^2 / ||z||_0`` per example, ``z`` ``[B, ...]`` complex -> ``[B]``."""
    axes = tf.range(1, tf.rank(z))
    power = tf.abs(z) ** 2
    count = tf.reduce_sum(tf.cast(power > 0, tf.float32), axis=axes)
    return tf.math.divide_no_nan(tf.reduce_sum(power, axis=axes), count)


class MultiUserUplinkChannel(RayleighMIMOChannel):
    """Uplink of ``num_users`` users with ``antennas_per_user`` antennas each to one
    ``num_rx_ant``-antenna receiver: the MIMO channel with ``Nt = K * A`` columns,
    user ``k`` owning columns ``k*A:(k+1)*A``.

    The SNR is per user: ``no`` is the mean over users of each user's received power
    per antenna (as :class:`RayleighMIMOChannel` defines it for that user alone,
    ``snr_mode`` included) divided by ``snr``. Spatial correlation applies at the
    receiver only (users are not co-located).

    Call
    ----
    x : complex64 ``[B, K, A, L]``, each user power-normalized on its own
        (``PowerNormalization(axes=(2, 3))``).
    snr_db : scalar or ``[B]``; h : optional ``[B, M, K*A]``.

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
        snr_mode: Literal["realized", "average"] = "realized",
        **kwargs,
    ):
        kwargs.pop("num_tx_ant", None)
        kwargs.pop("tx_correlation", None)
        if int(num_users) != num_users or num_users < 1:
            raise ValueError(f"num_users must be a positive integer, got {num_users!r}")
        if int(antennas_per_user) != antennas_per_user or antennas_per_user < 1:
            raise ValueError(f"antennas_per_user must be a positive integer, got {antennas_per_user!r}")
        super().__init__(
            num_rx_ant, num_users * antennas_per_user, fading, rx_correlation, 0.0, snr_mode, **kwargs
        )
        self.num_users = int(num_users)
        self.antennas_per_user = int(antennas_per_user)

    def _per_user(self, x):
        """``[B, K, A, L]`` -> ``[B, K*A, L]``."""
        x = tf.cast(x, tf.complex64)
        if x.shape.rank != 4:
            raise ValueError(f"multi-user x must have shape [B, K, A, L], got {x.shape}")
        return tf.reshape(x, [tf.shape(x)[0], self.num_tx_ant, -1])

    def _user_powers(self, x, h):
        """Received power per antenna of each user alone, ``[B, K]``."""
        powers = []
        for k in range(self.num_users):
            cols = slice(k * self.antennas_per_user, (k + 1) * self.antennas_per_user)
            xk = x[:, cols, :]
            powers.append(_received_power(xk, self.apply_channel(xk, h[..., cols]), self._calibration))
        return tf.stack(powers, axis=1)

    def noise_variance(self, h, snr_db, x=None, symbol_energy: float = 1.0) -> tf.Tensor:
        """As :meth:`RayleighMIMOChannel.noise_variance`, per user then averaged over
        users; ``x`` is ``[B, K, A, L]``."""
        h = tf.cast(h, tf.complex64)
        if x is None:
            # Each user's expected power is 1/K of all streams' together, in both modes.
            return super().noise_variance(h, snr_db, None, symbol_energy) / self.num_users
        snr = db_to_linear(per_example(snr_db, tf.shape(h)[0], "snr_db"))
        return tf.reduce_mean(self._user_powers(self._per_user(x), h), axis=1) / snr

    def call(self, x, snr_db, h=None):
        x = self._per_user(x)
        batch = tf.shape(x)[0]
        if h is None:
            h = self.sample_channel(batch, tf.shape(x)[-1] if self.fading == "fast" else None)
        h = tf.cast(h, tf.complex64)
        snr = db_to_linear(per_example(snr_db, batch, "snr_db"))
        no = tf.reduce_mean(self._user_powers(x, h), axis=1) / snr
        y = self._awgn(self.apply_channel(x, h), no)
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
