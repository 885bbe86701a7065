"""The Rayleigh MIMO channel: statistics of H, the SNR calibration, masking, fading."""

import numpy as np
import pytest
import tensorflow as tf

from semsim.phy import MultiUserUplinkChannel, PowerNormalization, RayleighMIMOChannel


def _gaussian(shape, seed):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)).astype(
        np.complex64
    )


def _measured_snr(y, hx, sent):
    """Received SNR over the nonzero received entries: signal power / noise power."""
    noise = y - hx
    signal_power = np.sum(np.abs(hx) ** 2 * sent)
    noise_power = np.sum(np.abs(noise) ** 2 * sent)
    return signal_power / noise_power


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
@pytest.mark.parametrize("masked", [False, True])
def test_realized_snr_matches_request(snr_db, masked):
    # 4000 examples x 2 rx x 32 symbols: the noise-power estimate has a relative std
    # of about 1/sqrt(256000) = 0.2 %, so a 2 % tolerance is > 9 sigma.
    channel = RayleighMIMOChannel(2, 2, snr_mode="realized")
    x = _gaussian([4000, 2, 32], 0)
    if masked:
        x[:, :, 20:] = 0  # pruned symbols: not sent
    x = PowerNormalization()(tf.constant(x))
    y, h, no = channel(x, snr_db)
    hx = (h @ x).numpy()
    sent = np.abs(hx) > 0
    measured = 10 * np.log10(_measured_snr(y.numpy(), hx, sent))
    assert abs(10 ** ((measured - snr_db) / 10) - 1) < 0.02
    assert no.shape == (4000,)


def test_average_snr_mode_is_independent_of_h_and_unit_gain():
    # Average mode (the default): no = A Es / snr; with unit-power symbols on 2 streams
    # the mean per-antenna received power is 2, so no = 2 / snr exactly.
    channel = RayleighMIMOChannel(2, 2)
    assert channel.snr_mode == "average"
    x = PowerNormalization()(tf.constant(_gaussian([8, 2, 64], 1)))
    _, _, no = channel(x, 10.0)
    np.testing.assert_allclose(no.numpy(), 0.2, rtol=1e-5)


def test_average_snr_does_not_depend_on_what_is_sent():
    # Same h, SNR and symbol energy: the same no whatever the content, zeros or a half-full
    # last channel use included (the noise is the receiver's, not the signal's).
    channel = RayleighMIMOChannel(2, 2, symbol_energy=0.5)
    h = channel.sample_channel(3)
    full = tf.constant(_gaussian([3, 2, 16], 12))
    sparse = full.numpy().copy()
    sparse[:, :, 5:] = 0
    sparse[:, 1, 4] = 0
    expected = np.full(3, 2 * 0.5 / 10.0)  # A Es / snr at 10 dB
    for x in (full, tf.constant(sparse), 3.0 * full):
        np.testing.assert_allclose(channel(x, 10.0, h=h)[2].numpy(), expected, rtol=1e-6)
    # Without fading each antenna receives one stream: no = Es / snr.
    awgn = RayleighMIMOChannel(2, 2, fading="none", symbol_energy=0.5)
    np.testing.assert_allclose(awgn(full, 10.0)[2].numpy(), np.full(3, 0.05), rtol=1e-6)


def test_realized_snr_counts_sent_zeros_from_the_mask():
    # A sent symbol that happens to be 0 is still a sent symbol: with the mask it counts in
    # ||HX||_0; H = I so the received power is the mean |x|^2 over the sent entries.
    channel = RayleighMIMOChannel(1, 1, fading="none", snr_mode="realized")
    x = tf.constant([[[2.0, 0.0, 0.0, 0.0]]], tf.complex64)
    sent = tf.constant([[[1.0, 1.0, 0.0, 0.0]]])
    np.testing.assert_allclose(channel(x, 0.0, sent=sent)[2].numpy(), [2.0])  # (4 + 0) / 2
    np.testing.assert_allclose(channel(x, 0.0)[2].numpy(), [4.0])  # nonzero entries only


@pytest.mark.parametrize("users", [1, 3])
@pytest.mark.parametrize("snr", ["average", "realized"])
def test_make_channel_follows_the_link(users, snr):
    from semsim.phy import LinkSpec, make_channel

    link = LinkSpec(num_rx_ant=4, users=users, antennas_per_user=1 if users > 1 else 2,
                    fading="fast", rx_correlation=0.3, snr=snr)
    channel = make_channel(link, symbol_energy=2.0)
    assert isinstance(channel, MultiUserUplinkChannel if users > 1 else RayleighMIMOChannel)
    assert (channel.snr_mode, channel.fading, channel.rx_correlation) == (snr, "fast", 0.3)
    assert (channel.num_rx_ant, channel.num_tx_ant, channel.symbol_energy) == (
        4, link.num_tx_ant, 2.0)


def test_per_example_snr():
    channel = RayleighMIMOChannel(1, 1, fading="none")
    x = tf.ones([3, 1, 1000], tf.complex64)
    snr_db = tf.constant([0.0, 10.0, 20.0])
    _, _, no = channel(x, snr_db)
    np.testing.assert_allclose(no.numpy(), [1.0, 0.1, 0.01], rtol=1e-5)


