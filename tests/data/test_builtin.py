"""The embedded data set: scikit-image's bundled photographs cut into patches."""

from __future__ import annotations

import numpy as np

from semsim.data.builtin import (
    MIN_PATCH_STD,
    TEST_IMAGES,
    TRAIN_IMAGES,
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


def test_split_is_by_source_image_and_fixed():
    assert not set(TRAIN_IMAGES) & set(TEST_IMAGES)
    train, test = load_builtin(32)
    assert train.shape == (1895, 32, 32, 3) and test.shape == (386, 32, 32, 3)
    assert train.dtype == np.uint8
    first = patches(load_bundled_image(TEST_IMAGES[0]), 32)
    np.testing.assert_array_equal(test[: len(first)], first)
    again_train, _ = load_builtin(32)
    np.testing.assert_array_equal(train, again_train)


def test_other_patch_size():
    train, test = load_builtin(64)
    assert train.shape[1:] == (64, 64, 3) and test.shape[1:] == (64, 64, 3)
    assert len(test) == 88
