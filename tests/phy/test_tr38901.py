"""TR 38.901 flat-fading matrices against Sionna's own CDL/TDL output.

Reference: Sionna's CDL/TDL called directly here, reduced to the OFDM frequency response
at a subcarrier 1.2 MHz off the carrier with Sionna's ``cir_to_ofdm_channel`` (the
module under test uses f = 0 by summing paths: same statistics, different computation).
Statistical checks use 1500 draws with fixed seeds; a correlation coefficient then has a
standard error of about 1/sqrt(1500) ~ 0.026, so the tolerance is 0.1 (4 sigma).
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from sionna.phy.channel import cir_to_ofdm_channel
from sionna.phy.channel.tr38901 import CDL, TDL, PanelArray

from semsim.phy.channel import RayleighMIMOChannel
from semsim.phy.tr38901 import TR38901FlatFading
from semsim.scenario.schema_link import LinkConfig
from semsim.seeding import set_seed

N = 1500
TOL = 0.1


def _array(n):
    return PanelArray(num_rows_per_panel=1, num_cols_per_panel=n, polarization="single",
                      polarization_type="V", antenna_pattern="omni", carrier_frequency=3.5e9)


def _sionna_reference(model, nr, nt):
    """[N, Nr, Nt] narrowband matrices at 1.2 MHz from Sionna directly."""
    family, letter = model.split("-")
    if family == "cdl":
        ch = CDL(letter.upper(), 300e-9, 3.5e9, _array(nr), _array(nt), "downlink")
    else:
        ch = TDL(letter.upper(), 300e-9, 3.5e9, num_rx_ant=nr, num_tx_ant=nt)
    a, tau = ch(N, 1, 1.0)
    h = cir_to_ofdm_channel(tf.constant([1.2e6]), a, tau)  # [N, 1, Nr, 1, Nt, 1, 1]
    return h.numpy()[:, 0, :, 0, :, 0, 0]


def _correlations(h):
    """Receive and transmit correlation matrices E[h h^H] (averaged over the other side)."""
    n, nr, nt = h.shape
    r_rx = np.einsum("brt,bst->rs", h, h.conj()) / (n * nt)
    r_tx = np.einsum("brt,brs->ts", h, h.conj()) / (n * nr)
    return r_rx, r_tx


@pytest.mark.parametrize("model", ["cdl-a", "cdl-d", "tdl-a", "tdl-e"])
def test_power_and_correlation_match_sionna(model):
    set_seed(1)
    h = TR38901FlatFading(model, 2, 4, delay_spread_ns=300.0)(N).numpy()
    assert h.shape == (N, 2, 4) and h.dtype == np.complex64
    set_seed(2)
    ref = _sionna_reference(model, 2, 4)
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=TOL)
    assert np.mean(np.abs(ref) ** 2) == pytest.approx(1.0, abs=TOL)
    for mine, theirs in zip(_correlations(h), _correlations(ref), strict=True):
        np.testing.assert_allclose(mine, theirs, atol=TOL)


def test_cdl_a_is_spatially_correlated_unlike_iid():
    """The statistics test can fail: CDL-A's antenna correlation is far from i.i.d.'s 0."""
    set_seed(3)
    r_rx, r_tx = _correlations(TR38901FlatFading("cdl-a", 2, 2)(500).numpy())
    assert abs(r_rx[0, 1]) > 0.3


def test_channel_layer_uses_model_and_rejects_bad_combinations():
    set_seed(4)
    ch = RayleighMIMOChannel(2, 2, model="cdl-c")
    assert ch.sample_channel(5).shape == (5, 2, 2)
    assert ch.get_config()["model"] == "cdl-c"
    with pytest.raises(ValueError, match="model"):
        RayleighMIMOChannel(2, 2, model="cdl-z")
    with pytest.raises(ValueError, match="spatial structure"):
        RayleighMIMOChannel(2, 2, rx_correlation=0.5, model="tdl-a")
    spec = LinkConfig(nr=2, nt=2, model="tdl-b", delay_spread_ns=30).to_spec()
    assert (spec.model, spec.delay_spread_ns) == ("tdl-b", 30.0)
    with pytest.raises(ValueError, match="single-user"):
        LinkConfig(nr=2, users=2, model="cdl-a")
    with pytest.raises(ValueError, match="single-user"):
        LinkConfig(nr=2, nt=2, fading="fast", model="cdl-a")


def test_scenario_runner_shares_the_models_channels():
    """The runner's shared realizations follow link.model: CDL-D's line of sight makes
    the two receive antennas' gains strongly correlated (i.i.d. Rayleigh: 0)."""
    from semsim.scenario.channels import SharedChannels

    h = SharedChannels(LinkConfig(nr=2, nt=2, model="cdl-d"), seed=0).get(0, 0, 400)
    assert h.shape == (400, 2, 2)
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=TOL)
    assert abs(np.mean(h[:, 0, 0] * np.conj(h[:, 1, 0]))) > 0.7


def test_digital_link_draws_from_the_links_model():
    """DigitalLink.from_spec draws its own H (no ``h`` given) from link.model: on CDL-D,
    whose line of sight correlates the receive antennas' gains, unlike i.i.d. Rayleigh."""
    from semsim.phy.digital import DigitalLink
    from semsim.phy.spec import LinkSpec

    spec = LinkSpec(num_rx_ant=2, antennas_per_user=2, model="cdl-d", delay_spread_ns=30.0)
    link = DigitalLink.from_spec(spec, "qpsk")
    set_seed(6)
    h = link.channel.sample_channel(400).numpy()
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=TOL)
    assert abs(np.mean(h[:, 0, 0] * np.conj(h[:, 1, 0]))) > 0.7
    set_seed(6)
    iid = DigitalLink.from_spec(dataclasses.replace(spec, model="rayleigh"), "qpsk")
    h_iid = iid.channel.sample_channel(400).numpy()
    assert abs(np.mean(h_iid[:, 0, 0] * np.conj(h_iid[:, 1, 0]))) < 0.2
