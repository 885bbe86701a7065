"""The embedded default data set: natural colour photographs bundled with installed wheels.

This is **not CIFAR-10**. It exists so that every scenario runs out of the box without
downloading anything. It uses every natural colour photograph the installed packages
ship (read from the package directories; nothing is fetched, and scikit-image's images
that need a ``pooch`` download are not used):

* scikit-image (``skimage/data``, a dependency): the training photographs
  :data:`SKIMAGE_TRAIN` and the test photographs :data:`SKIMAGE_TEST`;
* matplotlib (``mpl-data/sample_data``, a dependency): :data:`MATPLOTLIB_TRAIN`;
* scikit-learn (``sklearn/datasets/images``), **only when it is installed anyway**:
  :data:`SKLEARN_TRAIN` (semsim does not depend on it; the data description of a run
  names the photographs it used, see :func:`describe`).

Left out as not natural colour photographs: scikit-image's grey-level images (camera,
coins, moon, ...), synthetic ones (``color.png``, ``chessboard_RGB.png``, ``logo.png``,
``phantom.png``), the 14x25 GIF; matplotlib's clip art (``Minduka_Present_Blue_Pack.png``)
and logo.

Split by photograph: **training** draws fresh random ``image_size`` crops (with random
flips) from the training photographs at every step (:mod:`semsim.data.pipeline`);
**testing** uses the fixed non-overlapping ``size x size`` tiles (raster order, top-left
aligned, remainder at the right and bottom dropped) of the held-out photographs
:data:`SKIMAGE_TEST`, which no training crop ever comes from. The test set does not
depend on which optional packages are installed: at 32x32 it is 386 tiles.

Nearly flat crops or tiles (pixel standard deviation below :data:`MIN_PATCH_STD` on the
uint8 scale, e.g. the black sky of the Hubble field or the black border of the retina
photograph) are never used: tiles are dropped, and training crops are drawn uniformly
among the non-flat crop positions of a photograph (:func:`crop_positions`).
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

#: scikit-image's bundled natural colour photographs used for training.
SKIMAGE_TRAIN = ("astronaut.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png",
                 "motorcycle_left.png", "motorcycle_right.png", "retina.jpg")
#: scikit-image's photographs held out for testing (disjoint from every training one).
SKIMAGE_TEST = ("chelsea.png", "rocket.jpg")
#: matplotlib's sample-data photograph used for training.
MATPLOTLIB_TRAIN = ("grace_hopper.jpg",)
#: scikit-learn's sample photographs, used for training when scikit-learn is installed.
SKLEARN_TRAIN = ("china.jpg", "flower.jpg")
#: Crops and tiles whose pixel standard deviation (uint8 scale) is below this are not used.
MIN_PATCH_STD = 4.0


def _package_dir(package: str) -> Path | None:
    """Directory of an installed package, found without importing it; ``None`` if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _photo_paths() -> list[tuple[str, Path]]:
    """``(label, path)`` of every training photograph available here, in a fixed order."""
    paths = [(f"scikit-image {name}", Path(str(resources.files("skimage.data") / name)))
             for name in SKIMAGE_TRAIN]
    mpl = _package_dir("matplotlib")
    paths += [(f"matplotlib {name}",
               (mpl / "mpl-data" / "sample_data" / name) if mpl else Path(name))
              for name in MATPLOTLIB_TRAIN]
    sklearn = _package_dir("sklearn")
    if sklearn is not None:
        paths += [(f"scikit-learn {name}", sklearn / "datasets" / "images" / name)
                  for name in SKLEARN_TRAIN]
    return paths


def _read(label: str, path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"the bundled photograph {label} is missing from the installed "
                                f"package ({path}); reinstall that package")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def load_bundled_image(file_name: str) -> np.ndarray:
    """One of scikit-image's bundled photographs as ``uint8 [H, W, 3]``, read from the
    installed package (never from the network)."""
    return _read(f"scikit-image {file_name}", Path(str(resources.files("skimage.data") / file_name)))


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


def crop_positions(image: np.ndarray, size: int, min_std: float = MIN_PATCH_STD) -> np.ndarray:
    """Top-left positions of the ``size x size`` crops of ``image`` (``uint8 [H, W, 3]``)
    whose pixel standard deviation (over all pixels and channels) is at least
    ``min_std``: ``int32 [K]``, flattened as ``top * (W - size + 1) + left``, ascending.
    Computed exactly with summed-area tables of the pixels and of their squares."""
    height, width = image.shape[:2]
    if height < size or width < size:
        raise ValueError(f"size {size} is larger than the image ({height}x{width})")
    if min_std <= 0:
        return np.arange((height - size + 1) * (width - size + 1), dtype=np.int32)
    pixels = image.astype(np.float64)
    counts = []
    for values in (pixels.sum(axis=2), (pixels ** 2).sum(axis=2)):
        table = np.zeros((height + 1, width + 1))
        table[1:, 1:] = values.cumsum(0).cumsum(1)
        counts.append(table[size:, size:] - table[:-size, size:] - table[size:, :-size]
                      + table[:-size, :-size])
    n = size * size * 3
    variance = counts[1] / n - (counts[0] / n) ** 2
    # the tables' rounding error is far below MIN_PATCH_STD**2 = 16 (uint8 squared scale)
    return np.flatnonzero(variance.ravel() >= min_std ** 2).astype(np.int32)


def training_photographs() -> tuple[list[np.ndarray], list[str]]:
    """Every training photograph available here (``uint8 [H, W, 3]`` each, sizes differ)
    and their labels (``"scikit-image astronaut.png"``, ...), in a fixed order."""
    found = _photo_paths()
    return [_read(label, path) for label, path in found], [label for label, _ in found]


def load_builtin(size: int = 32) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """``(train, test, train_labels)``: the training photographs (crops are drawn from
    them during training), the fixed test tiles ``uint8 [M, size, size, 3]`` of the
    held-out photographs, and the training photographs' labels."""
    train, labels = training_photographs()
    test = np.concatenate([patches(load_bundled_image(n), size) for n in SKIMAGE_TEST])
    return train, test, labels


def describe(size: int, labels: list[str], num_test: int) -> str:
    """The data description a run records (results' ``data`` field)."""
    return (f"builtin (not CIFAR-10): random {size}x{size} crops with flips, drawn every step "
            f"from {len(labels)} training photographs ({', '.join(labels)}); test: "
            f"{num_test} fixed {size}x{size} tiles of the held-out photographs "
            f"{' and '.join('scikit-image ' + n for n in SKIMAGE_TEST)}")
