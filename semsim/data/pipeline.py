"""Loading a scenario's data and the ``tf.data`` pipelines built on it.

:func:`load_data` turns a :class:`semsim.scenario.schema.DataConfig` into
:class:`ImageData` (``uint8`` arrays in memory). :func:`train_dataset` gives the
endless, shuffled (by seed), augmented (random horizontal flips), batched and
prefetched training stream of ``float32 [B, H, W, 3]`` images in ``[0, 1]`` (or
``(images, labels)`` pairs); :func:`eval_batches` the fixed evaluation batches.
Everything is a pure function of the seed: the same seed gives the same stream.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from semsim.data.builtin import load_builtin
from semsim.data.cifar10 import load_cifar10_dir, load_cifar10_keras
from semsim.data.folder import load_folder
from semsim.data.labelled import DESCRIPTION as DIGITS_DESCRIPTION
from semsim.data.labelled import load_digits_rgb

#: Seed of the fixed subsets taken by ``train_images``/``test_images`` (independent
#: of the scenario seed, so that a test subset is the same in every scenario).
SUBSET_SEED = 0


@dataclasses.dataclass
class ImageData:
    """``train``: ``uint8 [N, H, W, 3]`` patches, or a list of larger ``uint8 [h, w, 3]``
    images to crop ``image_size`` from (folder). ``test``: ``uint8 [M, h, w, 3]``.
    Labels are ``int64 [N]`` / ``[M]`` where the data set has them."""

    train: np.ndarray | list[np.ndarray]
    test: np.ndarray
    image_size: int
    description: str
    train_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None

    @property
    def num_train(self) -> int:
        return len(self.train)

    @property
    def test_shape(self) -> tuple[int, int]:
        return int(self.test.shape[1]), int(self.test.shape[2])


def _subset(n_wanted: int | None, images, labels, what: str):
    if n_wanted is None:
        return images, labels
    if n_wanted > len(images):
        raise ValueError(f"data.{what} is {n_wanted} but the data set has only {len(images)}")
    index = np.sort(np.random.default_rng(SUBSET_SEED).permutation(len(images))[:n_wanted])
    if isinstance(images, list):
        picked = [images[i] for i in index]
    else:
        picked = images[index]
    return picked, None if labels is None else labels[index]


def load_data(config) -> ImageData:
    """Load the data a :class:`~semsim.scenario.schema.DataConfig` describes."""
    size = config.image_size
    train_labels = test_labels = None
    if config.source == "builtin":
        train, test = load_builtin(size)
        description = (f"builtin: {size}x{size} patches of scikit-image's bundled photographs "
                       "(not CIFAR-10)")
    elif config.source == "cifar10":
        if size != 32:
            raise ValueError(f"data.image_size must be 32 for cifar10 (its images are 32x32), "
                             f"got {size}")
        loaded = load_cifar10_dir(config.path) if config.path else load_cifar10_keras()
        (train, train_labels), (test, test_labels) = loaded
        description = f"CIFAR-10 ({config.path or 'Keras loader'})"
    elif config.source == "digits":
        (train, train_labels), (test, test_labels) = load_digits_rgb(size)
        description = DIGITS_DESCRIPTION.format(size=size)
    elif config.source == "folder":
        train, test = load_folder(config.path, config.train_glob, config.test_glob, size,
                                  config.test_crop)
        description = f"folder {config.path} ({config.test_crop} test images)"
    else:
        raise ValueError(f"data.source must be builtin, cifar10, digits or folder, got {config.source!r}")
    train, train_labels = _subset(config.train_images, train, train_labels, "train_images")
    test, test_labels = _subset(config.test_images, test, test_labels, "test_images")
    return ImageData(train, test, size, description, train_labels, test_labels)


def _example_stream(data: ImageData, seed: int):
    """Endless ``(uint8 [H, W, 3] image, index, flip)`` examples: epoch after epoch,
    every training image once in a seeded random order, with a random crop of
    ``image_size`` from larger images (folder) and a random flip decision."""
    rng = np.random.default_rng(seed)
    size = data.image_size
    while True:
        order = rng.permutation(data.num_train)
        flips = rng.random(data.num_train) < 0.5
        for i, flip in zip(order, flips, strict=True):
            image = data.train[i]
            if image.shape[0] != size or image.shape[1] != size:
                top = rng.integers(0, image.shape[0] - size + 1)
                left = rng.integers(0, image.shape[1] - size + 1)
                image = image[top: top + size, left: left + size]
            yield image, i, flip


def train_dataset(data: ImageData, batch_size: int, seed: int, augment: bool = True,
                  labels: bool = False) -> tf.data.Dataset:
    """Endless training stream of ``float32 [batch_size, H, W, 3]`` batches in ``[0, 1]``
    (``(images, int64 labels)`` with ``labels``): shuffled with ``seed`` and reshuffled
    every epoch, randomly flipped left-right when ``augment``, prefetched. The order,
    crops and flips come from numpy's generator seeded with ``seed`` alone, so the
    stream does not depend on TensorFlow's global seed."""
    if labels and data.train_labels is None:
        raise ValueError("labels=True but this data set has no labels")
    size = data.image_size
    ds = tf.data.Dataset.from_generator(
        lambda: _example_stream(data, seed),
        output_signature=(tf.TensorSpec([size, size, 3], tf.uint8),
                          tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.bool)),
    )
    label_table = None if not labels else tf.constant(data.train_labels)

    def prepare(image, index, flip):
        image = tf.image.convert_image_dtype(image, tf.float32)
        if augment:
            image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
        if label_table is None:
            return image
        return image, tf.gather(label_table, index)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_batches(data: ImageData, batch_size: int) -> list[np.ndarray]:
    """The test set as ``float32 [b, h, w, 3]`` batches in ``[0, 1]``, in order (the last
    one may be smaller)."""
    images = data.test.astype(np.float32) / 255.0
    return [images[i: i + batch_size] for i in range(0, len(images), batch_size)]
