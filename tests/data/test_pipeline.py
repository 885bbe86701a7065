"""tf.data training pipeline: seeded shuffling, flips, labels; fixed test batches."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from semsim.data.pipeline import ImageData, eval_batches, load_data, train_dataset
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
    data = load_data(DataConfig(test_images=10, train_images=20))
    assert data.test.shape == (10, 32, 32, 3) and data.num_train == 20
    with pytest.raises(ValueError, match="test_images is 1000 but the data set has only 386"):
        load_data(DataConfig(test_images=1000))
