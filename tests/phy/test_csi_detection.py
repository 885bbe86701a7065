"""CSI estimation, linear detection, power normalization and gradients through the link."""

import numpy as np
import pytest
import tensorflow as tf

from semsim.phy import (
    AnalogLink,
    CSISpec,
    LinkSpec,
    LMMSEDetector,
    NoisyCSI,
    PerfectCSI,
    PilotLSEstimator,
    PowerNormalization,
    RayleighMIMOChannel,
    ZFDetector,
    complex_to_reals,
    orthogonal_pilots,
    reals_to_complex,
)


def _gaussian(shape, seed):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)).astype(
        np.complex64
    )


def test_pilots_are_orthogonal():
    p = orthogonal_pilots(3, 5, pilot_power=2.0)
    np.testing.assert_allclose(p @ p.conj().T, 10.0 * np.eye(3), atol=1e-4)
    with pytest.raises(ValueError, match="num_pilots >= num_tx_ant"):
        orthogonal_pilots(4, 2)


@pytest.mark.parametrize("num_pilots, pilot_power", [(2, 1.0), (8, 1.0), (4, 0.5)])
def test_ls_error_variance(num_pilots, pilot_power):
    # Per-entry MSE of LS with orthogonal pilots = no / (Np P). 20000 x 4 x 2 entries:
    # relative std of the MSE estimate ~ 0.25 %; tolerance 5 %.
    h = RayleighMIMOChannel(4, 2).sample_channel(20000)
    no = tf.fill([20000], 0.3)
    h_hat, _ = PilotLSEstimator(2, num_pilots, pilot_power)(h, no)
    mse = np.mean(np.abs(h_hat.numpy() - h.numpy()) ** 2)
    expected = 0.3 / (num_pilots * pilot_power)
    assert abs(mse / expected - 1) < 0.05


def test_noisy_csi_error_variance():
    h = RayleighMIMOChannel(2, 2).sample_channel(20000)
    no = tf.fill([20000], 0.05)
    h_given, _ = NoisyCSI(error_var=0.2)(h, no)
    h_noise, _ = NoisyCSI()(h, no)  # sigma_e^2 = no
    assert abs(np.mean(np.abs(h_given.numpy() - h.numpy()) ** 2) / 0.2 - 1) < 0.05
    assert abs(np.mean(np.abs(h_noise.numpy() - h.numpy()) ** 2) / 0.05 - 1) < 0.05


@pytest.mark.parametrize("csi", [PerfectCSI(), PilotLSEstimator(2, 4)])
def test_snr_estimate(csi):
    # The fed-back SNR estimate is unbiased in the linear domain within 5 % on average.
    channel = RayleighMIMOChannel(2, 2)
    h = channel.sample_channel(5000)
    no = channel.noise_variance(h, 10.0)
    _, snr_hat_db = csi(h, no)
    assert abs(np.mean(10 ** (snr_hat_db.numpy() / 10)) / 10.0 - 1) < 0.05


def _numpy_lmmse(y, h, no):
    nr = h.shape[-2]
    out = []
    for yb, hb, nb in zip(y, h, no, strict=True):
        out.append(hb.conj().T @ np.linalg.inv(hb @ hb.conj().T + nb * np.eye(nr)) @ yb)
    return np.stack(out)


@pytest.mark.parametrize("nr, nt", [(4, 2), (2, 2), (2, 4)])
def test_lmmse_matches_numpy(nr, nt):
    h = _gaussian([6, nr, nt], 1)
    y = _gaussian([6, nr, 10], 2)
    no = np.linspace(0.05, 1.0, 6).astype(np.float32)
    x_hat, no_eff = LMMSEDetector()(tf.constant(y), tf.constant(h), tf.constant(no))
    np.testing.assert_allclose(x_hat.numpy(), _numpy_lmmse(y, h, no), atol=1e-5)
    assert no_eff.shape == (6, nt, 10)


def test_unbiased_lmmse_matches_sionna_definition():
    # Unbiased: each stream divided by its gain d = diag(G H); error variance 1/d - 1.
    h = _gaussian([5, 3, 2], 3)
    y = _gaussian([5, 3, 7], 4)
    no = np.full(5, 0.2, np.float32)
    biased = _numpy_lmmse(y, h, no)
    gains = np.stack(
        [
            np.real(np.diag(hb.conj().T @ np.linalg.inv(hb @ hb.conj().T + 0.2 * np.eye(3)) @ hb))
            for hb in h
        ]
    )
    x_hat, no_eff = LMMSEDetector(unbiased=True)(tf.constant(y), tf.constant(h), tf.constant(no))
    np.testing.assert_allclose(x_hat.numpy(), biased / gains[..., None], atol=1e-4)
    expected_no_eff = np.broadcast_to((1 / gains - 1)[..., None], (5, 2, 7))
    np.testing.assert_allclose(no_eff.numpy(), expected_no_eff, rtol=1e-4)


