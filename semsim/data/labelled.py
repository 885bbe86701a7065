"""The embedded *labelled* data set: scikit-learn's bundled handwritten digits.

This is **not CIFAR-10** and not natural images. ``sklearn.datasets.load_digits`` ships
1,797 greyscale 8x8 images of the digits 0-9 (values 0..16) inside the installed
package, so classification scenarios run without downloading anything. Each image is
scaled to ``uint8`` (``round(v * 255 / 16)``), enlarged to ``size x size`` by bilinear
interpolation (PIL) and repeated on the three colour channels. Labels are the digits
(``int64``, 10 classes).

Split (fixed, independent of any seed): every fifth image (index ``i % 5 == 4``) is a
test image, the rest train: 1,438 training and 359 test images.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: One image in this many goes to the test split.
TEST_EVERY = 5
NUM_CLASSES = 10
DESCRIPTION = ("digits: scikit-learn's bundled 8x8 greyscale handwritten digits (10 classes), "
               "upsampled to {size}x{size} RGB (not CIFAR-10)")


def _enlarge(image: np.ndarray, size: int) -> np.ndarray:
    grey = Image.fromarray(image).resize((size, size), Image.BILINEAR)
    return np.repeat(np.asarray(grey)[..., None], 3, axis=-1)


def load_digits_rgb(size: int = 32):
    """``((train, train_labels), (test, test_labels))``: images ``uint8 [N, size, size, 3]``,
    labels ``int64 [N]``, read from the installed scikit-learn (never the network)."""
    if size < 8:
        raise ValueError(f"size must be >= 8 (the digits are 8x8), got {size}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError("data.source 'digits' needs scikit-learn (pip install scikit-learn)") \
            from err
    digits = load_digits()
    raw = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    images = np.stack([_enlarge(image, size) for image in raw])
    labels = digits.target.astype(np.int64)
    test = np.arange(len(images)) % TEST_EVERY == TEST_EVERY - 1
    return (images[~test], labels[~test]), (images[test], labels[test])
