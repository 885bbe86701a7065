"""Every learned system of a run is exported as ``checkpoints/<system>/model.keras``.

A tiny run (Deep JSCC and the toy system of the runner tests) exports Deep JSCC; the file
loads in a fresh interpreter with ``safe_mode=True`` and computes, on fixed inputs,
channels and seeds, what the run's trained model (rebuilt from its ``final.weights.h5``)
computes, within 1e-6. The multi-user model (whose tiny run costs about 45 s of CPU) and
A-MIJSCC (in its fine-tuning stage) are exported by the same function from models with
perturbed weights and checked the same way. The toy system is not a Keras model: it is
skipped with a one-line log.
"""

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
from semsim.systems.keras_export import MODEL_FILE, export_model, load_exported
from semsim.systems.keras_system import FINAL_WEIGHTS
from tests.scenario.toy_system import register

register()
ROOT = Path(__file__).resolve().parents[2]
SIZE, USERS, SEED = 16, 2, 7
MULTIUSER = {"name": "multiuser", "type": "multiuser",
             "params": {"num_maps": 4, "filters": [8, 8, 16], "policy_units": 16, "num_heads": 2,
                        "entropy_levels": 64, "eval_batch_size": 4}}
MIJSCC = {"name": "mijscc", "type": "mijscc",
          "params": {"cr": 1 / 12, "filters": [8, 8, 8], "bits": 8, "adaptive": True,
                     "eval_batch_size": 4}}
SCENARIO = {
    "name": "export", "description": "tiny run for the .keras export", "seed": 3,
    "link": {"nr": 2, "users": USERS, "csi": {"mode": "perfect"}},
    "snr": {"train_db": [0, 10], "eval_db": [5]},
    "data": {"source": "builtin", "image_size": SIZE, "train_images": 2, "test_images": 4},
    "systems": [
        {"name": "deepjscc", "type": "deepjscc",
         "params": {"filters": [4, 4, 4, 4], "cr": 1 / 6, "eval_batch_size": 4}},
        {"name": "toy", "type": "toy", "params": {"cr": 0.25}},
    ],
    "train": {"steps": 3, "batch_size": 2, "learning_rate": 0.01},
    "eval": {"batch_size": 4, "samples": 1},
}


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
from tests.systems.test_keras_export import _outputs
from semsim.systems.keras_export import load_exported
results = {}
for name, path in json.loads(sys.argv[1]).items():
    model = load_exported(path)
    results[name] = {"class": type(model).__name__,
                     "adaptive_active": getattr(model, "adaptive_active", None),
                     "outputs": {k: v.tolist() for k, v in _outputs(model).items()}}
print(json.dumps(results))
"""


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``(run directory, log lines of the run)``."""
    out = tmp_path_factory.mktemp("export") / "run"
    logger = logging.getLogger("semsim")
    handler, level = _Messages(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        semsim.run(SCENARIO, out=out, progress=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return out, handler.lines


@pytest.mark.slow
def test_exported_models_reload_in_a_fresh_process_with_the_same_outputs(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    deepjscc = semsim.build_system(SCENARIO, "deepjscc")   # the run's model, as built
    initial = {"deepjscc": _outputs(deepjscc.model)}
    deepjscc.model.load_weights(run_dir / "checkpoints" / "deepjscc" / FINAL_WEIGHTS)
    expected = {"deepjscc": _outputs(deepjscc.model)}
    # the multi-user model and A-MIJSCC (in its fine-tuning stage), their weights moved
    # away from their initial values
    paths = {"deepjscc": run_dir / "checkpoints" / "deepjscc" / MODEL_FILE}
    models = {"deepjscc": deepjscc.model}
    rng = np.random.default_rng(1)
    for entry in (MULTIUSER, MIJSCC):
        name = entry["name"]
        system = semsim.build_system({**SCENARIO, "systems": [entry]}, name)
        if name == "mijscc":
            system.model.enable_adaptive()
        initial[name] = _outputs(system.model)
        for variable in system.model.trainable_variables:
            variable.assign(variable.numpy() * rng.uniform(0.5, 1.5, variable.shape))
        expected[name] = _outputs(system.model)
        (tmp_path / name).mkdir()
        paths[name] = export_model(name, system, tmp_path / name)
        assert paths[name] == tmp_path / name / MODEL_FILE
        models[name] = system.model

    run = subprocess.run([sys.executable, "-c", PROBE,
                          json.dumps({k: str(v) for k, v in paths.items()})],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                              "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert loaded["mijscc"]["adaptive_active"] is True
    for name, model in models.items():
        assert loaded[name]["class"] == type(model).__name__
        exported = {k: np.asarray(v) for k, v in loaded[name]["outputs"].items()}
        assert exported.keys() == expected[name].keys()
        for key, value in expected[name].items():
            np.testing.assert_allclose(exported[key], value, rtol=0, atol=1e-6,
                                       err_msg=f"{name}: {key}")
        # the comparison sees the trained (perturbed) weights: the initial model differs
        assert np.max(np.abs(initial[name]["image_hat"] - expected[name]["image_hat"])) > 1e-4


def test_a_system_that_is_not_a_keras_model_is_skipped_with_a_reason(tiny_run):
    run_dir, lines = tiny_run
    assert (run_dir / "checkpoints" / "deepjscc" / MODEL_FILE).is_file()
    assert not (run_dir / "checkpoints" / "toy" / MODEL_FILE).exists()
    assert [line for line in lines if MODEL_FILE in line] == [
        "toy: no model.keras export: a toy system is not one Keras model"]


def test_loading_uses_safe_mode(tmp_path):
    """A ``.keras`` file holding a Python lambda is refused (safe mode), not executed."""
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        load_exported(path)
