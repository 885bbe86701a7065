"""Metrics against hand computations and independent references: 8-bit PSNR and its
two averages, the exact-reconstruction cap, SSIM (skimage), MS-SSIM (a NumPy/SciPy
re-implementation of Wang et al.), the t-interval (tables and coverage), CR, entropy."""

import numpy as np
import pytest
from scipy.ndimage import correlate
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from semsim.metrics import (
    ci95_halfwidth,
    compression_ratio,
    count_exact,
    empirical_entropy_bits,
    mean_psnr,
    ms_ssim_per_image,
    mse_per_image,
    psnr_cap_db,
    psnr_of_mean_mse,
    psnr_per_image,
    ssim_per_image,
    ssim_settings,
    to_8bit,
)


def test_psnr_hand_values_on_8_bit_images_and_two_averages():
    x = np.zeros((2, 4, 4, 3))
    # 51.4 and 0.6 grey levels round to 51 and 1: PSNR = 20 log10(255 / e)
    x_hat = np.stack([np.full((4, 4, 3), 51.4 / 255), np.full((4, 4, 3), 0.6 / 255)])
    expected = [20 * np.log10(5.0), 20 * np.log10(255.0)]  # 13.98 dB, 48.13 dB
    np.testing.assert_allclose(psnr_per_image(x, x_hat), expected, rtol=1e-12)
    assert mean_psnr(x, x_hat) == pytest.approx(np.mean(expected))
    assert psnr_of_mean_mse(x, x_hat) == pytest.approx(10 * np.log10(255**2 / ((51**2 + 1) / 2)))
    # 0.4 grey levels round away: exact 8-bit reconstruction, counted at the cap
    assert psnr_per_image(x, x + 0.4 / 255)[0] == pytest.approx(10 * np.log10(255**2 * 48))
    with pytest.raises(ValueError, match="one shape"):
        psnr_per_image(x, x_hat[:1])


def test_psnr_matches_skimage_on_8_bit_images():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(3, 8, 8, 3))
    noisy = np.clip(images + rng.normal(scale=0.05, size=images.shape), 0, 1)
    expected = [peak_signal_noise_ratio(np.rint(a * 255).astype(np.uint8),
                                        np.rint(b * 255).astype(np.uint8), data_range=255)
                for a, b in zip(images, noisy, strict=True)]
    np.testing.assert_allclose(psnr_per_image(images, noisy), expected, rtol=1e-12)


def test_exact_cap_is_the_smallest_nonzero_mse():
    # 32x32x3: one sub-pixel one grey level off is the smallest non-zero MSE, 1 / 3072
    x = np.zeros((2, 32, 32, 3), np.uint8)
    y = x.copy()
    y[1, 5, 7, 2] = 1
    assert psnr_cap_db(32, 32) == pytest.approx(83.0050, abs=1e-4)
    np.testing.assert_allclose(psnr_per_image(x, y), psnr_cap_db(32, 32), rtol=1e-12)
    assert count_exact(mse_per_image(x, y)) == 1
    assert to_8bit(np.array([0.0, 0.5 / 255, 1.6 / 255, 1.2]))[..., :].tolist() == [0, 0, 2, 255]


