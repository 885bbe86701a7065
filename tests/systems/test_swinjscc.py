"""SwinJSCC SA&RA: rate adaptation keeps exactly the requested channels; SNR modulator."""

import numpy as np
import pydantic
import pytest
import tensorflow as tf

from semsim.systems.base import CSISpec, LinkSpec
from semsim.systems.registry import get_system_type
from semsim.systems.swinjscc import RateModulator, SNRModulator, SwinJSCC

LINK = LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(mode="perfect"))
TINY = dict(
    channels=8, rates=(1, 2, 4, 8), encoder_dims=(8, 8), encoder_depths=(1, 1),
    encoder_heads=(2, 2), decoder_dims=(8, 8), decoder_depths=(1, 1), decoder_heads=(2, 2),
    hidden=8,
)  # fmt: skip


def test_rate_modulator_keeps_top_k():
    layer = RateModulator(6, hidden=8)
    z = tf.random.uniform([3, 2, 2, 6], seed=0)
    for k in (1, 3, 6):
        out, mask = layer(z, tf.constant([0.0, 10.0, 20.0]), tf.fill([3], 0.1), tf.constant(k))
        np.testing.assert_array_equal(mask.numpy().sum(axis=1), k)
        # Dropped channels are exactly zero; kept ones are the input times sigmoid(score).
        dropped = mask.numpy()[:, None, None, :] == 0
        assert np.all(out.numpy()[np.broadcast_to(dropped, out.shape)] == 0)
        w1, b1 = (v.numpy() for v in layer.hidden.weights)
        w2, b2 = (v.numpy() for v in layer.score.weights)
        ctx = np.concatenate([z.numpy().mean(axis=(1, 2)), [[0.0, 0.1], [10.0, 0.1], [20.0, 0.1]]], 1)
        scores = np.maximum(ctx @ w1 + b1, 0) @ w2 + b2
        top = np.argsort(-scores, axis=1)[:, :k]
        expected = np.zeros_like(scores)
        np.put_along_axis(expected, top, 1.0, axis=1)
        np.testing.assert_array_equal(mask.numpy(), expected)


def test_snr_modulator_scales_in_unit_interval_and_depend_on_snr():
    layer = SNRModulator(5, hidden=4, depth=3)
    scales = layer(tf.constant([0.0, 20.0])).numpy()
    assert scales.shape == (2, 5) and np.all((scales >= 0) & (scales <= 1))
    assert len(layer.layers_) == 3 and not np.allclose(scales[0], scales[1])


# The largest trained count whose CR (k / 48) does not exceed the target: 0.08 gives 2
# (CR 0.042), not the nearer 4 (CR 0.083 > 0.08); below 1 / 48 the floor is k = 1.
@pytest.mark.parametrize("target_cr, k", [(1 / 48, 1), (0.05, 2), (0.08, 2), (1 / 12, 4),
                                          (0.3, 8), (0.01, 1)])
def test_kept_channels_and_cr_follow_requested_rate(target_cr, k):
    model = SwinJSCC(LINK, **TINY)
    images = tf.random.uniform([2, 16, 16, 3], seed=1)
    out = model({"image": images, "snr_db": tf.constant([5.0, 15.0]), "target_cr": tf.fill([2], target_cr)})
    np.testing.assert_array_equal(out["kept_maps"].numpy(), [k, k])
    np.testing.assert_allclose(out["cr"].numpy(), k / 48, rtol=1e-6)
    assert [bin(int(c)).count("1") for c in out["channel_mask"].numpy()] == [k, k]
    assert out["image_hat"].shape == (2, 16, 16, 3)
    assert model.rate_for(target_cr) == k


def test_default_rate_and_registry():
    spec = get_system_type("swinjscc")
    system = spec.factory(spec.params(**TINY, default_cr=0.1), LINK, (16, 16), 0)
    assert system.model.rate_for(0.1) == 4
    result = system.transmit(np.random.default_rng(0).uniform(size=(2, 16, 16, 3)), 10.0)
    np.testing.assert_allclose(result.cr, 4 / 48, rtol=1e-6)
    np.testing.assert_array_equal(result.extras["kept_maps"], [4, 4])
    with pytest.raises(pydantic.ValidationError):
        spec.params(bogus=1)
    with pytest.raises(ValueError, match="rates must be"):
        SwinJSCC(LINK, channels=4, rates=(8,))
    clone = SwinJSCC.from_config(system.model.get_config())
    assert clone.rates == [1, 2, 4, 8] and clone.link == LINK


def test_default_rate_set_is_every_channel_count_and_never_exceeds_the_target():
    """``rates`` defaults to 1..C; for targets from CR_min = 1/48 to above CR_max the chosen
    CR is at most the target and within one step (1/48) of it."""
    model = SwinJSCC(LINK, **{**TINY, "rates": None})
    assert model.rates == list(range(1, 9))
    images = tf.random.uniform([2, 16, 16, 3], seed=2)
    for target in np.linspace(1 / 48, 0.2, 9):
        k = model.rate_for(float(target))
        assert k / 48 <= target * (1 + 1e-6) and (target - k / 48 < 1 / 48 or k == 8)
    for target in (0.03, 0.11):
        out = model({"image": images, "snr_db": tf.constant([5.0, 15.0]),
                     "target_cr": tf.fill([2], target)})
        assert float(out["cr"][0]) <= target and target - float(out["cr"][0]) < 1 / 48