def test_rayleigh_entries_are_unit_variance_circular():
    # 200k entries: std of the sample variance ~ 0.2 %; tolerance 2 %.
    h = RayleighMIMOChannel(4, 2).sample_channel(25000).numpy()
    assert h.shape == (25000, 4, 2)
    assert abs(np.mean(np.abs(h) ** 2) - 1) < 0.02
    assert abs(np.mean(h.real**2) - 0.5) < 0.01
    assert abs(np.mean(h.real * h.imag)) < 0.01


def test_exponential_receive_correlation():
    # E[h_i h_j^*] = rho^|i-j| for the Kronecker/exponential model; 50k samples,
    # sample correlation std ~ 0.5 %, tolerance 0.03 absolute.
    rho = 0.7
    h = RayleighMIMOChannel(3, 1, rx_correlation=rho).sample_channel(50000).numpy()[..., 0]
    corr = np.einsum("bi,bj->ij", h, h.conj()) / len(h)
    expected = rho ** np.abs(np.subtract.outer(np.arange(3), np.arange(3)))
    np.testing.assert_allclose(np.abs(corr), expected, atol=0.03)


def test_block_and_fast_fading():
    x = tf.constant(_gaussian([2, 2, 16], 2))
    _, h_block, _ = RayleighMIMOChannel(2, 2, fading="block")(x, 10.0)
    _, h_fast, _ = RayleighMIMOChannel(2, 2, fading="fast")(x, 10.0)
    assert h_block.shape == (2, 2, 2)
    assert h_fast.shape == (2, 16, 2, 2)
    # Fast fading draws a new matrix for every channel use.
    assert not np.allclose(h_fast[:, 0].numpy(), h_fast[:, 1].numpy())


def test_fast_fading_applies_each_matrix_to_its_symbol():
    channel = RayleighMIMOChannel(2, 2, fading="fast")
    x = tf.constant(_gaussian([3, 2, 5], 3))
    h = channel.sample_channel(3, 5)
    y, _, _ = channel(x, 200.0, h=h)
    expected = np.einsum("blrt,btl->brl", h.numpy(), x.numpy())
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-4)


def test_given_channel_is_reused():
    channel = RayleighMIMOChannel(2, 2)
    h = channel.sample_channel(4)
    x = tf.constant(_gaussian([4, 2, 8], 4))
    y, h_out, _ = channel(x, 300.0, h=h)
    np.testing.assert_array_equal(h_out.numpy(), h.numpy())
    np.testing.assert_allclose(y.numpy(), (h @ x).numpy(), atol=1e-5)


def test_noise_variance_without_data_matches_expectation():
    # Pilots are sent before the data: noise_variance(h, snr) uses the expected
    # received power ||H||^2 Es / Nr, which equals the data's realized power on average.
    channel = RayleighMIMOChannel(2, 4, snr_mode="realized")
    h = channel.sample_channel(2000)
    x = PowerNormalization()(tf.constant(_gaussian([2000, 4, 256], 5)))
    with_data = channel.noise_variance(h, 10.0, x=x).numpy()
    expected = channel.noise_variance(h, 10.0).numpy()
    np.testing.assert_allclose(np.mean(with_data / expected), 1.0, rtol=0.01)


def test_multi_user_snr_is_per_user():
    # Two users, one much stronger channel: the noise follows the mean per-user power.
    channel = MultiUserUplinkChannel(num_users=2, num_rx_ant=2, snr_mode="average")
    x = PowerNormalization(axes=(2, 3))(tf.constant(_gaussian([16, 2, 1, 64], 6)))
    y, h, no = channel(x, 10.0)
    assert y.shape == (16, 2, 64) and h.shape == (16, 2, 2)
    np.testing.assert_allclose(no.numpy(), 0.1, rtol=1e-5)


def test_multi_user_realized_snr():
    channel = MultiUserUplinkChannel(num_users=3, num_rx_ant=4, snr_mode="realized")
    x = PowerNormalization(axes=(2, 3))(tf.constant(_gaussian([3000, 3, 1, 32], 7)))
    y, h, no = channel(x, 5.0)
    per_user = [
        np.mean(np.abs(np.einsum("br,bl->brl", h.numpy()[:, :, k], x.numpy()[:, k, 0])) ** 2)
        for k in range(3)
    ]
    noise = y.numpy() - np.einsum("brk,bkl->brl", h.numpy(), x.numpy()[:, :, 0])
    snr = np.mean(per_user) / np.mean(np.abs(noise) ** 2)
    assert abs(10 * np.log10(snr) - 5.0) < 0.1  # 2 % in linear terms


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_rx_ant=0, num_tx_ant=2), "num_rx_ant"),
        (dict(num_rx_ant=2, num_tx_ant=2, fading="slow"), "fading"),
        (dict(num_rx_ant=2, num_tx_ant=2, rx_correlation=1.2), "rx_correlation"),
        (dict(num_rx_ant=2, num_tx_ant=4, fading="none"), "num_rx_ant == num_tx_ant"),
        (dict(num_rx_ant=2, num_tx_ant=2, snr_mode="peak"), "snr_mode"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RayleighMIMOChannel(**kwargs)
