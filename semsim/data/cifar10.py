"""CIFAR-10: from a local ``cifar-10-batches-py`` directory, or Keras's loader.

The local directory holds CIFAR's Python pickles (``data_batch_1`` .. ``data_batch_5``
and ``test_batch``, each a dict with ``b"data"`` ``uint8 [10000, 3072]`` in
channel-major order and ``b"labels"``). They are read with an unpickler that rebuilds
NumPy arrays and plain containers only, so a tampered file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
HOW_TO_GET = (
    "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extract it and set "
    "data.path to the extracted cifar-10-batches-py directory"
)

Split = tuple[np.ndarray, np.ndarray]


#: The only globals a CIFAR-10 batch pickle refers to (NumPy's array reconstruction).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, numbers and NumPy arrays; refuses any other global
    (a pickle naming ``os.system`` or ``builtins.eval`` raises instead of running)."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 batch "
                                     "(only NumPy arrays are allowed)")


def _read_batch(path: Path) -> Split:
    with path.open("rb") as handle:
        try:
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
        except pickle.UnpicklingError as err:
            raise ValueError(f"{path} is not a CIFAR-10 batch: {err}") from err
    try:
        data, labels = batch[b"data"], batch[b"labels"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a CIFAR-10 batch (no b'data'/b'labels' entries)") from err
    images = np.asarray(data, np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(labels, np.int64)


def load_cifar10_dir(path: str | Path) -> tuple[Split, Split]:
    """``((train_images, train_labels), (test_images, test_labels))`` from a local
    ``cifar-10-batches-py`` directory; images ``uint8 [N, 32, 32, 3]``, labels ``int64 [N]``."""
    path = Path(path)
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"data.path {str(path)!r} is not a cifar-10-batches-py directory (missing "
            f"{', '.join(missing)}); {HOW_TO_GET}"
        )
    parts = [_read_batch(path / name) for name in TRAIN_FILES]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, _read_batch(path / TEST_FILE)


def load_cifar10_keras() -> tuple[Split, Split]:
    """CIFAR-10 through ``keras.datasets.cifar10`` (its cache, or a download)."""
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as err:  # the loader raises many kinds of network/IO errors
        raise RuntimeError(
            f"could not load CIFAR-10 through Keras ({type(err).__name__}: {err}); "
            f"without network access, {HOW_TO_GET}"
        ) from err
    return ((x_train, y_train.reshape(-1).astype(np.int64)),
            (x_test, y_test.reshape(-1).astype(np.int64)))
