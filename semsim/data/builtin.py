"""The embedded default data set: natural photographs bundled with scikit-image.

This is **not CIFAR-10**. It exists so that every scenario runs out of the box
without downloading anything: the colour photographs that the installed
scikit-image wheel ships in ``skimage/data`` are cut into non-overlapping
``size x size`` patches (raster order, top-left aligned; the remainder at the right
and bottom edges is dropped). Nearly flat patches (pixel standard deviation below
:data:`MIN_PATCH_STD`, e.g. the black sky of the Hubble field) are left out.

The train/test split is by source image, so no test patch shares a photograph with
a training patch: :data:`TRAIN_IMAGES` for training, :data:`TEST_IMAGES` for testing.
With 32x32 patches this gives 1,895 training and 386 test patches.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
from PIL import Image

#: scikit-image's bundled colour photographs used for training (file names).
TRAIN_IMAGES = ("astronaut.png", "coffee.png", "hubble_deep_field.jpg",
                "motorcycle_left.png", "ihc.png")
#: Photographs used for testing (disjoint from :data:`TRAIN_IMAGES`).
TEST_IMAGES = ("chelsea.png", "rocket.jpg")
#: Patches whose pixel standard deviation (uint8 scale) is below this are dropped.
MIN_PATCH_STD = 4.0


def load_bundled_image(file_name: str) -> np.ndarray:
    """One of scikit-image's bundled photographs as ``uint8 [H, W, 3]``, read from the
    installed package (never from the network)."""
    source = resources.files("skimage.data") / file_name
    if not source.is_file():
        raise FileNotFoundError(
            f"scikit-image's bundled image {file_name!r} is missing from the installed "
            f"package ({source}); reinstall scikit-image"
        )
    with source.open("rb") as handle:
        image = np.asarray(Image.open(handle).convert("RGB"))
    return image


def patches(image: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping ``size x size`` patches of ``image`` (``uint8 [H, W, 3]``) in
    raster order, nearly flat ones dropped: ``uint8 [N, size, size, 3]``."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    if rows == 0 or cols == 0:
        raise ValueError(f"size {size} is larger than the image ({image.shape[0]}x{image.shape[1]})")
    grid = image[: rows * size, : cols * size].reshape(rows, size, cols, size, 3)
    tiles = grid.transpose(0, 2, 1, 3, 4).reshape(rows * cols, size, size, 3)
    keep = tiles.reshape(len(tiles), -1).std(axis=1) >= MIN_PATCH_STD
    return tiles[keep]


def load_builtin(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` patch sets, each ``uint8 [N, size, size, 3]``, in a fixed order."""
    train = np.concatenate([patches(load_bundled_image(n), size) for n in TRAIN_IMAGES])
    test = np.concatenate([patches(load_bundled_image(n), size) for n in TEST_IMAGES])
    return train, test
