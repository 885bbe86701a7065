"""PSNR (MAX = 255 on [0, 1] images), its two averages, CR and side-information entropy."""

import numpy as np
import pytest

from semsim.metrics import (
    compression_ratio,
    empirical_entropy_bits,
    mean_psnr,
    psnr_of_mean_mse,
    psnr_per_image,
)


def test_psnr_hand_values_and_two_averages():
    x = np.zeros((2, 4, 4, 3))
    x_hat = np.stack([np.full((4, 4, 3), 0.1), np.full((4, 4, 3), 0.01)])
    # errors of 25.5 and 2.55 grey levels: PSNR = 20 log10(255 / e) = 20 dB and 40 dB
    np.testing.assert_allclose(psnr_per_image(x, x_hat), [20.0, 40.0], rtol=1e-12)
    assert mean_psnr(x, x_hat) == pytest.approx(30.0)
    # mean MSE = (25.5^2 + 2.55^2) / 2 = 328.38... -> 10 log10(255^2 / that)
    expected = 10 * np.log10(255**2 / ((25.5**2 + 2.55**2) / 2))
    assert psnr_of_mean_mse(x, x_hat) == pytest.approx(expected)
    assert psnr_per_image(x, x)[0] == np.inf
    with pytest.raises(ValueError, match="one shape"):
        psnr_per_image(x, x_hat[:1])


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
