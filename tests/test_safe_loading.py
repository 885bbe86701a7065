"""Files semsim reads back (scenario YAML, evaluation points, results) never execute code:
YAML goes through ``yaml.safe_load``, ``.npz`` through ``np.load`` without pickle, results
are JSON. A crafted file is refused, and its payload does not run."""

from __future__ import annotations

import os

import numpy as np
import pytest

import semsim
from semsim.scenario.loader import ScenarioError
from tests.scenario.toy_system import register

register()

SCENARIO = {
    "name": "safe", "description": "safe loading", "seed": 2,
    "link": {"nr": 2, "nt": 2}, "snr": {"eval_db": [0, 10]},
    "data": {"train_images": 3, "test_images": 8},
    "systems": [{"name": "a", "type": "toy"}],
    "train": {"steps": 1, "batch_size": 4}, "eval": {"batch_size": 4, "samples": 1},
}


class Payload:
    """Unpickling it creates the file ``path`` (it would run any code the same way)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.makedirs, (self.path,))


def test_yaml_python_tags_are_refused(tmp_path):
    marker = tmp_path / "yaml_payload_ran"
    path = tmp_path / "evil.yaml"
    path.write_text(f"name: !!python/object/apply:os.makedirs [{str(marker)!r}]\n")
    with pytest.raises(ScenarioError, match="YAML syntax error"):
        semsim.load_scenario(path)
    assert not marker.exists()


def test_a_pickled_evaluation_point_is_refused_on_resume(tmp_path):
    out = tmp_path / "run"
    semsim.run(SCENARIO, out=out, progress=False)
    marker = tmp_path / "npz_payload_ran"
    point = out / "eval" / "a" / "snr_01.npz"
    arrays = dict(np.load(point))
    arrays["psnr"] = np.array([Payload(marker)], dtype=object)
    np.savez(point, **arrays)
    (out / "results.json").unlink()
    with pytest.raises(ValueError, match="allow_pickle=False"):
        semsim.run(SCENARIO, out=out, resume=True, progress=False)
    assert not marker.exists()
