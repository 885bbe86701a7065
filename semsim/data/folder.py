"""A directory of PNG/JPEG images (e.g. Kodak).

Files are selected by glob patterns relative to the directory (``train_glob`` and
``test_glob``); the two selections must be disjoint. Training takes random crops
(:func:`semsim.data.pipeline.train_dataset`); testing takes the centre crop of each
image or the full images (which must then share one size).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_images(root: str | Path, patterns: list[str]) -> list[Path]:
    """Sorted image files under ``root`` matching any of ``patterns``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.path {str(root)!r} is not a directory")
    found = {p for pattern in patterns for p in root.glob(pattern)
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
    if not found:
        raise FileNotFoundError(
            f"no PNG/JPEG file in {str(root)!r} matches {patterns}"
        )
    return sorted(found)


def read_image(path: Path) -> np.ndarray:
    """``uint8 [H, W, 3]``."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def center_crop(image: np.ndarray, size: int, name: str = "image") -> np.ndarray:
    h, w = image.shape[:2]
    if h < size or w < size:
        raise ValueError(f"{name} is {h}x{w}, smaller than data.image_size {size}")
    top, left = (h - size) // 2, (w - size) // 2
    return image[top: top + size, left: left + size]


def load_folder(root: str | Path, train_glob: list[str], test_glob: list[str], size: int,
                test_crop: str) -> tuple[list[np.ndarray], np.ndarray]:
    """``(train, test)``: the training images at full size (``uint8 [H, W, 3]`` each, at
    least ``size`` on each side) and the test set ``uint8 [N, h, w, 3]``."""
    train_files = list_images(root, train_glob)
    test_files = list_images(root, test_glob)
    shared = sorted(set(train_files) & set(test_files))
    if shared:
        raise ValueError(f"data.train_glob and data.test_glob both select {len(shared)} files, "
                         f"e.g. {shared[0].name}; the splits must be disjoint")
    train = [read_image(p) for p in train_files]
    for path, image in zip(train_files, train, strict=True):
        if min(image.shape[:2]) < size:
            raise ValueError(f"training image {path.name} is {image.shape[0]}x{image.shape[1]}, "
                             f"smaller than data.image_size {size}")
    if test_crop == "center":
        test = [center_crop(read_image(p), size, p.name) for p in test_files]
    elif test_crop == "full":
        test = [read_image(p) for p in test_files]
        shapes = sorted({im.shape for im in test})
        if len(shapes) > 1:
            raise ValueError(f"data.test_crop 'full' needs test images of one size, found {shapes}; "
                             "use test_crop: center")
    else:
        raise ValueError(f"test_crop must be 'center' or 'full', got {test_crop!r}")
    return train, np.stack(test)
