"""The Python API (``semsim.load_scenario``/``run``/``build_system``) gives what the YAML
file and the ``semsim run`` command give."""

from __future__ import annotations

import pytest
import yaml

import semsim
from semsim.cli.main import main
from semsim.report.results import ResultsFile
from semsim.scenario.loader import ScenarioError
from tests.scenario.toy_system import ToySystem, register

register()

SCENARIO = {
    "name": "api_tiny", "description": "API test", "seed": 4,
    "link": {"nr": 2, "nt": 2, "csi": {"mode": "ls"}},
    "snr": {"eval_db": [0, 10]},
    "data": {"train_images": 3, "test_images": 8},
    "systems": [{"name": "a", "type": "toy", "params": {"cr": 0.3}}],
    "train": {"steps": 2, "batch_size": 4},
    "eval": {"batch_size": 4, "samples": 1},
}


def test_a_mapping_yaml_text_and_a_file_give_the_same_scenario(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    from_dict = semsim.load_scenario(SCENARIO)
    assert from_dict.to_dict() == semsim.load_scenario(path).to_dict()
    assert from_dict.to_dict() == semsim.load_scenario(str(path)).to_dict()
    assert from_dict.to_dict() == semsim.load_scenario(path.read_text()).to_dict()
    changed = semsim.load_scenario(from_dict, overrides={"link.nr": 4, "seed": 8})
    assert (changed.scenario.link.nr, changed.scenario.seed) == (4, 8)
    assert SCENARIO["link"]["nr"] == 2  # the caller's mapping is not modified


def test_a_bad_mapping_names_the_field():
    bad = {**SCENARIO, "train": {"steps": 0, "batch_size": 4}}
    with pytest.raises(ScenarioError, match=r"<dict>: train.steps: Input should be greater"):
        semsim.load_scenario(bad)


def test_run_returns_what_the_command_writes(tmp_path):
    results = semsim.run(SCENARIO, out=tmp_path / "api", progress=False)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    assert main(["run", str(path), "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    written = ResultsFile.read(tmp_path / "cli" / "results.json")
    assert isinstance(results, ResultsFile)
    assert results.systems["a"].psnr_db == written.systems["a"].psnr_db
    assert results.systems["a"].cr == pytest.approx([0.3, 0.3])


def test_build_system_uses_the_scenario_link_and_params():
    system = semsim.build_system(SCENARIO, "a", image_size=16)
    assert isinstance(system, ToySystem)
    assert system.params.cr == 0.3 and system.image_size == (16, 16)
    assert (system.link.num_rx_ant, system.link.num_tx_ant) == (2, 2)
    with pytest.raises(KeyError, match="no system named 'zz'"):
        semsim.build_system(SCENARIO, "zz")
