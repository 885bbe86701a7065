"""``semsim run`` uses a shipped checkpoint only when config hash and SHA-256 match;
``--retrain`` and any config change make it train. Tiny Deep JSCC, few steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import semsim.weights.shipped as shipped
from semsim.cli.main import main
from semsim.data.pipeline import load_data
from semsim.scenario.loader import load_scenario
from semsim.scenario.runner import RunOptions, _Run, run_scenario
from semsim.weights.build import build_checkpoint
from semsim.weights.manifest import file_sha256

pytestmark = pytest.mark.slow  # trains a tiny model for a few steps

SCENARIO = """\
name: tiny_siso
description: tiny SISO AWGN scenario of the shipped-weights tests
seed: 3
link: {{nr: 1, nt: 1, fading: none, csi: perfect}}
snr: {{train_db: [0, 20], eval_db: [5, 10, 15]}}
data: {{source: builtin, image_size: 32, test_images: 16}}
systems:
  - {{name: deepjscc, type: deepjscc, params: {{cr: 0.1667, filters: {filters},
      eval_batch_size: {eval_batch}}}}}
train: {{steps: 12, batch_size: 8, jit_compile: false, max_seconds: {max_seconds}}}
eval: {{batch_size: 16, samples: 2}}
profile: standard
profiles:
  standard: {{data: {{test_images: 16}}}}
