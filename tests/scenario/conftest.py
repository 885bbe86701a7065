"""Fixtures of the scenario tests: the test-only ``toy`` system type and a tiny scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scenario.toy_system import register

register()

TINY = """\
name: tiny
description: tiny test scenario (no paper figure)
seed: 3
link: {nr: 2, nt: 2, csi: {mode: ls}}
snr: {train_db: [0, 10], eval_db: [0, 10, 20]}
data: {train_images: 2, test_images: 20}
systems:
  - {name: a, type: toy, params: {cr: 0.5}}
  - {name: b, type: toy, match_cr_of: a, params: {shrink: 0.3}}
train: {steps: 4, batch_size: 8}
eval: {batch_size: 8, samples: 3}
"""


@pytest.fixture
def tiny_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path
