"""The embedded data set: bundled photographs, crops for training, held-out test tiles."""

from __future__ import annotations

import numpy as np
import pytest

from semsim.data import builtin
from semsim.data.builtin import (
    MIN_PATCH_STD,
    SKIMAGE_TEST,
    crop_positions,
    load_builtin,
    load_bundled_image,
    patches,
)


def test_patches_are_raster_order_tiles():
    image = np.random.default_rng(0).integers(0, 256, (70, 100, 3), dtype=np.uint8)
    tiles = patches(image, 32)
    assert tiles.shape == (2 * 3, 32, 32, 3)  # remainder at the edges dropped
    np.testing.assert_array_equal(tiles[0], image[:32, :32])
    np.testing.assert_array_equal(tiles[4], image[32:64, 32:64])


def test_flat_patches_are_dropped():
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, 32:] = np.random.default_rng(1).integers(0, 256, (32, 32, 3))
    tiles = patches(image, 32)
    assert len(tiles) == 1 and tiles[0].std() >= MIN_PATCH_STD


def test_crop_positions_match_a_brute_force_std():
    rng = np.random.default_rng(2)
    image = np.full((23, 31, 3), 90, np.uint8)
    image[5:15, 12:25] = rng.integers(0, 256, (10, 13, 3))
    image[18:, :6] += rng.integers(0, 4, (5, 6, 3)).astype(np.uint8)  # nearly flat corner
    size = 6
    windows = np.lib.stride_tricks.sliding_window_view(image, (size, size, 3))[:, :, 0]
    std = windows.reshape(windows.shape[0], windows.shape[1], -1).std(axis=2)
    expected = np.flatnonzero(std.ravel() >= MIN_PATCH_STD)
    found = crop_positions(image, size)
    assert 0 < len(found) < std.size
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_array_equal(crop_positions(image, size, min_std=0), np.arange(std.size))


def test_split_is_by_photograph_and_the_test_set_is_fixed():
    train, test, labels = load_builtin(32)
    assert len(train) == len(labels) >= 8 and all(im.dtype == np.uint8 for im in train)
    assert not {label.split()[-1] for label in labels} & set(SKIMAGE_TEST)
    assert test.shape == (386, 32, 32, 3)  # the tiles of chelsea.png and rocket.jpg
    first = patches(load_bundled_image(SKIMAGE_TEST[0]), 32)
    np.testing.assert_array_equal(test[: len(first)], first)
    assert len({im.shape for im in train}) > 1  # whole photographs, not tiles


def test_photographs_are_natural_colour_images():
    train, _, labels = load_builtin(32)
    for photo, label in zip(train, labels, strict=True):
        assert min(photo.shape[:2]) >= 400, label
        channels = photo.reshape(-1, 3).astype(float)
        # colour, not grey: the channels differ somewhere by more than JPEG noise
        assert np.abs(channels - channels.mean(axis=1, keepdims=True)).mean() > 2.0, label


def test_scikit_learn_photographs_only_when_it_is_installed(monkeypatch):
    real = builtin._package_dir
    with_sklearn = load_builtin(32)[2]
    monkeypatch.setattr(builtin, "_package_dir",
                        lambda name: None if name == "sklearn" else real(name))
    _, test, without = load_builtin(32)
    assert not any(label.startswith("scikit-learn") for label in without)
    assert test.shape == (386, 32, 32, 3)
    if real("sklearn") is None:
        pytest.skip("scikit-learn is not installed: the case with its photographs is not testable")
    assert [label for label in with_sklearn if label.startswith("scikit-learn")] == \
        ["scikit-learn china.jpg", "scikit-learn flower.jpg"]


def test_other_patch_size():
    _, test, _ = load_builtin(64)
    assert test.shape == (88, 64, 64, 3)
