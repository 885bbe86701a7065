"""3GPP TR 38.901 link-level channels (CDL and TDL) as flat-fading MIMO matrices.

Sionna's :class:`~sionna.phy.channel.tr38901.CDL` and
:class:`~sionna.phy.channel.tr38901.TDL` produce a multipath impulse response (path
gains ``a_p`` and delays ``tau_p``). semsim's links are flat (one complex gain per
antenna pair and channel use), so each realization is reduced to the **narrowband
channel at one subcarrier**, the frequency response at baseband frequency ``f = 0``:

    H[r, t] = sum_p a_p[r, t]      (one time instant)

Any other subcarrier has the same statistics (the paths' phases are uniform); ``f = 0``
makes the reduction a plain sum. Sionna normalizes every power delay profile to total
power 1, and the antennas here are omnidirectional (gain 1), so ``E|H[r, t]|^2 = 1``:
the same unit average power per entry as the i.i.d. Rayleigh channel, hence the same
SNR definition (:mod:`semsim.phy.channel`). What differs is the structure: CDL has
spatial correlation from its cluster angles (uniform linear arrays, half-wavelength
spacing, vertical polarization at both ends, downlink: the ``Nt`` array is the base
station's), CDL-D/E and TDL-D/E have a line-of-sight component (Rician entries).

Time variation is not modelled: each call draws independent snapshots (block fading:
one per image; fast fading: one per channel use), so the UT speed plays no role and is
fixed to 0.
"""

from __future__ import annotations

import tensorflow as tf
from sionna.phy.channel.tr38901 import CDL, TDL, PanelArray

#: Channel models of a scenario's ``link.model`` besides ``rayleigh``.
TR38901_MODELS = tuple(f"{family}-{letter}" for family in ("cdl", "tdl") for letter in "abcde")
#: Carrier frequency (Hz) of the antenna arrays; with half-wavelength spacing and a single
#: snapshot it only sets the array geometry's scale, not the statistics.
CARRIER_FREQUENCY_HZ = 3.5e9


def _ula(num_ant: int) -> PanelArray:
    """Uniform linear array of ``num_ant`` omnidirectional, vertically polarized antennas
    with half-wavelength spacing."""
    return PanelArray(num_rows_per_panel=1, num_cols_per_panel=num_ant, polarization="single",
                      polarization_type="V", antenna_pattern="omni",
                      carrier_frequency=CARRIER_FREQUENCY_HZ)


class TR38901FlatFading:
    """Draws flat-fading ``[B, Nr, Nt]`` complex64 MIMO matrices from a TR 38.901 model.

    Parameters
    ----------
    model : one of :data:`TR38901_MODELS` (``"cdl-a"`` ... ``"tdl-e"``).
    num_rx_ant, num_tx_ant : int
        ``Nr`` and ``Nt``.
    delay_spread_ns : float > 0
        RMS delay spread in nanoseconds (TR 38.901 "nominal": 100 ns). It scales the
        path delays; for the narrowband matrix at ``f = 0`` it does not change the
        statistics, but it is kept so the model is the standard's.

    Call
    ----
    ``sampler(batch_size)`` -> complex64 ``[batch_size, Nr, Nt]`` with
    ``E|H[r, t]|^2 = 1``. Randomness comes from Sionna's global generator
    (:func:`semsim.seeding.set_seed` makes it reproducible).
    """

    def __init__(self, model: str, num_rx_ant: int, num_tx_ant: int,
                 delay_spread_ns: float = 100.0):
        if model not in TR38901_MODELS:
            raise ValueError(f"model must be one of {', '.join(TR38901_MODELS)}, got {model!r}")
        if not delay_spread_ns > 0:
            raise ValueError(f"delay_spread_ns must be > 0, got {delay_spread_ns!r}")
        self.model, self.num_rx_ant, self.num_tx_ant = model, int(num_rx_ant), int(num_tx_ant)
        self.delay_spread_ns = float(delay_spread_ns)
        family, letter = model.split("-")
        delay_spread = self.delay_spread_ns * 1e-9
        if family == "cdl":
            self._model = CDL(letter.upper(), delay_spread, CARRIER_FREQUENCY_HZ,
                              ut_array=_ula(self.num_rx_ant), bs_array=_ula(self.num_tx_ant),
                              direction="downlink", precision="single")
        else:
            self._model = TDL(letter.upper(), delay_spread, CARRIER_FREQUENCY_HZ,
                              num_rx_ant=self.num_rx_ant, num_tx_ant=self.num_tx_ant,
                              precision="single")

    def __call__(self, batch_size) -> tf.Tensor:
        # a: [B, 1, Nr, 1, Nt, paths, 1 time step]; sampling frequency unused for 1 step.
        a, _ = self._model(batch_size, 1, 1.0)
        h = tf.reduce_sum(a[..., 0], axis=-1)
        return tf.cast(h[:, 0, :, 0, :], tf.complex64)
