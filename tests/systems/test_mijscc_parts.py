"""MIJSCC building blocks: quantizer, Jensen-Shannon MI estimator, A-MIJSCC mask."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from semsim.semantic import infomax
from semsim.semantic.noise_mask import NoiseMask
from semsim.semantic.quantize import (
    dequantize,
    fake_quantize,
    from_constellation,
    quantize,
    to_constellation,
)


# ---- quantizer ------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [4, 8])
def test_quantizer_round_trip_within_half_a_step(bits):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(5, 4, 4, 6)) * rng.uniform(0.1, 10, size=(5, 1, 1, 1))).astype(np.float32)
    x_hat = fake_quantize(tf.constant(x), bits).numpy()
    flat = x.reshape(5, -1)
    step = (flat.max(1) - flat.min(1)) / (2**bits - 1)
    err = np.abs(x_hat - x).reshape(5, -1).max(1)
    assert np.all(err <= step / 2 * (1 + 1e-4)), (err, step)
    assert np.all(err > step / 10)  # it does quantize (not the identity)


@pytest.mark.parametrize("bits", [4, 8])
def test_quantizer_is_exact_at_grid_points(bits):
    # Values on a grid lo + k * step that reaches both ends: min, max and every value in
    # between are representable, so quantize -> dequantize returns them exactly.
    rng = np.random.default_rng(1)
    levels = 2**bits - 1
    k = rng.integers(0, levels + 1, size=(3, 50)).astype(np.float64)
    k[:, 0], k[:, 1] = 0, levels
    step = np.array([[0.25], [0.5], [2.0]])
    lo = -step * np.array([[3], [levels // 2], [1]])  # the zero point is an integer
    x = (lo + k * step).astype(np.float32)
    code, params = quantize(tf.constant(x), bits)
    np.testing.assert_array_equal(code.numpy(), k)
    np.testing.assert_allclose(dequantize(code, bits, params).numpy(), x, rtol=0, atol=1e-5)
    sent, params = to_constellation(tf.constant(x), bits)
    np.testing.assert_allclose(from_constellation(sent, bits, params).numpy(), x, atol=1e-4)


def test_quantizer_gradient_is_straight_through():
    x = tf.Variable(tf.random.normal([2, 8], seed=2))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(fake_quantize(x, 4) * tf.range(8.0))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), np.tile(np.arange(8.0), (2, 1)))


@pytest.mark.parametrize("bits", [4, 8])
def test_constellation_has_at_most_2_to_q_values_per_real_dimension(bits):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 4000)).astype(np.float32)
    sent, _ = to_constellation(tf.constant(x), bits)
    sent = sent.numpy()
    for image in sent:
        symbols = image[0::2] + 1j * image[1::2]
        n_i = len(np.unique(np.round(symbols.real, 5)))
        n_q = len(np.unique(np.round(symbols.imag, 5)))
        # 4000 Gaussian reals fill every level at 4 bits and most at 8.
        assert n_i <= 2**bits and n_q <= 2**bits
        # (the extreme levels may fall on the other real dimension)
        assert n_i >= (2**bits - 2 if bits == 4 else 100)
        # unit mean energy per complex symbol
        assert np.mean(np.abs(symbols) ** 2) == pytest.approx(1.0, rel=1e-5)


def test_constellation_statistics_cover_only_the_sent_entries():
    x = np.array([[1.0, 2.0, 3.0, 100.0]], np.float32)
    mask = np.array([[1, 1, 1, 0]], np.float32)
    sent, params = to_constellation(tf.constant(x), 4, mask=tf.constant(mask))
    assert sent.numpy()[0, 3] == 0.0
    assert params.scale.numpy().item() == pytest.approx(2.0 / 15)  # (3 - 1) / 15
    # the outlier 100 (not sent) does not stretch the grid: errors within half a step
    back = from_constellation(sent, 4, params).numpy()[0, :3]
    assert np.all(np.abs(back - [1, 2, 3]) <= 1.0 / 15 + 1e-5)


# ---- Jensen-Shannon MI estimator --------------------------------------------------------
def _gauss_log_ratio(x, y, rho):
    """log p(x, y) / (p(x) p(y)) of a standard bivariate normal with correlation rho."""
    return (-0.5 * math.log(1 - rho**2)
            - (rho**2 * (x**2 + y**2) - 2 * rho * x * y) / (2 * (1 - rho**2)))


def _jsd_by_quadrature(rho, half_width=7.0, points=701):
    """JSD(P_joint || P_x P_y) in nats of the bivariate normal, on a grid."""
    g = np.linspace(-half_width, half_width, points)
    x, y = np.meshgrid(g, g)
    q = np.exp(-(x**2 + y**2) / 2) / (2 * np.pi)
    p = np.exp(-(x**2 + y**2 - 2 * rho * x * y) / (2 * (1 - rho**2))) / (
        2 * np.pi * np.sqrt(1 - rho**2))
    m = (p + q) / 2
    kl = lambda a: np.sum(np.where(a > 0, a * np.log(np.maximum(a, 1e-300) / m), 0.0))  # noqa: E731
    return 0.5 * (kl(p) + kl(q)) * (g[1] - g[0]) ** 2


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_js_estimator_with_optimal_critic_gives_twice_the_jsd(rho):
    # With T* = log p(x,y)/(p(x)p(y)) the estimator equals 2 JSD (f-GAN bound is tight).
    rng = np.random.default_rng(4)
    n = 200_000
    x = rng.normal(size=n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.normal(size=n)
    y_shuffled = rng.permutation(y)
    estimate = infomax.js_mi(tf.constant(_gauss_log_ratio(x, y, rho)),
                             tf.constant(_gauss_log_ratio(x, y_shuffled, rho))).numpy()
    # Monte Carlo error with 2e5 samples is ~3e-3 nats.
    assert estimate == pytest.approx(2 * _jsd_by_quadrature(rho), abs=0.01)


def test_js_estimator_is_larger_for_paired_than_for_shuffled_inputs():
    # Toy with a known answer: y = x + small noise (high MI); a shuffled y is independent
    # of x (MI = 0). A global discriminator is trained on paired data only.
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    disc = infomax.GlobalDiscriminator(units=32)
    opt = keras.optimizers.Adam(3e-3)

    def sample(n):
        x = rng.normal(size=(n, 4)).astype(np.float32)
        return x, (x + 0.3 * rng.normal(size=(n, 4))).astype(np.float32)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = -infomax.js_mi(disc(x, y), disc(x, infomax.shuffle_batch(y)))
        opt.apply(tape.gradient(loss, disc.trainable_variables), disc.trainable_variables)

    for _ in range(300):
        step(*sample(128))
    x, y = sample(4000)
    y_ind = rng.permutation(y)  # independent of x
    paired = infomax.js_mi(disc(x, y), disc(x, infomax.shuffle_batch(y))).numpy()
    shuffled = infomax.js_mi(disc(x, y_ind), disc(x, infomax.shuffle_batch(y_ind))).numpy()
    # 2 JSD lies in [0, 2 log 2]; paired inputs are far from independent.
    assert 0.5 < paired <= 2 * math.log(2) + 1e-6
    assert shuffled < 0.1
    assert paired > shuffled + 0.5


def test_shuffle_batch_pairs_every_example_with_another():
    y = tf.reshape(tf.range(5.0), [5, 1])
    np.testing.assert_array_equal(infomax.shuffle_batch(y).numpy()[:, 0], [4, 0, 1, 2, 3])


# ---- A-MIJSCC mask --------------------------------------------------------------------
def _is_consecutive(mask):
    """1...1 0...0 along the last axis."""
    return np.all(np.diff(mask, axis=-1) <= 0) and set(np.unique(mask)) <= {0.0, 1.0}


def test_mask_is_consecutive_for_any_weights():
    keras.utils.set_random_seed(6)
    layer = NoiseMask(40, eta=0.3)
    layer.build((None,))
    for var in layer.trainable_variables:  # arbitrary weights
        var.assign(tf.random.normal(var.shape, stddev=2.0, seed=7))
    noise_var = tf.constant(np.logspace(-3, 1, 50), tf.float32)
    _, scores = layer(noise_var)
    layer.eta = float(np.median(scores.numpy()))  # a threshold that cuts somewhere
    mask, scores = layer(noise_var)
    assert _is_consecutive(mask.numpy())
    assert np.all(np.diff(scores.numpy(), axis=-1) <= 0)
    lengths = mask.numpy().sum(axis=1)
    assert len(set(lengths.tolist())) > 5  # many different cut points were exercised


def test_mask_length_falls_as_snr_rises_after_training_on_a_toy():
    """Repetition toy with a known answer: a scalar u ~ N(0, 1) is sent on each of the k
    kept symbols with noise variance s2; the MMSE estimate from k copies has MSE
    s2 / (k + s2). With the cost beta * k / n the best length is
    k* = sqrt(s2 n / beta) - s2 (at most n), which falls as the SNR rises. The noise
    encoder is trained on that expected loss through its straight-through mask."""
    keras.utils.set_random_seed(8)
    n, beta = 16, 0.02
    layer = NoiseMask(n, eta=0.5, hidden=16)
    layer.build((None,))
    opt = keras.optimizers.Adam(1e-2)

    @tf.function
    def step(snr_db):
        noise_var = tf.pow(10.0, -snr_db / 10.0)
        with tf.GradientTape() as tape:
            k = tf.reduce_sum(layer(noise_var, training=True)[0], axis=1)
            loss = tf.reduce_mean(noise_var / (k + noise_var) + beta * k / n)
        opt.apply(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables)

    rng = np.random.default_rng(8)
    for _ in range(300):
        step(tf.constant(rng.uniform(-5.0, 20.0, size=64), tf.float32))
    snrs = np.array([-5.0, 0.0, 5.0, 10.0, 15.0, 20.0])
    noise_var = 10 ** (-snrs / 10)
    mask, _ = layer(tf.constant(noise_var, tf.float32))
    mask = mask.numpy()
    assert _is_consecutive(mask)
    lengths = mask.sum(axis=1)
    best = np.minimum(np.sqrt(noise_var * n / beta) - noise_var, n)  # 16 16 15.6 8.8 5.0 2.8
    assert np.all(np.diff(lengths) <= 0), lengths
    np.testing.assert_allclose(lengths, best, atol=1.5)


def test_an_image_that_sends_nothing_is_received_as_zeros_with_finite_gradients():
    """A-MIJSCC's mask can keep no symbol of an image. Before the fix that image's
    quantizer scale was inf (its min/max sentinels +-3e38 overflowed), and
    dequantization gave 0 x inf = NaN: the standard `amijscc` training diverged. The other
    images must be unaffected: compared with quantizing each of them alone."""
    rng = np.random.default_rng(0)
    x = tf.Variable(rng.normal(size=(3, 8)).astype(np.float32))
    mask = np.ones((3, 8), np.float32)
    mask[1] = 0.0  # image 1 sends nothing
    mask[2, 5:] = 0.0
    with tf.GradientTape() as tape:
        levels, params = to_constellation(x, 8, tf.constant(mask))
        received = from_constellation(levels, 8, params) * mask
        loss = tf.reduce_sum(tf.square(received))
    grad = tape.gradient(loss, x).numpy()
    np.testing.assert_array_equal(received.numpy()[1], 0.0)
    assert np.all(np.isfinite(received.numpy())) and np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[1], 0.0)
    for i in (0, 2):
        alone_levels, alone = to_constellation(x[i:i + 1], 8, tf.constant(mask[i:i + 1]))
        alone_received = from_constellation(alone_levels, 8, alone) * mask[i:i + 1]
        np.testing.assert_allclose(received.numpy()[i], alone_received.numpy()[0], rtol=1e-6)
