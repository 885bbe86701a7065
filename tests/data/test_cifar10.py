"""CIFAR-10 from a local cifar-10-batches-py directory (a tiny fake one in CIFAR's format)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from semsim.data.cifar10 import TEST_FILE, TRAIN_FILES, load_cifar10_dir
from semsim.data.pipeline import load_data
from semsim.scenario.schema import DataConfig


def write_fake_cifar(root, per_batch=4):
    rng = np.random.default_rng(0)
    truth = {}
    for name in (*TRAIN_FILES, TEST_FILE):
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        flat = images.transpose(0, 3, 1, 2).reshape(per_batch, 3072)  # CIFAR: R, G, B planes
        with (root / name).open("wb") as handle:
            pickle.dump({b"data": flat, b"labels": labels, b"batch_label": name.encode()}, handle)
        truth[name] = (images, labels)
    return truth


def test_local_directory_loader(tmp_path):
    truth = write_fake_cifar(tmp_path)
    (x_train, y_train), (x_test, y_test) = load_cifar10_dir(tmp_path)
    assert x_train.shape == (20, 32, 32, 3) and x_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train[:4], truth["data_batch_1"][0])
    np.testing.assert_array_equal(x_train[16:], truth["data_batch_5"][0])
    np.testing.assert_array_equal(y_train[4:8], truth["data_batch_2"][1])
    np.testing.assert_array_equal(x_test, truth["test_batch"][0])
    assert y_test.tolist() == truth["test_batch"][1]


def test_missing_files_say_how_to_get_cifar(tmp_path):
    write_fake_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing data_batch_3\); download https://"):
        load_cifar10_dir(tmp_path)


def test_load_data_keeps_labels(tmp_path):
    truth = write_fake_cifar(tmp_path)
    data = load_data(DataConfig(source="cifar10", path=str(tmp_path), labels=True,
                                test_images=2))
    assert data.train_labels.shape == (20,) and len(data.test) == 2
    assert data.test_labels.tolist() == [truth["test_batch"][1][i] for i in
                                         np.sort(np.random.default_rng(0).permutation(4)[:2])]
    with pytest.raises(ValueError, match="image_size must be 32 for cifar10"):
        load_data(DataConfig(source="cifar10", path=str(tmp_path), image_size=64))


class _RunsCode:
    """Unpickles into a call of ``builtins.exec`` (what a tampered batch could hold)."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    write_fake_cifar(tmp_path)
    with (tmp_path / TEST_FILE).open("wb") as handle:
        pickle.dump({b"data": _RunsCode(), b"labels": [0]}, handle)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"refusing to load builtins\.exec"):
        load_cifar10_dir(tmp_path)
    assert not (tmp_path / "PWNED").exists()
