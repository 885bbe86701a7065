"""The runner hands test labels to systems that use them, and reports their accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict
from sklearn.datasets import load_digits

from semsim.scenario.loader import load_scenario
from semsim.scenario.runner import RunError, RunOptions, run_scenario
from semsim.systems.base import System, TransmitResult
from semsim.systems.registry import get_system_type, register_system


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvenGuesser(System):
    """Test-only: answers "even" for every image, so its accuracy is the share of even
    labels; reconstructions are the images themselves."""

    type_name = "even_guesser"
    trainable = False
    uses_labels = True

    def prepare(self, train_data, train, workdir, resume):
        self.trained_with_labels = isinstance(train_data.element_spec, tuple)

    def transmit(self, images, snr_db, h=None, target_cr=None, labels=None):
        images = np.asarray(images, np.float32)
        correct = (np.asarray(labels) % 2 == 0).astype(np.float64)
        return TransmitResult(images, np.full(len(images), 0.5, np.float32), {"accuracy": correct})


try:
    get_system_type("even_guesser")
except KeyError:
    register_system("even_guesser", params=_Params)(lambda p, link, size, seed: EvenGuesser())

SCENARIO = """\
name: labelled
description: labels reach the systems that use them (test only)
link: {nr: 1, nt: 1, fading: none, csi: perfect, detector: zf}
snr: {eval_db: [0, 10]}
data: {source: digits, labels: LABELS}
systems:
  - {name: guess, type: even_guesser}
train: {steps: 1, batch_size: 8}
eval: {batch_size: 64}
"""


def test_runner_passes_the_test_labels_and_reports_accuracy(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("LABELS", "true"))
    results = run_scenario(load_scenario(path), RunOptions(out_dir=tmp_path / "run", progress=False))
    target = load_digits().target
    expected = np.mean(target[4::5] % 2 == 0)  # the digits test split: every fifth image
    system = results.systems["guess"]
    assert system.n_images == [359, 359]
    assert system.extras()["accuracy"] == pytest.approx([expected, expected], abs=1e-12)
    assert "accuracy" in (tmp_path / "run" / "results.csv").read_text().splitlines()[0]


def test_a_system_using_labels_needs_labelled_data(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("LABELS", "false"))
    with pytest.raises(RunError, match="needs labels"):
        run_scenario(load_scenario(path), RunOptions(out_dir=tmp_path / "run", progress=False))


def test_report_shows_the_accuracy(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("LABELS", "true"))
    results = run_scenario(load_scenario(path), RunOptions(out_dir=tmp_path / "run", progress=False))
    accuracy = results.systems["guess"].extras()["accuracy"][0]
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"/ acc {accuracy:.3f}" in report
