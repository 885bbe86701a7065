"""Every shipped checkpoint matches the current code and config, and reproduces the
validation PSNR its manifest records."""

from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path

import pytest

from semsim.data.pipeline import load_data
from semsim.scenario.loader import SCENARIOS_DIR, load_scenario
from semsim.scenario.runner import RunOptions, _Run
from semsim.weights import WEIGHTS_DIR
from semsim.weights.manifest import (
    config_hash,
    file_sha256,
    hashed_config,
    read_manifest,
    shipped_manifests,
    validation_psnr,
)

MANIFESTS = shipped_manifests()
#: All shipped weights together (issue 16: at most 25 MB).
MAX_TOTAL_BYTES = 25 * 1024 * 1024
#: Reproduction tolerance of the recorded validation PSNR (dB).
PSNR_TOLERANCE_DB = 0.05
ROOT = Path(__file__).resolve().parents[2]


def test_checkpoints_are_shipped_and_small():
    assert MANIFESTS, f"no shipped manifest under {WEIGHTS_DIR}"
    total = sum((m.parent / read_manifest(m)["weights_file"]).stat().st_size for m in MANIFESTS)
    assert total <= MAX_TOTAL_BYTES


def test_package_data_covers_the_checkpoints():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = config["options.package_data"]["semsim.weights"].split(",")
    for manifest in MANIFESTS:
        for path in (manifest, manifest.parent / read_manifest(manifest)["weights_file"]):
            relative = path.relative_to(WEIGHTS_DIR).as_posix()
            assert any(fnmatch.fnmatch(relative, p.strip()) for p in patterns), relative


@pytest.mark.parametrize("manifest_file", MANIFESTS, ids=lambda p: p.name)
def test_checkpoint_matches_its_manifest_and_reproduces_its_psnr(manifest_file):
    manifest = read_manifest(manifest_file)
    weights = manifest_file.parent / manifest["weights_file"]
    assert file_sha256(weights) == manifest["weights_sha256"]
    assert 0 < manifest["steps_done"] <= manifest["steps_planned"]
    assert manifest["under_trained"] == (manifest["steps_done"] < manifest["steps_planned"])
    assert manifest["command"].startswith("python -m semsim.weights.build ")
    resolved = load_scenario(SCENARIOS_DIR / f"{manifest['scenario']}.yaml", manifest["profile"])
    entry = resolved.scenario.system(manifest["system"])
    run = _Run(resolved, RunOptions(out_dir=Path("unused"), progress=False))
    system = run._build(entry, load_data(resolved.scenario.data))
    assert config_hash(hashed_config(resolved, entry.name, system)) == manifest["config_hash"]
    system.model.load_weights(weights)
    psnr = validation_psnr(resolved, system)
    assert abs(psnr - manifest["validation"]["psnr_db"]) <= PSNR_TOLERANCE_DB
