"""Every learned system of a run is exported as ``checkpoints/<system>/model.keras``: after
a tiny run the files load in a fresh interpreter with ``safe_mode=True`` and compute,
on fixed inputs, channels and seeds, what the run's trained model computes (rebuilt
from its ``final.weights.h5``) within 1e-6; a system that is not one Keras model is
skipped with a one-line log."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import semsim
from semsim.seeding import set_seed
from semsim.systems.keras_export import MODEL_FILE, load_exported
from semsim.systems.keras_system import FINAL_WEIGHTS
from tests.scenario.toy_system import register

register()
ROOT = Path(__file__).resolve().parents[2]
SIZE, USERS, SEED = 16, 2, 7
SCENARIO = {
    "name": "export", "description": "tiny run for the .keras export", "seed": 3,
    "link": {"nr": 2, "users": USERS, "csi": {"mode": "perfect"}},
    "snr": {"train_db": [0, 10], "eval_db": [5]},
    "data": {"source": "builtin", "image_size": SIZE, "train_images": 2, "test_images": 4},
    "systems": [
        {"name": "deepjscc", "type": "deepjscc",
         "params": {"filters": [4, 4, 4, 4], "cr": 1 / 6, "eval_batch_size": 4}},
        {"name": "multiuser", "type": "multiuser",
         "params": {"num_maps": 4, "filters": [8, 8, 16], "policy_units": 16, "num_heads": 2,
                    "entropy_levels": 64, "eval_batch_size": 4}},
        {"name": "toy", "type": "toy", "params": {"cr": 0.25}},
    ],
    "train": {"steps": 3, "batch_size": 2, "learning_rate": 0.01},
    "eval": {"batch_size": 4, "samples": 1},
}
LEARNED = ("deepjscc", "multiuser")


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    h = (rng.normal(size=(4, 2, USERS)) + 1j * rng.normal(size=(4, 2, USERS))) / np.sqrt(2)
    return {"image": rng.uniform(size=(4, SIZE, SIZE, 3)).astype(np.float32),
            "snr_db": np.array([5.0, 5.0, 15.0, 15.0], np.float32),
            "h": h.astype(np.complex64)}


def _outputs(model: keras.Model) -> dict[str, np.ndarray]:
    """The model's outputs on :func:`_inputs`, every generator seeded with SEED."""
    set_seed(SEED)
    out = model({k: tf.constant(v) for k, v in _inputs().items()}, training=False)
    return {k: np.asarray(v) for k, v in out.items()}


# Runs in a fresh interpreter: loads each exported model and prints its outputs.
PROBE = """
import json, sys
import numpy as np
from tests.systems.test_keras_export import _outputs
from semsim.systems.keras_export import load_exported
results = {}
for name, path in json.loads(sys.argv[1]).items():
    model = load_exported(path)
    results[name] = {"class": type(model).__name__,
                     "outputs": {k: v.tolist() for k, v in _outputs(model).items()}}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    semsim.run(SCENARIO, out=out, progress=False)
    return out


def test_learned_systems_are_exported_and_reload_in_a_fresh_process(run_dir):
    paths = {name: str(run_dir / "checkpoints" / name / MODEL_FILE) for name in LEARNED}
    run = subprocess.run([sys.executable, "-c", PROBE, json.dumps(paths)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                              "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    for name in LEARNED:
        system = semsim.build_system(SCENARIO, name)
        untrained = _outputs(system.model)
        system.model.load_weights(run_dir / "checkpoints" / name / FINAL_WEIGHTS)
        trained = _outputs(system.model)
        assert loaded[name]["class"] == type(system.model).__name__
        exported = {k: np.asarray(v) for k, v in loaded[name]["outputs"].items()}
        assert exported.keys() == trained.keys()
        for key, value in trained.items():
            np.testing.assert_allclose(exported[key], value, rtol=0, atol=1e-6,
                                       err_msg=f"{name}: {key}")
        # the comparison sees the trained weights: the untrained model differs
        assert np.max(np.abs(untrained["image_hat"] - trained["image_hat"])) > 1e-4


def test_a_system_that_is_not_a_keras_model_is_skipped_with_a_reason(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="semsim"):
        semsim.run({**SCENARIO, "systems": SCENARIO["systems"][2:]}, out=tmp_path / "toy",
                   progress=False)
    assert not (tmp_path / "toy" / "checkpoints" / "toy" / MODEL_FILE).exists()
    lines = [r.getMessage() for r in caplog.records if MODEL_FILE in r.getMessage()]
    assert lines == ["toy: no model.keras export: a toy system is not one Keras model"]


def test_loading_uses_safe_mode(tmp_path):
    """A ``.keras`` file holding a Python lambda is refused (safe mode), not executed."""
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        load_exported(path)
