"""Deep JSCC / ADJSCC: latent mapping on the link, shapes, exact CR, AF modules, training."""

import numpy as np
import pydantic
import pytest
import tensorflow as tf

from semsim.systems.base import CSISpec, LinkSpec, TrainSpec
from semsim.systems.deepjscc import (
    AttentionFeature,
    DeepJSCC,
    LatentLink,
    channels_for_cr,
)
from semsim.systems.registry import get_system_type

AWGN_2X2 = LinkSpec(num_rx_ant=2, antennas_per_user=2, fading="none", csi=CSISpec(mode="perfect"))
RAYLEIGH_2X2 = LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(mode="perfect"))


def test_latent_link_layout_and_power_at_high_snr():
    # 18 reals -> 9 complex symbols on 2 antennas: L = 5 channel uses, one slot unused.
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 3, 3, 2)).astype(np.float32) * np.array([1, 2, 3])[:, None, None, None]
    layer = LatentLink(AWGN_2X2)
    z_hat, state = layer(tf.constant(z), tf.fill([3], 80.0))
    # Independent reference: per image, mean |symbol|^2 over the 9 sent symbols is 1.
    sym = z.reshape(3, 9, 2)
    power = np.mean(sym[..., 0] ** 2 + sym[..., 1] ** 2, axis=1)
    expected = z / np.sqrt(power)[:, None, None, None]
    # 80 dB SNR: residual noise and LMMSE bias ~1e-4 relative.
    np.testing.assert_allclose(z_hat.numpy(), expected, atol=2e-3)
    np.testing.assert_array_equal(state.h.numpy(), np.broadcast_to(np.eye(2), (3, 2, 2)))


def test_latent_link_reuses_given_channel():
    h = (np.random.default_rng(1).normal(size=(2, 2, 2, 2)) @ [1, 1j]).astype(np.complex64)
    _, state = LatentLink(RAYLEIGH_2X2)(tf.zeros([2, 4, 4, 2]) + 1.0, tf.fill([2], 10.0), h=h)
    np.testing.assert_array_equal(state.h.numpy(), h)


UPLINK_2X2 = LinkSpec(num_rx_ant=2, users=2, antennas_per_user=1, csi=CSISpec(mode="perfect"))