"""


def write_scenario(path: Path, filters=(4, 4, 4, 4), eval_batch=64, max_seconds=600) -> Path:
    path.write_text(SCENARIO.format(filters=list(filters), eval_batch=eval_batch,
                                    max_seconds=max_seconds))
    return path


@pytest.fixture(scope="module")
def shipped_root(tmp_path_factory):
    """A weights directory holding one freshly built checkpoint of the tiny scenario."""
    root = tmp_path_factory.mktemp("weights")
    resolved = load_scenario(write_scenario(root / "tiny.yaml"))
    manifest = build_checkpoint(resolved, "deepjscc", root, command="python -m semsim.weights.build")
    return root, manifest


@pytest.fixture
def use_root(shipped_root, monkeypatch):
    root, manifest = shipped_root
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", root)
    return root, manifest


def trained_here(run_dir: Path) -> bool:
    """Training ran in this run directory (its per-epoch backup exists)."""
    return (run_dir / "checkpoints" / "deepjscc" / "backup" / "progress.json").exists()


def test_build_records_steps_and_validation(shipped_root):
    root, manifest = shipped_root
    assert manifest["steps_done"] == manifest["steps_planned"] == 12
    assert not manifest["under_trained"]
    assert manifest["validation"]["snr_db"] == 10.0  # middle of [5, 10, 15]
    assert manifest["validation"]["images"] == 16
    assert manifest["id"].startswith("tiny_siso/standard/deepjscc@")
    weights = root / "tiny_siso" / "standard" / "deepjscc.weights.h5"
    assert manifest["weights_sha256"] == file_sha256(weights)


def test_matching_config_uses_the_shipped_file(use_root, tmp_path, capsys):
    root, manifest = use_root
    # eval_batch_size and max_seconds do not change the weights: still a match
    resolved = load_scenario(write_scenario(tmp_path / "s.yaml", eval_batch=8, max_seconds=99))
    results = run_scenario(resolved, RunOptions(out_dir=tmp_path / "run", progress=False))
    system = results.systems["deepjscc"]
    assert system.weights == "shipped"
    assert system.weights_manifest == manifest["id"]
    assert not trained_here(tmp_path / "run")
    final = tmp_path / "run" / "checkpoints" / "deepjscc" / "final.weights.h5"
    assert file_sha256(final) == manifest["weights_sha256"]
    assert f"using shipped weights {manifest['id']}" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["systems"]["deepjscc"]["weights"] == "shipped"


def test_changed_filters_train_instead(use_root, tmp_path, capsys):
    resolved = load_scenario(write_scenario(tmp_path / "s.yaml", filters=(4, 4, 4, 8)))
    results = run_scenario(resolved, RunOptions(out_dir=tmp_path / "run", progress=False))
    assert results.systems["deepjscc"].weights == "trained"
    assert results.systems["deepjscc"].weights_manifest is None
    assert trained_here(tmp_path / "run")
    out = capsys.readouterr().out
    assert "shipped weights not used: config hash differs (changed: params, variable_shapes); " \
        "training: 12 steps of batch 8, wall-clock budget 600 s" in out


def test_no_shipped_weights_is_announced_with_the_training_plan(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", tmp_path / "empty")
    resolved = load_scenario(write_scenario(tmp_path / "s.yaml"))
    run = _Run(resolved, RunOptions(out_dir=tmp_path / "run", progress=False))
    system = run._build(resolved.scenario.system("deepjscc"), load_data(resolved.scenario.data))
    workdir = tmp_path / "work"
    workdir.mkdir()
    resume = shipped.prepare_weights(resolved, "deepjscc", system, workdir, resume=False,
                                     retrain=False, plan="12 steps of batch 8")
    assert resume is False
    assert capsys.readouterr().out == ("deepjscc: no shipped weights for tiny_siso/standard; "
                                       "training from scratch: 12 steps of batch 8\n")
    assert shipped.weights_record(workdir)["weights"] == "trained"


def test_a_staged_system_resumes_from_its_own_checkpoint_files(tmp_path, capsys):
    """SCSC keeps no Keras checkpoint: a resumed run finds its own files and says so,
    and the standard chain alone (nothing learned) is announced as no training at all."""
    from semsim.phy.spec import CSISpec, LinkSpec
    from semsim.systems.scsc.system import SCSCSystem

    link = LinkSpec(csi=CSISpec(mode="perfect"), precoding="svd")
    learned = SCSCSystem(link, filters=4, ppen_depth=1, admm_layers=2)
    for name in ("scsc.weights.npz", "scsc.state.json"):
        (tmp_path / name).write_text("{}")
    assert shipped.prepare_weights(None, "scsc_q34", learned, tmp_path, resume=True,
                                   retrain=False) is True
    assert capsys.readouterr().out == \
        f"scsc_q34: weights from the existing checkpoint in {tmp_path}\n"
    assert shipped.weights_record(tmp_path)["weights"] == "resumed"
    chain = SCSCSystem(link, ppen=False, pcen=False)
    assert shipped.prepare_weights(None, "chain", chain, tmp_path / "chain", resume=False,
                                   retrain=False) is False
    assert capsys.readouterr().out == ""


def test_corrupted_file_is_not_used(shipped_root, tmp_path):
    root, manifest = shipped_root
    copy = tmp_path / "weights" / "tiny_siso" / "standard"
    copy.mkdir(parents=True)
    source = root / "tiny_siso" / "standard"
    for name in ("deepjscc.weights.h5", "deepjscc.manifest.json"):
        (copy / name).write_bytes((source / name).read_bytes())
    resolved = load_scenario(write_scenario(tmp_path / "s.yaml"))
    run = _Run(resolved, RunOptions(out_dir=tmp_path / "run", progress=False))
    system = run._build(resolved.scenario.system("deepjscc"), load_data(resolved.scenario.data))
    assert shipped.find_shipped(resolved, "deepjscc", system, tmp_path / "weights")["id"] == \
        manifest["id"]
    with open(copy / "deepjscc.weights.h5", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(shipped.ShippedMismatch, match="SHA-256 of deepjscc.weights.h5 differs"):
        shipped.find_shipped(resolved, "deepjscc", system, tmp_path / "weights")


def test_retrain_flag_ignores_the_shipped_file(use_root, tmp_path, capsys):
    scenario = write_scenario(tmp_path / "s.yaml")
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--out", str(out), "--retrain", "--no-progress"]) == 0
    assert "deepjscc: training from scratch (--retrain): 12 steps of batch 8, wall-clock " \
        "budget 600 s" in capsys.readouterr().out
    saved = json.loads((out / "results.json").read_text())
    assert saved["systems"]["deepjscc"]["weights"] == "trained"
    assert trained_here(out)
    # resuming the finished run keeps the weights it trained
    assert main(["run", str(scenario), "--out", str(out), "--resume", "--no-progress"]) == 0
    saved = json.loads((out / "results.json").read_text())
    assert saved["systems"]["deepjscc"]["weights"] == "trained"
