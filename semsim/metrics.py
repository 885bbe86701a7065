"""Image-quality and rate metrics (NumPy, evaluation side).

* PSNR uses ``MAX = 255`` on images given in ``[0, 1]`` (both are scaled by 255, no
  rounding to 8 bits): ``PSNR = 10 log10(255^2 / MSE_255)``. Two averages are reported and
  must be labelled: :func:`mean_psnr` (PSNR per image, then averaged: "mean PSNR") and
  :func:`psnr_of_mean_mse` (PSNR of the MSE averaged over images: "PSNR of mean MSE").
* CR = real channel symbols sent / ``3 H W``.
* Side information: :func:`empirical_entropy_bits` gives the cost per image of
  entropy-coding the per-image decisions over a test set.
"""

from __future__ import annotations

import numpy as np

MAX_PIXEL = 255.0


def _pair(x, x_hat) -> tuple[np.ndarray, np.ndarray]:
    x, x_hat = np.asarray(x, np.float64), np.asarray(x_hat, np.float64)
    if x.shape != x_hat.shape or x.ndim != 4:
        raise ValueError(
            f"images must both be [batch, H, W, C] of one shape, got {x.shape} and {x_hat.shape}"
        )
    return x, x_hat


def mse_per_image(x, x_hat) -> np.ndarray:
    """MSE per image on the 0..255 scale; ``x``, ``x_hat`` ``[B, H, W, C]`` in ``[0, 1]`` ->
    float64 ``[B]``."""
    x, x_hat = _pair(x, x_hat)
    return np.mean(((x - x_hat) * MAX_PIXEL) ** 2, axis=(1, 2, 3))


def psnr_from_mse(mse) -> np.ndarray:
    """PSNR (dB) from MSE on the 0..255 scale; ``inf`` for ``mse == 0``."""
    mse = np.asarray(mse, np.float64)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(MAX_PIXEL**2 / mse)


def psnr_per_image(x, x_hat) -> np.ndarray:
    """PSNR (dB, MAX = 255) of each image; ``[B, H, W, C]`` in ``[0, 1]`` -> ``[B]``."""
    return psnr_from_mse(mse_per_image(x, x_hat))


def mean_psnr(x, x_hat) -> float:
    """ "Mean PSNR": the per-image PSNR averaged over images (dB)."""
    return float(np.mean(psnr_per_image(x, x_hat)))


def psnr_of_mean_mse(x, x_hat) -> float:
    """ "PSNR of mean MSE": the PSNR of the MSE averaged over images (dB)."""
    return float(psnr_from_mse(np.mean(mse_per_image(x, x_hat))))


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