def test_latent_link_multi_user_sends_each_image_from_its_own_user():
    """K = 2 single-antenna users, M = 2: image n is user n % 2 in realization n // 2, which
    uses h[2 (n // 2)]. Realization 0 gives user 1 a zero column (its image is lost), the
    other per-image matrices (h[1], h[3]) are zero and must not be used."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=(4, 2, 2, 4)).astype(np.float32)
    h = np.zeros((4, 2, 2), np.complex64)
    h[0] = [[1, 0], [0, 0]]
    h[2] = np.array([[1, 1j], [1j, 1]]) / np.sqrt(2)
    z_hat, state = LatentLink(UPLINK_2X2)(tf.constant(z), tf.fill([4], 80.0), h=h)
    np.testing.assert_array_equal(state.h.numpy(), h[[0, 2]])
    # Independent reference: each image on its own, 8 symbols of unit mean power.
    sym = z.reshape(4, 8, 2)
    expected = z / np.sqrt(np.mean(sym[..., 0] ** 2 + sym[..., 1] ** 2, axis=1))[:, None, None, None]
    # 80 dB SNR: residual noise and LMMSE bias ~1e-4 relative.
    np.testing.assert_allclose(z_hat.numpy()[[0, 2, 3]], expected[[0, 2, 3]], atol=2e-3)
    assert np.max(np.abs(z_hat.numpy()[1])) < 1e-2  # user 1 of realization 0 is not received


def test_deepjscc_multi_user_recovers_both_users_and_checks_the_batch():
    model = DeepJSCC(UPLINK_2X2, latent_channels=4, filters=(4, 4, 4, 4))
    images = tf.random.uniform([4, 8, 8, 3], seed=3)
    snr = tf.fill([4], 80.0)
    out = model({"image": images, "snr_db": snr})
    np.testing.assert_allclose(out["cr"].numpy(), 4 / 48, rtol=1e-7)
    # With both users' latents recovered the output equals the noiseless decoding of each
    # image's own (power-normalized) latent.
    z = model.encode(images, snr).numpy()
    z = z / np.sqrt(np.mean(z.reshape(4, -1) ** 2, axis=1) * 2)[:, None, None, None]
    np.testing.assert_allclose(out["image_hat"].numpy(), model.decode(tf.constant(z), snr).numpy(),
                               atol=2e-3)
    with pytest.raises(ValueError, match=r"image batch \(3\).*K = 2"):
        model({"image": images[:3], "snr_db": snr[:3]})
    spec = get_system_type("deepjscc")
    with pytest.raises(ValueError, match="eval_batch_size"):
        spec.factory(spec.params(filters=(4, 4, 4, 4), eval_batch_size=3), UPLINK_2X2, (8, 8), 0)


@pytest.mark.parametrize("cr, channels", [(1 / 6, 8), (1 / 12, 4), (0.2, 10), (0.001, 1)])
def test_channels_for_cr(cr, channels):
    assert channels_for_cr(cr) == channels


@pytest.mark.parametrize("attention", [False, True])
def test_shapes_and_exact_cr(attention):
    model = DeepJSCC(RAYLEIGH_2X2, latent_channels=5, filters=(4, 6, 6, 6), snr_attention=attention)
    images = tf.random.uniform([2, 16, 24, 3], seed=0)
    out = model({"image": images, "snr_db": tf.constant([0.0, 20.0])})
    assert out["image_hat"].shape == (2, 16, 24, 3)
    assert float(tf.reduce_min(out["image_hat"])) >= 0 and float(tf.reduce_max(out["image_hat"])) <= 1
    # c = 5 channels at 4 x 6: 120 reals for 3 * 16 * 24 = 1152 -> CR 5/48 exactly.
    latent = model.encode(images, tf.constant([0.0, 20.0]))
    assert latent.shape == (2, 4, 6, 5)
    np.testing.assert_allclose(out["cr"].numpy(), [5 / 48, 5 / 48], rtol=1e-7)
    assert (len(model.encoder_af), len(model.decoder_af)) == ((4, 4) if attention else (0, 0))


def test_attention_feature_matches_numpy():
    layer = AttentionFeature(6)
    x = tf.random.uniform([2, 3, 3, 6], seed=1)
    snr = tf.constant([3.0, 17.0])
    y = layer(x, snr).numpy()
    w1, b1 = (v.numpy() for v in layer.hidden.weights)
    w2, b2 = (v.numpy() for v in layer.gate.weights)
    ctx = np.concatenate([x.numpy().mean(axis=(1, 2)), snr.numpy()[:, None]], axis=1)
    gate = 1 / (1 + np.exp(-(np.maximum(ctx @ w1 + b1, 0) @ w2 + b2)))
    np.testing.assert_allclose(y, x.numpy() * gate[:, None, None, :], rtol=1e-5, atol=1e-6)
    assert w1.shape == (7, 4)  # hidden = max(4, C // 4)


def test_config_round_trip():
    model = DeepJSCC(RAYLEIGH_2X2, latent_channels=3, filters=(4, 4, 4, 4), snr_attention=True)
    clone = DeepJSCC.from_config(model.get_config())
    assert clone.link == RAYLEIGH_2X2 and clone.latent_channels == 3 and clone.snr_attention
    images = tf.random.uniform([1, 8, 8, 3], seed=2)
    model({"image": images, "snr_db": tf.constant([5.0])})
    clone({"image": images, "snr_db": tf.constant([5.0])})
    clone.set_weights(model.get_weights())
    snr = tf.constant([5.0])
    np.testing.assert_allclose(clone.encode(images, snr), model.encode(images, snr), rtol=1e-6)


def test_registry_params():
    for name in ("deepjscc", "adjscc"):
        spec = get_system_type(name)
        params = spec.params(cr=0.25, train_snr_db=25.0, filters=(4, 4, 4, 4))
        system = spec.factory(params, RAYLEIGH_2X2, (32, 32), 0)
        assert system.type_name == name and system.snr_range_db == (25.0, 25.0)
        assert system.model.latent_channels == 12 and system.model.snr_attention == (name == "adjscc")
        with pytest.raises(pydantic.ValidationError):
            spec.params(cr=0.25, bogus=1)
    with pytest.raises(ValueError, match="cr must lie in"):
        channels_for_cr(1.5)


@pytest.mark.slow
def test_loss_falls_on_tiny_overfit(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4, 16, 16, 3)).astype(np.float32)
    images = np.clip(images.cumsum(axis=2) / 8.0 % 1.0, 0, 1).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(images).batch(4)
    system = get_system_type("adjscc").factory(
        get_system_type("adjscc").params(cr=0.25, train_snr_db=20.0, filters=(8, 8, 8, 8)),
        AWGN_2X2,
        (16, 16),
        0,
    )
    system.verbose = 0
    inputs = {"image": tf.constant(images), "snr_db": tf.fill([4], 20.0)}
    system._build(inputs)
    before = float(system.model.test_step(inputs)["loss"])
    train = TrainSpec(steps=150, steps_per_epoch=50, batch_size=4, learning_rate=3e-3, seed=0)
    system.prepare(data, train, tmp_path, resume=False)
    after = float(system.model.test_step(inputs)["loss"])
    # Fixed seeds; 150 Adam steps on 4 images bring the MSE well below the initial one.
    assert after < 0.5 * before, (before, after)
    result = system.transmit(images, 20.0)
    assert result.images_hat.shape == images.shape
    np.testing.assert_allclose(result.cr, 12 / 48)
