"""What two runs of one seed must share: results.json without its creation time, the
wall-clock timings and the weights' provenance ("resumed" after a kill, else "trained"),
and every array of their weights files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np


def weights_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a Keras ``.weights.h5`` file (the model's and, when saved, the
    optimizer's), by its path in the file."""
    arrays: dict[str, np.ndarray] = {}

    def keep(name: str, obj) -> None:  # h5py's visititems stops at a non-None return
        if isinstance(obj, h5py.Dataset):
            arrays[name] = np.asarray(obj)

    with h5py.File(path, "r") as handle:
        handle.visititems(keep)
    assert arrays, f"no arrays in {path}"
    return arrays


def comparable_results(results_file: Path) -> dict:
    results = json.loads(Path(results_file).read_text())
    results.pop("created")
    for system in results["systems"].values():
        system.pop("train_seconds")
        system.pop("eval_seconds")
        system.pop("weights", None)
    return results
