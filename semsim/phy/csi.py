"""Channel-state information at the receiver: perfect, pilot-based LS, or noisy.

Every CSI layer has the same call, ``(h, no) -> (h_hat, snr_hat_db)``:

* ``h``: true channel, complex64 ``[B, Nr, Nt]`` (block fading) or ``[B, L, Nr, Nt]``
  (fast fading; LS pilots cannot follow it and are refused).
* ``no``: float32 ``[B]`` (or scalar), noise variance per complex receive sample.
* ``h_hat``: the estimate, same shape as ``h``.
* ``snr_hat_db``: float32 ``[B]``, the receiver's estimate of the per-receive-antenna
  SNR for unit-energy symbols on every stream, ``||H_hat||_F^2 / (Nr no)`` (per
  channel use) in dB; for LS the known estimation-error energy is subtracted first.
"""

from __future__ import annotations

from typing import Literal

import keras
import numpy as np
import tensorflow as tf
from sionna.phy.utils import complex_normal

from semsim.phy.layer import PhyLayer
from semsim.phy.utils import as_complex, expand_batch, linear_to_db, per_example

CSI_MODES = ("perfect", "ls", "noisy")


def _snr_db_from_gain(gain: tf.Tensor, h: tf.Tensor, no: tf.Tensor) -> tf.Tensor:
    """``gain`` = summed ``|h_hat|^2`` per example; normalize per rx antenna and use."""
    shape = tf.shape(h)
    per_antenna_use = tf.cast(tf.reduce_prod(shape[1:-1]), tf.float32)
    return linear_to_db(tf.maximum(gain / (per_antenna_use * no), 1e-6))


def _channel_energy(h: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.abs(h) ** 2, axis=tf.range(1, tf.rank(h)))


@keras.saving.register_keras_serializable(package="semsim.phy")
class PerfectCSI(PhyLayer):
    """The receiver knows ``H`` exactly; ``snr_hat_db`` follows from ``H`` and ``no``."""

    overhead = 0

    def call(self, h, no):
        h = tf.cast(h, tf.complex64)
        no = per_example(no, tf.shape(h)[0], "no")
        return h, _snr_db_from_gain(_channel_energy(h), h, no)


def orthogonal_pilots(num_tx_ant: int, num_pilots: int, pilot_power: float = 1.0) -> np.ndarray:
    """Orthogonal pilot matrix ``P`` ``[Nt, Np]`` complex64: the first ``Nt`` rows of the
    ``Np``-point DFT matrix, so every entry has energy ``pilot_power`` and
    ``P P^H = Np * pilot_power * I``. Needs ``Np >= Nt``."""
    if num_pilots < num_tx_ant:
        raise ValueError(
            f"orthogonal pilots need num_pilots >= num_tx_ant, got {num_pilots} < {num_tx_ant}"
        )
    n = np.arange(num_pilots)
    rows = np.exp(-2j * np.pi * np.outer(np.arange(num_tx_ant), n) / num_pilots)
    return (np.sqrt(pilot_power) * rows).astype(np.complex64)


