"""A folder of PNG/JPEG images: globs, disjoint splits, crops (and Kodak when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semsim.data.folder import center_crop, load_folder
from semsim.data.pipeline import load_data, train_dataset
from semsim.scenario.schema import DataConfig

KODAK = Path(__file__).resolve().parents[3] / "shared" / "data" / "kodak"


def make_folder(root: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    images = {}
    for split, names in (("train", ("a.png", "b.jpg")), ("test", ("c.png", "d.png"))):
        (root / split).mkdir(parents=True)
        for name in names:
            image = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / split / name, quality=100)
            images[f"{split}/{name}"] = image
    (root / "train" / "notes.txt").write_text("not an image")
    return images


def test_center_crops_for_test_and_random_crops_for_training(tmp_path):
    images = make_folder(tmp_path)
    train, test = load_folder(tmp_path, ["train/*"], ["test/*"], 32, "center")
    assert [im.shape for im in train] == [(48, 40, 3)] * 2
    np.testing.assert_array_equal(test[0], images["test/c.png"][8:40, 4:36])
    data = load_data(DataConfig(source="folder", path=str(tmp_path)))
    batch = next(iter(train_dataset(data, batch_size=16, seed=0, augment=False)))
    assert batch.shape == (16, 32, 32, 3)
    # crops come from both images, picked uniformly: some of the 16 (all but with
    # probability 2**-16) are windows of the lossless PNG one
    source = images["train/a.png"].astype(np.float32) / 255
    crops = batch.numpy()
    found = any(np.allclose(crop, source[t:t + 32, l_:l_ + 32])
                for crop in crops for t in range(17) for l_ in range(9))
    assert found


def test_full_test_images_and_errors(tmp_path):
    make_folder(tmp_path)
    _, test = load_folder(tmp_path, ["train/*"], ["test/*"], 32, "full")
    assert test.shape == (2, 48, 40, 3)
    with pytest.raises(ValueError, match="splits must be disjoint"):
        load_folder(tmp_path, ["*/*"], ["test/*"], 32, "center")
    with pytest.raises(FileNotFoundError, match="no PNG/JPEG file"):
        load_folder(tmp_path, ["nothing/*"], ["test/*"], 32, "center")
    with pytest.raises(ValueError, match="smaller than data.image_size 64"):
        load_folder(tmp_path, ["train/*"], ["test/*"], 64, "center")
    with pytest.raises(ValueError, match="image is 10x10, smaller"):
        center_crop(np.zeros((10, 10, 3), np.uint8), 32)


@pytest.mark.skipif(not KODAK.is_dir(), reason=f"Kodak images not found at {KODAK}")
def test_kodak_split():
    train_glob = [f"kodim{i:02d}.png" for i in range(1, 19)]
    test_glob = [f"kodim{i:02d}.png" for i in range(19, 25)]
    data = load_data(DataConfig(source="folder", path=str(KODAK), train_glob=train_glob,
                                test_glob=test_glob, image_size=64))
    assert data.num_train == 18 and data.test.shape == (6, 64, 64, 3)