@pytest.mark.parametrize("detector", [LMMSEDetector(), ZFDetector()])
def test_detectors_recover_x_at_high_snr(detector):
    channel = RayleighMIMOChannel(4, 2)
    x = PowerNormalization()(tf.constant(_gaussian([16, 2, 12], 5)))
    y, h, no = channel(x, 120.0)
    x_hat, _ = detector(y, h, no)
    np.testing.assert_allclose(x_hat.numpy(), x.numpy(), atol=1e-4)


def test_detection_with_fast_fading():
    channel = RayleighMIMOChannel(2, 2, fading="fast")
    x = PowerNormalization()(tf.constant(_gaussian([4, 2, 9], 6)))
    y, h, no = channel(x, 120.0)
    x_hat, no_eff = LMMSEDetector()(y, h, no)
    np.testing.assert_allclose(x_hat.numpy(), x.numpy(), atol=1e-3)
    assert no_eff.shape == (4, 2, 9)


def test_zf_effective_noise():
    h = _gaussian([3, 4, 2], 7)
    y = _gaussian([3, 4, 5], 8)
    x_hat, no_eff = ZFDetector()(tf.constant(y), tf.constant(h), tf.constant(0.5))
    expected = np.stack([0.5 * np.real(np.diag(np.linalg.inv(hb.conj().T @ hb))) for hb in h])
    np.testing.assert_allclose(no_eff.numpy()[..., 0], expected, rtol=1e-4)
    np.testing.assert_allclose(x_hat.numpy(), np.linalg.pinv(h) @ y, atol=1e-4)


def test_power_normalization_counts_only_sent_symbols():
    x = tf.constant(_gaussian([3, 2, 8], 9))
    mask = np.ones([3, 2, 8], np.float32)
    mask[:, :, 5:] = 0
    out = PowerNormalization(power=2.0)(x, sent_mask=tf.constant(mask)).numpy()
    assert np.all(out[:, :, 5:] == 0)
    np.testing.assert_allclose(np.sum(np.abs(out) ** 2, axis=(1, 2)) / mask.sum(axis=(1, 2)), 2.0, rtol=1e-5)
    empty = PowerNormalization()(x, sent_mask=tf.zeros([3, 2, 8])).numpy()
    assert np.all(empty == 0)


def test_power_normalization_per_user():
    x = tf.constant(_gaussian([2, 3, 1, 16], 10) * np.array([1, 5, 0.1])[None, :, None, None])
    out = PowerNormalization(axes=(2, 3))(x).numpy()
    np.testing.assert_allclose(np.mean(np.abs(out) ** 2, axis=(2, 3)), 1.0, rtol=1e-5)


def test_real_complex_pairing_round_trip():
    z = tf.constant([[1.0, 2.0, 3.0, 4.0]])
    c = reals_to_complex(z)
    np.testing.assert_array_equal(c.numpy(), [[1 + 2j, 3 + 4j]])
    np.testing.assert_array_equal(complex_to_reals(c).numpy(), z.numpy())


@pytest.mark.parametrize("csi", ["perfect", "ls", "noisy"])
def test_gradients_reach_transmitted_symbols(csi):
    link = AnalogLink(LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(csi, pilots=4)))
    z = tf.Variable(tf.random.normal([4, 2, 32]))
    target = tf.random.normal([4, 2, 16, 2])
    with tf.GradientTape() as tape:
        x = reals_to_complex(z)
        x_hat = link(x, tf.constant(10.0)).x_hat
        loss = tf.reduce_mean((complex_to_reals(x_hat) - tf.reshape(target, [4, 2, 32])) ** 2)
    grad = tape.gradient(loss, z)
    assert grad is not None
    assert np.all(np.isfinite(grad.numpy())) and np.any(grad.numpy() != 0)


def test_analog_link_multi_user_shapes_and_recovery():
    link = AnalogLink(LinkSpec(num_rx_ant=4, users=3, antennas_per_user=1, csi=CSISpec("perfect")))
    x = PowerNormalization(axes=(2, 3))(tf.constant(_gaussian([5, 3, 1, 20], 11)))
    x_hat, no_eff, no, sent_reals = link(x, 150.0)
    np.testing.assert_array_equal(sent_reals.numpy(), np.full((5, 3), 2 * 20))
    assert x_hat.shape == (5, 3, 1, 20) and no_eff.shape == (5, 3, 1, 20) and no.shape == (5,)
    np.testing.assert_allclose(x_hat.numpy(), x.numpy(), atol=1e-4)


def test_zf_refuses_more_streams_than_antennas():
    with pytest.raises(ValueError, match="zero forcing"):
        ZFDetector()(tf.constant(_gaussian([1, 2, 3], 0)), tf.constant(_gaussian([1, 2, 4], 0)), 0.1)
