"""Loading a scenario's data and the ``tf.data`` pipelines built on it.

:func:`load_data` turns a :class:`semsim.scenario.schema.DataConfig` into
:class:`ImageData` (``uint8`` arrays in memory). :func:`train_dataset` gives the
endless, shuffled (by seed), augmented (random horizontal flips), batched and
prefetched training stream of ``float32 [B, H, W, 3]`` images in ``[0, 1]`` (or
``(images, labels)`` pairs); :func:`eval_batches` the fixed evaluation batches.

The stream is a pure function of ``(seed, batch index)``: batch ``b`` is computed from
numpy generators keyed on ``[seed, ...]`` alone, never from a global or stateful
generator, so it does not depend on TensorFlow's global seed, on the thread pool, or on
how many batches were taken before; a resumed run that skips the batches it has seen
gets exactly the batches an uninterrupted run would have had.

* Training images of one size (``uint8 [N, H, W, 3]``, e.g. CIFAR-10): epoch ``e`` is a
  permutation of the ``N`` images keyed on ``[seed, 0, e]`` with flips keyed likewise;
  batches run across epoch boundaries.
* Larger training images to crop from (a list: the embedded photographs, a folder):
  every image of batch ``b`` is a fresh crop: a photograph drawn uniformly, a crop
  position drawn uniformly among its usable ones (non-flat ones for the embedded data,
  see :func:`semsim.data.builtin.crop_positions`; all for a folder) and a flip, from a
  generator keyed on ``[seed, 1, b]``. The nominal epoch (``ImageData.num_train``, which
  sets the default ``steps_per_epoch``) is the number of non-overlapping tiles the images
  hold (non-flat ones for the embedded data: 4,596 at 32x32 with scikit-learn's
  photographs installed, 4,094 without).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from semsim.data.builtin import MIN_PATCH_STD, crop_positions, describe, load_builtin, patches
from semsim.data.cifar10 import load_cifar10_dir, load_cifar10_keras
from semsim.data.folder import load_folder

#: Seed of the fixed subsets taken by ``train_images``/``test_images`` (independent
#: of the scenario seed, so that a test subset is the same in every scenario).
SUBSET_SEED = 0
#: Largest batch index of the endless training stream.
_ENDLESS = 2**62


@dataclasses.dataclass
class ImageData:
    """``train``: ``uint8 [N, H, W, 3]`` images of ``image_size``, or a list of larger
    ``uint8 [h, w, 3]`` images to crop ``image_size`` from (the embedded photographs, a
    folder). ``test``: ``uint8 [M, h, w, 3]``. Labels are ``int64 [N]`` / ``[M]`` where the
    data set has them. ``min_crop_std``: crops of a list whose pixel standard deviation
    (uint8 scale) is below it are never drawn (0: every crop position is used)."""

    train: np.ndarray | list[np.ndarray]
    test: np.ndarray
    image_size: int
    description: str
    train_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    min_crop_std: float = 0.0

    @property
    def crops(self) -> bool:
        """Whether training draws crops from larger images (``train`` is a list)."""
        return isinstance(self.train, list)

    @property
    def num_train(self) -> int:
        """Training examples per (nominal) epoch: the number of images, or, when crops are
        drawn from larger images, the number of non-overlapping ``image_size`` tiles
        they hold (non-flat ones, when flat crops are excluded)."""
        if not self.crops:
            return len(self.train)
        return sum(len(patches(im, self.image_size)) if self.min_crop_std > 0 else
                   (im.shape[0] // self.image_size) * (im.shape[1] // self.image_size)
                   for im in self.train)

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
    """Load the data a :class:`~semsim.scenario.schema.DataConfig` describes.
    ``train_images`` picks that many training images (photographs, for the embedded
    data and folders) and ``test_images`` that many test images, both by a fixed seed."""
    size = config.image_size
    train_labels = test_labels = None
    min_crop_std = 0.0
    if config.source == "builtin":
        train, test, photo_labels = load_builtin(size)
        min_crop_std = MIN_PATCH_STD
    elif config.source == "cifar10":
        if size != 32:
            raise ValueError(f"data.image_size must be 32 for cifar10 (its images are 32x32), "
                             f"got {size}")
        loaded = load_cifar10_dir(config.path) if config.path else load_cifar10_keras()
        (train, train_labels), (test, test_labels) = loaded
        description = f"CIFAR-10 ({config.path or 'Keras loader'})"
    elif config.source == "folder":
        train, test = load_folder(config.path, config.train_glob, config.test_glob, size,
                                  config.test_crop)
        description = f"folder {config.path} ({config.test_crop} test images)"
    else:
        raise ValueError(f"data.source must be builtin, cifar10 or folder, got {config.source!r}")
    if config.source == "builtin":
        photo_labels, _ = _subset(config.train_images, photo_labels, None, "train_images")
    train, train_labels = _subset(config.train_images, train, train_labels, "train_images")
    test, test_labels = _subset(config.test_images, test, test_labels, "test_images")
    if config.source == "builtin":
        description = describe(size, photo_labels, len(test))
    return ImageData(train, test, size, description, train_labels, test_labels, min_crop_std)


class _BatchMaker:
    """``batch index -> (uint8 [B, H, W, 3] images, int64 [B] indices, bool [B] flips)``,
    a pure function of ``(seed, index)`` (see the module docstring). ``indices`` are the
    training images' (or photographs') indices."""

    def __init__(self, data: ImageData, batch_size: int, seed: int):
        self.data, self.batch_size, self.seed = data, int(batch_size), int(seed)
        self._epoch: tuple[int, np.ndarray, np.ndarray] | None = None
        if data.crops:
            size = data.image_size
            self._positions = [
                crop_positions(im, size, data.min_crop_std) if data.min_crop_std > 0 else None
                for im in data.train
            ]
            for i, found in enumerate(self._positions):
                if found is not None and len(found) == 0:
                    raise ValueError(f"training image {i} has no {size}x{size} crop with a "
                                     f"pixel standard deviation of at least {data.min_crop_std}")

    def _epoch_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        cached = self._epoch
        if cached is None or cached[0] != epoch:
            rng = np.random.default_rng([self.seed, 0, epoch])
            n = len(self.data.train)
            cached = (epoch, rng.permutation(n), rng.random(n) < 0.5)
            self._epoch = cached
        return cached[1], cached[2]

    def _whole_images(self, index: int):
        n = len(self.data.train)
        picks, flips = [], []
        for j in range(index * self.batch_size, (index + 1) * self.batch_size):
            order, flip = self._epoch_order(j // n)
            picks.append(order[j % n])
            flips.append(flip[j % n])
        picks = np.asarray(picks, np.int64)
        return self.data.train[picks], picks, np.asarray(flips)

    def _crops(self, index: int):
        rng = np.random.default_rng([self.seed, 1, index])
        size, photos = self.data.image_size, self.data.train
        picks = rng.integers(0, len(photos), self.batch_size)
        flips = rng.random(self.batch_size) < 0.5
        images = np.empty((self.batch_size, size, size, 3), np.uint8)
        for k, photo in enumerate(picks):
            image = photos[photo]
            span = image.shape[1] - size + 1
            positions = self._positions[photo]
            if positions is None:
                flat = rng.integers(0, (image.shape[0] - size + 1) * span)
            else:
                flat = positions[rng.integers(0, len(positions))]
            top, left = divmod(int(flat), span)
            images[k] = image[top: top + size, left: left + size]
        return images, picks.astype(np.int64), flips

    def __call__(self, index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index = int(index)
        return self._crops(index) if self.data.crops else self._whole_images(index)


def train_dataset(data: ImageData, batch_size: int, seed: int, augment: bool = True,
                  labels: bool = False) -> tf.data.Dataset:
    """Endless training stream of ``float32 [batch_size, H, W, 3]`` batches in ``[0, 1]``
    (``(images, int64 labels)`` with ``labels``), randomly flipped left-right when
    ``augment``, prefetched; batch ``b`` is a pure function of ``(seed, b)`` (see the
    module docstring), so the stream does not depend on TensorFlow's global seed and
    skipping batches costs no randomness."""
    if labels and data.train_labels is None:
        raise ValueError("labels=True but this data set has no labels")
    size = data.image_size
    make = _BatchMaker(data, batch_size, seed)
    label_table = None if not labels else tf.constant(data.train_labels)

    def prepare(index):
        images, picks, flips = tf.numpy_function(make, [index], (tf.uint8, tf.int64, tf.bool),
                                                 stateful=False)
        images = tf.image.convert_image_dtype(tf.ensure_shape(images, [batch_size, size, size, 3]),
                                              tf.float32)
        if augment:
            flips = tf.ensure_shape(flips, [batch_size])
            images = tf.where(flips[:, None, None, None], tf.reverse(images, axis=[2]), images)
        if label_table is None:
            return images
        return images, tf.gather(label_table, tf.ensure_shape(picks, [batch_size]))

    ds = tf.data.Dataset.range(_ENDLESS).map(prepare, num_parallel_calls=tf.data.AUTOTUNE,
                                              deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_batches(data: ImageData, batch_size: int) -> list[np.ndarray]:
    """The test set as ``float32 [b, h, w, 3]`` batches in ``[0, 1]``, in order (the last
    one may be smaller)."""
    images = data.test.astype(np.float32) / 255.0
    return [images[i: i + batch_size] for i in range(0, len(images), batch_size)]
