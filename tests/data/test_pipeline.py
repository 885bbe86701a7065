"""tf.data training pipeline: seeded shuffling, flips, labels; fixed test batches."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from semsim.data.builtin import MIN_PATCH_STD
from semsim.data.pipeline import ImageData, _BatchMaker, eval_batches, load_data, train_dataset
from semsim.scenario.schema import DataConfig


def small_data(n=10, labels=True):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return ImageData(train=train, test=train[:5], image_size=8, description="test",
                     train_labels=np.arange(n, dtype=np.int64) if labels else None)


def take(ds, n):
    return [tuple(np.asarray(t) for t in b) if isinstance(b, tuple) else np.asarray(b)
            for b in ds.take(n)]


def test_epochs_cover_every_image_once_and_reshuffle():
    data = small_data()
    batches = take(train_dataset(data, batch_size=5, seed=1, augment=False, labels=True), 4)
    epoch1 = np.concatenate([b[1] for b in batches[:2]])
    epoch2 = np.concatenate([b[1] for b in batches[2:]])
    assert sorted(epoch1) == sorted(epoch2) == list(range(10))
    assert epoch1.tolist() != epoch2.tolist()
    for images, labels in batches:  # labels stay with their images
        np.testing.assert_allclose(images, data.train[labels] / 255.0, atol=1e-6)


def test_same_seed_same_stream_regardless_of_global_seed():
    data = small_data()
    tf.random.set_seed(1)
    first = take(train_dataset(data, 4, seed=7), 5)
    tf.random.set_seed(2)
    second = take(train_dataset(data, 4, seed=7), 5)
    other = take(train_dataset(data, 4, seed=8), 5)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_flip_augmentation_flips_about_half():
    data = small_data(n=200, labels=True)
    images, labels = take(train_dataset(data, 200, seed=3, augment=True, labels=True), 1)[0]
    source = data.train[labels] / 255.0
    flipped = np.array([np.allclose(im, s[:, ::-1]) for im, s in zip(images, source, strict=True)])
    same = np.array([np.allclose(im, s) for im, s in zip(images, source, strict=True)])
    assert np.all(flipped | same)
    # binomial(200, 0.5): 100 +- 7 (std); 60..140 is over 5 sigma
    assert 60 < flipped.sum() < 140


def test_labels_require_a_labelled_set():
    with pytest.raises(ValueError, match="no labels"):
        train_dataset(small_data(labels=False), 2, seed=0, labels=True)


def test_test_batches_and_subsets():
    batches = eval_batches(small_data(), 2)
    assert [len(b) for b in batches] == [2, 2, 1] and batches[0].dtype == np.float32
    data = load_data(DataConfig(test_images=10, train_images=3))
    assert data.test.shape == (10, 32, 32, 3) and len(data.train) == 3
    assert "from 3 training photographs" in data.description
    with pytest.raises(ValueError, match="test_images is 1000 but the data set has only 386"):
        load_data(DataConfig(test_images=1000))


def photo_data(min_std=MIN_PATCH_STD):
    rng = np.random.default_rng(4)
    photos = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8),
              np.full((12, 40, 3), 7, np.uint8)]
    photos[1][:, 30:] = rng.integers(0, 256, (12, 10, 3))  # flat except the right quarter
    return ImageData(train=photos, test=photos[0][None, :8, :8], image_size=8,
                     description="photos", min_crop_std=min_std)


def test_crops_are_fresh_non_flat_windows_of_their_photograph():
    data = photo_data()
    assert data.num_train == 2 * 3 + 2  # non-flat non-overlapping 8x8 tiles per photograph
    make = _BatchMaker(data, 64, seed=9)
    seen = set()
    for index in range(4):
        images, picks, flips = make(index)
        for image, pick in zip(images, picks, strict=True):
            windows = np.lib.stride_tricks.sliding_window_view(data.train[pick], (8, 8, 3))[:, :, 0]
            hits = np.argwhere((windows == image).all(axis=(2, 3, 4)))
            assert len(hits) >= 1, "a crop is not a window of its photograph"
            assert image.std() >= MIN_PATCH_STD
            seen.add((int(pick), *map(int, hits[0])))
        # photographs drawn uniformly: binomial(64, 1/2), 32 +- 4; 12..52 is 5 sigma
        assert 12 < np.sum(picks == 0) < 52 and 12 < flips.sum() < 52
    # 256 crops from 13 * 23 + 5 * 33 positions, flat ones excluded: many distinct
    assert len(seen) > 150
    assert all(left >= 23 for pick, _, left in seen if pick == 1)  # flat part never used


def test_crop_stream_is_a_pure_function_of_seed_and_batch_index():
    data = photo_data()
    stream = [np.asarray(b) for b in train_dataset(data, 4, seed=2).take(6)]
    tf.random.set_seed(123)
    skipped = [np.asarray(b) for b in train_dataset(data, 4, seed=2).skip(4).take(2)]
    for a, b in zip(stream[4:], skipped, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(stream[0], stream[1])
    other = np.asarray(next(iter(train_dataset(data, 4, seed=3))))
    assert not np.array_equal(stream[0], other)


def test_whole_image_stream_skips_exactly():
    data = small_data()
    full = take(train_dataset(data, 3, seed=5, labels=True), 7)
    tail = take(train_dataset(data, 3, seed=5, labels=True).skip(5), 2)
    for a, b in zip(full[5:], tail, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_a_photograph_without_a_usable_crop_is_an_error():
    data = photo_data()
    data.train[1] = np.full((12, 40, 3), 7, np.uint8)
    with pytest.raises(ValueError, match="training image 1 has no 8x8 crop"):
        train_dataset(data, 4, seed=0)
