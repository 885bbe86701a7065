"""Image-quality and rate metrics (evaluation side): the one PSNR of semsim, SSIM,
MS-SSIM, the 95 % confidence interval of a per-image mean, CR and side information.

Headline metric (see ``docs/metrics.md``)
-----------------------------------------
Every quality figure is computed on **8-bit** images: originals and reconstructions
(``[B, H, W, 3]`` in ``[0, 1]``) are both rounded to integers ``0..255``
(:func:`to_8bit`) first, as stored images are.

* PSNR (dB, ``MAX = 255``): ``10 log10(255^2 / MSE)``, MSE over the ``3 H W`` 8-bit
  sub-pixels of one image. The **headline** is :func:`mean_psnr`: the per-image PSNR
  averaged over the test images (the field's convention), reported with its 95 %
  confidence interval (:func:`ci95_halfwidth`).
* An exact 8-bit reconstruction (MSE = 0) has an infinite PSNR. It is counted at
  :func:`psnr_cap_db` ``= 10 log10(255^2 * 3 H W)``: the PSNR of the smallest non-zero
  MSE that two 8-bit images of that size can have (one sub-pixel off by one grey
  level), i.e. the highest PSNR a non-exact reconstruction can reach. The cap is fixed
  by the image size, not chosen, and the number of exact images is reported with every
  point (:func:`count_exact`).
* :func:`psnr_of_mean_mse`: the PSNR of the MSE averaged over images (secondary figure).
* SSIM / MS-SSIM: ``tf.image.ssim`` / ``tf.image.ssim_multiscale`` on the 8-bit images
  (``max_val = 255``, Gaussian window ``sigma = 1.5``, ``k1 = 0.01``, ``k2 = 0.03``)
  with the window and scales of :func:`ssim_settings` (11x11 and Wang et al.'s five
  scales where the image is large enough, fewer scales and a smaller window otherwise).

Rate: CR = real channel symbols sent / ``3 H W``. Side information:
:func:`empirical_entropy_bits` gives the cost per image of entropy-coding the per-image
decisions over a test set.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

MAX_PIXEL = 255.0
#: Wang, Simoncelli & Bovik (2003): exponents of the five MS-SSIM scales, finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Largest SSIM window (the standard 11x11) and the smallest coarsest MS-SSIM scale.
SSIM_FILTER_SIZE = 11
MS_SSIM_MIN_SIDE = 8
SSIM_SIGMA = 1.5


def to_8bit(images) -> np.ndarray:
    """``[..., H, W, C]`` floats in ``[0, 1]`` -> ``uint8`` grey levels (``round(255 x)``,
    clipped); ``uint8`` input is returned as is."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.rint(images.astype(np.float64) * MAX_PIXEL), 0, 255).astype(np.uint8)


def _pair(x, x_hat) -> tuple[np.ndarray, np.ndarray]:
    x, x_hat = np.asarray(x), np.asarray(x_hat)
    if x.shape != x_hat.shape or x.ndim != 4:
        raise ValueError(
            f"images must both be [batch, H, W, C] of one shape, got {x.shape} and {x_hat.shape}"
        )
    return to_8bit(x).astype(np.float64), to_8bit(x_hat).astype(np.float64)


def mse_per_image(x, x_hat) -> np.ndarray:
    """MSE per image of the 8-bit images (grey levels squared); ``x``, ``x_hat``
    ``[B, H, W, C]`` in ``[0, 1]`` (or ``uint8``) -> float64 ``[B]``."""
    x, x_hat = _pair(x, x_hat)
    return np.mean((x - x_hat) ** 2, axis=(1, 2, 3))


def psnr_cap_db(height: int, width: int, channels: int = 3) -> float:
    """PSNR (dB) at which an exact 8-bit reconstruction is counted: that of the smallest
    non-zero MSE, ``1 / (C H W)`` (one sub-pixel one grey level off). 32x32x3: 83.01 dB."""
    return 10.0 * math.log10(MAX_PIXEL**2 * channels * height * width)


def psnr_from_mse(mse, cap_db: float) -> np.ndarray:
    """PSNR (dB) from 8-bit MSE; ``mse == 0`` gives ``cap_db`` (see :func:`psnr_cap_db`)."""
    mse = np.asarray(mse, np.float64)
    with np.errstate(divide="ignore"):
        return np.minimum(10.0 * np.log10(MAX_PIXEL**2 / mse), cap_db)


def psnr_per_image(x, x_hat) -> np.ndarray:
    """PSNR (dB) of each 8-bit image pair, exact ones counted at :func:`psnr_cap_db`;
    ``[B, H, W, C]`` -> ``[B]``."""
    _, h, w, c = np.shape(x)
    return psnr_from_mse(mse_per_image(x, x_hat), psnr_cap_db(h, w, c))


def count_exact(mse) -> int:
    """Number of exact 8-bit reconstructions (MSE = 0) among per-image MSEs."""
    return int(np.sum(np.asarray(mse) == 0.0))


def mean_psnr(x, x_hat) -> float:
    """The headline "mean PSNR": per-image PSNR averaged over images (dB)."""
    return float(np.mean(psnr_per_image(x, x_hat)))


def psnr_of_mean_mse(x, x_hat) -> float:
    """ "PSNR of mean MSE": the PSNR of the 8-bit MSE averaged over images (dB)."""
    _, h, w, c = np.shape(x)
    return float(psnr_from_mse(np.mean(mse_per_image(x, x_hat)), psnr_cap_db(h, w, c)))


