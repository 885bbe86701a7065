"""What the runner measures: per-image quality of one evaluation batch, the per-SNR
summary of a system (headline PSNR, 95 % intervals, SSIM, MS-SSIM, exact images) and
the held-out validation images of training.

Definitions: :mod:`semsim.metrics` and ``docs/metrics.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from semsim import metrics
from semsim.data.builtin import patches
from semsim.data.pipeline import ImageData
from semsim.report.results import SystemResults

#: Validation: at most this many held-out training images, and at most this fraction
#: of the training set.
VALIDATION_IMAGES = 64
VALIDATION_FRACTION = 0.1
#: Seed of the held-out choice (independent of the scenario seed, like the test subset).
VALIDATION_SEED = 1
#: Per-image arrays of a point (besides ``cr`` and extras), in the point files.
QUALITY_KEYS = ("mse", "psnr", "ssim", "ms_ssim")


def image_quality(images: np.ndarray, images_hat: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image 8-bit MSE, PSNR (dB, exact ones at the cap), SSIM and MS-SSIM of
    ``[B, H, W, 3]`` images in ``[0, 1]``: each float64 ``[B]``."""
    _, h, w, c = images.shape
    mse = metrics.mse_per_image(images, images_hat)
    ssim, ms_ssim = metrics.ssim_and_ms_ssim(images, images_hat)
    return {"mse": mse, "psnr": metrics.psnr_from_mse(mse, metrics.psnr_cap_db(h, w, c)),
            "ssim": ssim, "ms_ssim": ms_ssim}


def metrics_description(height: int, width: int) -> dict[str, Any]:
    """The ``metrics`` block of ``results.json``: how its figures were computed."""
    settings = metrics.ssim_settings(height, width)
    return {
        "headline": "psnr_db: mean over test images of the per-image PSNR (MAX 255) of "
                    "8-bit images (originals and reconstructions rounded to 0..255)",
        "psnr_cap_db": metrics.psnr_cap_db(height, width),
        "exact_images": "images with 8-bit MSE = 0, counted at psnr_cap_db (the PSNR of "
                        "the smallest non-zero 8-bit MSE)",
        "ci95": "half-width of the Student-t 95 % confidence interval of the mean over "
                "test images: t(0.975, n-1) * s / sqrt(n), s with ddof 1",
        "ssim": {"function": "tf.image.ssim", "filter_size": settings.filter_size,
                 "filter_sigma": metrics.SSIM_SIGMA, "k1": 0.01, "k2": 0.03},
        "ms_ssim": {"function": "tf.image.ssim_multiscale", "scales": settings.scales,
                    "filter_size": settings.ms_filter_size,
                    "filter_sigma": metrics.SSIM_SIGMA,
                    "weights": [round(w, 4) for w in settings.weights]},
    }


def system_results(type_name: str, points: list[dict], timing: dict) -> SystemResults:
    """One system's results from its evaluation points (per-image arrays per SNR) and
    its ``timing`` record (seconds, steps)."""
    values: dict[str, Any] = {
        "type": type_name,
        "snr_db": [float(p["snr_db"]) for p in points],
        "psnr_db": [float(np.mean(p["psnr"])) for p in points],
        "psnr_ci95_db": [metrics.ci95_halfwidth(p["psnr"]) for p in points],
        "psnr_std_db": [float(np.std(p["psnr"])) for p in points],
        "psnr_of_mean_mse_db": [float(metrics.psnr_from_mse(
            np.mean(p["mse"]), metrics.psnr_cap_db(*p["image_size"]))) for p in points],
        "exact_images": [metrics.count_exact(p["mse"]) for p in points],
        "ssim": [float(np.mean(p["ssim"])) for p in points],
        "ssim_ci95": [metrics.ci95_halfwidth(p["ssim"]) for p in points],
        "ms_ssim": [float(np.mean(p["ms_ssim"])) for p in points],
        "ms_ssim_ci95": [metrics.ci95_halfwidth(p["ms_ssim"]) for p in points],
        "cr": [float(np.mean(p["cr"])) for p in points],
        "n_images": [int(len(p["psnr"])) for p in points],
        "train_seconds": timing.get("train_seconds"),
        "eval_seconds": timing.get("eval_seconds"),
        "steps_done": timing.get("steps_done"),
        "steps_planned": timing.get("steps_planned"),
    }
    if "target_cr" in points[0]:
        values["target_cr"] = [float(p["target_cr"]) for p in points]
    for key in sorted(k for k in points[0] if k.startswith("extra__")):
        values[key.removeprefix("extra__")] = [float(np.mean(p[key])) for p in points]
    return SystemResults(**values)


def _tiles(data: ImageData, image: np.ndarray) -> np.ndarray:
    """Non-overlapping ``image_size`` tiles of a larger training image (the non-flat ones
    where training excludes flat crops)."""
    size = data.image_size
    if data.min_crop_std > 0:
        return patches(image, size)
    rows, cols = image.shape[0] // size, image.shape[1] // size
    grid = image[: rows * size, : cols * size].reshape(rows, size, cols, size, 3)
    return grid.transpose(0, 2, 1, 3, 4).reshape(rows * cols, size, size, 3)


def validation_split(data: ImageData, multiple_of: int = 1) -> tuple[ImageData, np.ndarray]:
    """Hold out validation images from the training set (never the test set).

    Training images of one size: ``min(64, 10 %)`` of them, chosen with a fixed seed,
    leave training. Larger images that training crops from (the embedded photographs, a
    folder): ``max(1, 10 %)`` of the images (when there are at least 2), chosen with a
    fixed seed, leave training and are cut into non-overlapping ``image_size`` tiles (the
    non-flat ones where training skips flat crops), evenly sub-sampled to at most 64. The
    result is truncated to a multiple of ``multiple_of`` (users of a multi-user link).
    Returns the data without them and the validation images, ``float32 [V, H, W, 3]`` in
    ``[0, 1]`` (``V = 0`` when the training set is too small)."""
    size = data.image_size
    count = len(data.train)
    if data.crops:
        n = max(1, int(count * VALIDATION_FRACTION)) if count >= 2 else 0
    else:
        n = min(VALIDATION_IMAGES, int(count * VALIDATION_FRACTION))
    empty = np.zeros((0, size, size, 3), np.float32)
    if n == 0:
        return data, empty
    held = np.sort(np.random.default_rng(VALIDATION_SEED).permutation(count)[:n])
    keep = np.setdiff1d(np.arange(count), held)
    if data.crops:
        tiles = np.concatenate([_tiles(data, data.train[i]) for i in held])
        if len(tiles) > VALIDATION_IMAGES:
            tiles = tiles[np.linspace(0, len(tiles) - 1, VALIDATION_IMAGES).astype(int)]
        train = [data.train[i] for i in keep]
    else:
        tiles = data.train[held]
        train = data.train[keep]
    tiles = tiles[: len(tiles) // multiple_of * multiple_of]
    images = tiles.astype(np.float32) / 255.0 if len(tiles) else empty
    labels = None if data.train_labels is None else data.train_labels[keep]
    return dataclasses.replace(data, train=train, train_labels=labels), images