@keras.saving.register_keras_serializable(package="semsim.phy")
class PilotLSEstimator(PhyLayer):
    """Least-squares channel estimation from orthogonal pilots.

    The ``Nt`` transmit antennas send ``P`` (:func:`orthogonal_pilots`, ``[Nt, Np]``)
    through the same channel and noise variance as the data; the receiver forms
    ``H_hat = Y_p P^H (P P^H)^-1``. Each entry's error variance is
    ``no / (Np * pilot_power)``.

    Parameters
    ----------
    num_tx_ant : int
    num_pilots : int
        Pilot length ``Np`` in channel uses (``>= num_tx_ant``); this is the overhead.
    pilot_power : float
        Energy of each pilot symbol on each antenna (linear).
    """

    def __init__(self, num_tx_ant: int, num_pilots: int, pilot_power: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if pilot_power <= 0:
            raise ValueError(f"pilot_power must be positive, got {pilot_power}")
        self.num_tx_ant = int(num_tx_ant)
        self.num_pilots = int(num_pilots)
        self.pilot_power = float(pilot_power)
        pilots = orthogonal_pilots(self.num_tx_ant, self.num_pilots, self.pilot_power)
        self._pilots = tf.constant(pilots)
        self._projector = tf.constant(
            pilots.conj().T @ np.linalg.inv(pilots @ pilots.conj().T).astype(np.complex64)
        )

    @property
    def overhead(self) -> int:
        """Pilot channel uses per channel realization."""
        return self.num_pilots

    @property
    def error_variance_factor(self) -> float:
        """Per-entry LS error variance divided by ``no``: ``1 / (Np * pilot_power)``."""
        return 1.0 / (self.num_pilots * self.pilot_power)

    def call(self, h, no):
        h = tf.cast(h, tf.complex64)
        if h.shape.rank != 3:
            raise ValueError(
                f"LS pilots estimate a block-fading channel [B, Nr, Nt]; got shape {h.shape} "
                "(use csi 'perfect' or 'noisy' with fast fading)"
            )
        if h.shape[-1] != self.num_tx_ant:
            raise ValueError(f"h has {h.shape[-1]} transmit antennas, estimator expects {self.num_tx_ant}")
        no = per_example(no, tf.shape(h)[0], "no")
        received = tf.matmul(h, self._pilots)
        noise = complex_normal(tf.shape(received)) * tf.cast(
            tf.sqrt(expand_batch(no, 3)), tf.complex64
        )
        h_hat = tf.matmul(received + noise, self._projector)
        error_energy = tf.cast(tf.size(h[0]), tf.float32) * no * self.error_variance_factor
        return h_hat, _snr_db_from_gain(_channel_energy(h_hat) - error_energy, h, no)

    def get_config(self):
        return {
            **super().get_config(),
            "num_tx_ant": self.num_tx_ant,
            "num_pilots": self.num_pilots,
            "pilot_power": self.pilot_power,
        }


@keras.saving.register_keras_serializable(package="semsim.phy")
class NoisyCSI(PhyLayer):
    """``H_hat = H + dH`` with ``dH`` i.i.d. CN(0, sigma_e^2).

    ``error_var``: sigma_e^2 (linear); ``None`` sets it equal to the noise variance
    ``no`` of each example, as in the seed papers' imperfect-CSI experiments.
    """

    overhead = 0

    def __init__(self, error_var: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if error_var is not None and error_var < 0:
            raise ValueError(f"error_var must be >= 0 or None, got {error_var}")
        self.error_var = None if error_var is None else float(error_var)

    def call(self, h, no):
        h = tf.cast(h, tf.complex64)
        no = per_example(no, tf.shape(h)[0], "no")
        var = no if self.error_var is None else tf.fill(tf.shape(no), self.error_var)
        scale = as_complex(tf.sqrt(expand_batch(var, h.shape.rank)))
        h_hat = h + complex_normal(tf.shape(h)) * scale
        return h_hat, _snr_db_from_gain(_channel_energy(h_hat), h, no)

    def get_config(self):
        return {**super().get_config(), "error_var": self.error_var}


def make_csi(
    mode: Literal["perfect", "ls", "noisy"],
    num_tx_ant: int,
    pilots: int | None = None,
    error_var: float | None = None,
) -> keras.layers.Layer:
    """The CSI layer for ``mode``; ``pilots`` defaults to ``num_tx_ant`` for ``ls``."""
    if mode not in CSI_MODES:
        raise ValueError(f"csi mode must be one of {CSI_MODES}, got {mode!r}")
    if mode == "perfect":
        return PerfectCSI()
    if mode == "ls":
        return PilotLSEstimator(num_tx_ant, pilots if pilots is not None else num_tx_ant)
    return NoisyCSI(error_var)