def ci95_halfwidth(values) -> float:
    """Half-width of the 95 % confidence interval of the mean of ``values`` (one per
    test image): Student's t-interval ``t_{0.975, n-1} s / sqrt(n)`` with the sample
    standard deviation ``s`` (``ddof = 1``). Needs ``n >= 2``."""
    from scipy.stats import t

    values = np.asarray(values, np.float64).reshape(-1)
    if values.size < 2:
        raise ValueError(f"a confidence interval needs at least 2 values, got {values.size}")
    return float(t.ppf(0.975, values.size - 1) * np.std(values, ddof=1) / math.sqrt(values.size))


@dataclasses.dataclass(frozen=True)
class SSIMSettings:
    """Window and scales used for images of one size: ``filter_size`` (odd, pixels) of
    the Gaussian window (``sigma`` 1.5), and the MS-SSIM ``weights`` (exponents, finest
    scale first, summing to 1; their number is the number of scales)."""

    filter_size: int
    ms_filter_size: int
    weights: tuple[float, ...]

    @property
    def scales(self) -> int:
        return len(self.weights)


def _odd_at_most(n: int) -> int:
    n = min(SSIM_FILTER_SIZE, int(n))
    return n if n % 2 else n - 1


def ssim_settings(height: int, width: int) -> SSIMSettings:
    """SSIM / MS-SSIM settings for ``height x width`` images.

    SSIM: the 11x11 window, shrunk to the largest odd size that fits a smaller image.
    MS-SSIM: as many scales ``M <= 5`` as keep the coarsest scale at least 8 pixels on
    its short side (``M = 1 + floor(log2(min(H, W) / 8))``), the window shrunk to the
    largest odd size ``<= 11`` fitting that coarsest scale, and the first ``M`` of Wang
    et al.'s exponents renormalized to sum 1. 32x32: 3 scales (32, 16, 8 pixels), a 7x7
    window, weights (0.0711, 0.4530, 0.4760); 128x128 and larger: the standard 5 scales
    and 11x11 window.
    """
    side = min(int(height), int(width))
    if side < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    scales = 1 if side < MS_SSIM_MIN_SIDE else \
        min(len(MS_SSIM_WEIGHTS), 1 + int(math.floor(math.log2(side / MS_SSIM_MIN_SIDE))))
    coarsest = side // 2 ** (scales - 1)
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    return SSIMSettings(filter_size=_odd_at_most(side), ms_filter_size=_odd_at_most(coarsest),
                        weights=tuple(float(w) for w in weights / weights.sum()))


def ssim_and_ms_ssim(x, x_hat) -> tuple[np.ndarray, np.ndarray]:
    """SSIM (``tf.image.ssim``) and MS-SSIM (``tf.image.ssim_multiscale``) of each 8-bit
    image pair, with the settings of :func:`ssim_settings`: ``[B, H, W, C]`` -> two
    float64 ``[B]``. Eager: tracing ``ssim_multiscale`` into a graph costs more (seconds)
    than a run's whole evaluation spends in it."""
    import tensorflow as tf

    x, x_hat = _pair(x, x_hat)
    settings = ssim_settings(x.shape[1], x.shape[2])
    x, x_hat = tf.constant(x, tf.float32), tf.constant(x_hat, tf.float32)
    ssim = tf.image.ssim(x, x_hat, MAX_PIXEL, filter_size=settings.filter_size,
                         filter_sigma=SSIM_SIGMA)
    ms_ssim = tf.image.ssim_multiscale(
        x, x_hat, MAX_PIXEL, power_factors=settings.weights,
        filter_size=settings.ms_filter_size, filter_sigma=SSIM_SIGMA)
    return np.asarray(ssim, np.float64), np.asarray(ms_ssim, np.float64)


def ssim_per_image(x, x_hat) -> np.ndarray:
    """SSIM of each 8-bit image pair (see :func:`ssim_and_ms_ssim`)."""
    return ssim_and_ms_ssim(x, x_hat)[0]


def ms_ssim_per_image(x, x_hat) -> np.ndarray:
    """MS-SSIM of each 8-bit image pair (see :func:`ssim_and_ms_ssim`)."""
    return ssim_and_ms_ssim(x, x_hat)[1]


def compression_ratio(real_symbols, height: int, width: int) -> np.ndarray:
    """CR = real channel symbols sent / ``3 * height * width`` (per image, float64)."""
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height}, {width}")
    return np.asarray(real_symbols, np.float64) / (3.0 * height * width)


def empirical_entropy_bits(*indices) -> float:
    """Empirical entropy (bits per image) of per-image discrete decisions over a test set.

    Each argument is an integer array ``[num_images]`` (e.g. kept maps, kept symbols); several
    arguments are coded jointly (the entropy of the tuples). This is the average cost of
    entropy-coding the decisions with a code matched to the test set's statistics.
    """
    if not indices:
        raise ValueError("empirical_entropy_bits needs at least one array of indices")
    arrays = [np.asarray(a).reshape(-1) for a in indices]
    if len({a.size for a in arrays}) != 1 or arrays[0].size == 0:
        raise ValueError(f"index arrays must be non-empty and equally long, got {[a.size for a in arrays]}")
    _, counts = np.unique(np.stack(arrays, axis=1), axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-np.sum(p * np.log2(p)))