def test_ssim_of_identical_images_is_one_and_matches_skimage():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(4, 32, 32, 3))
    y = np.clip(x + rng.normal(scale=0.1, size=x.shape), 0, 1)
    np.testing.assert_allclose(ssim_per_image(x, x), 1.0, atol=1e-6)
    np.testing.assert_allclose(ms_ssim_per_image(x, x), 1.0, atol=1e-6)
    reference = [structural_similarity(to_8bit(a).astype(float), to_8bit(b).astype(float),
                                       channel_axis=-1, data_range=255, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False, win_size=11)
                 for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(ssim_per_image(x, y), reference, atol=1e-5)  # float32 TF


def _gaussian(size, sigma=1.5):
    g = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    return np.outer(g, g) / np.outer(g, g).sum()


def _ms_ssim_reference(a, b, weights, size):
    """Wang et al. (2003) MS-SSIM of one ``[H, W, 3]`` pair (0..255): contrast-structure
    at every scale, luminance too at the coarsest; valid-region means per channel;
    2x2 average down-sampling; values clipped at 0 before the exponents."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = _gaussian(size)
    result = 1.0
    for scale, weight in enumerate(weights):
        per_channel_cs, per_channel_l = [], []
        for ch in range(3):
            x, y = a[..., ch], b[..., ch]
            half = size // 2
            crop = (slice(half, x.shape[0] - half), slice(half, x.shape[1] - half))

            def f(z):
                return correlate(z, kernel, mode="constant")[crop]  # noqa: B023

            mx, my = f(x), f(y)
            sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
            per_channel_cs.append(np.mean((2 * sxy + c2) / (sxx + syy + c2)))
            per_channel_l.append(np.mean((2 * mx * my + c1) / (mx**2 + my**2 + c1) *
                                         (2 * sxy + c2) / (sxx + syy + c2)))
        value = np.mean(per_channel_l) if scale == len(weights) - 1 else np.mean(per_channel_cs)
        result *= max(value, 0.0) ** weight
        a = (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4
        b = (b[0::2, 0::2] + b[1::2, 0::2] + b[0::2, 1::2] + b[1::2, 1::2]) / 4
    return result


def test_ms_ssim_settings_and_independent_reference():
    s32 = ssim_settings(32, 32)
    assert (s32.scales, s32.ms_filter_size, s32.filter_size) == (3, 7, 11)
    np.testing.assert_allclose(s32.weights, np.array([0.0448, 0.2856, 0.3001]) / 0.6305)
    s256 = ssim_settings(256, 256)
    assert (s256.scales, s256.ms_filter_size) == (5, 11)
    assert ssim_settings(8, 8).scales == 1 and ssim_settings(8, 8).filter_size == 7
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(2, 32, 32, 3))
    y = np.clip(x + rng.normal(scale=0.08, size=x.shape), 0, 1)
    ours = ms_ssim_per_image(x, y)
    reference = [_ms_ssim_reference(to_8bit(a).astype(float), to_8bit(b).astype(float),
                                    s32.weights, s32.ms_filter_size)
                 for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_ci95_against_t_tables_and_coverage():
    # n = 2: t(0.975, 1) = 12.706; n = 10: t(0.975, 9) = 2.262 (tables)
    assert ci95_halfwidth([0.0, 2.0]) == pytest.approx(12.706 * np.sqrt(2) / np.sqrt(2), rel=1e-4)
    values = np.arange(10.0)
    assert ci95_halfwidth(values) == pytest.approx(2.2622 * np.std(values, ddof=1) / np.sqrt(10),
                                                   rel=1e-4)
    # coverage of the true mean over 4000 seeded samples of 8: 95 % +- 1 % (3 sigma ~ 1 %)
    samples = np.random.default_rng(3).normal(5.0, 2.0, size=(4000, 8))
    covered = [abs(s.mean() - 5.0) <= ci95_halfwidth(s) for s in samples]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.01)
    with pytest.raises(ValueError, match="at least 2"):
        ci95_halfwidth([1.0])


def test_compression_ratio():
    np.testing.assert_allclose(compression_ratio([1024, 64], 32, 32), [1 / 3, 64 / 3072])
    with pytest.raises(ValueError, match="height"):
        compression_ratio(1, 0, 4)


def test_empirical_entropy_bits():
    assert empirical_entropy_bits([3, 3, 3]) == 0.0
    assert empirical_entropy_bits([0, 1, 0, 1]) == pytest.approx(1.0)
    # joint coding of pairs: (0,0), (0,1), (1,0), (1,1) equally likely -> 2 bits
    assert empirical_entropy_bits([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="equally long"):
        empirical_entropy_bits([0, 1], [0])
