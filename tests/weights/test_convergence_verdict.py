"""The verdict of benchmarks/convergence.py: converged when doubling the steps from N to
2N raises validation PSNR by less than 0.3 dB."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "convergence.py"


def _verdicts():
    spec = importlib.util.spec_from_file_location("convergence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.verdicts


def _rows(system, points):
    return [{"system": system, "steps": s, "val_psnr_db": p} for s, p in points]


def test_verdict_compares_the_largest_budget_with_its_half():
    verdicts = _verdicts()
    rows = (_rows("a", [(100, 20.0), (200, 25.0), (400, 25.25)])    # +0.25 dB: converged
            + _rows("b", [(100, 25.0), (200, 25.0), (400, 25.4)])   # +0.40 dB: not
            + _rows("c", [(100, 20.0), (300, 22.0)]))                # no 150: no verdict
    result = verdicts(rows)
    assert result["a"].startswith("converged: 200 -> 400 steps changes validation PSNR by +0.25")
    assert result["b"].startswith("NOT converged: 200 -> 400 steps changes validation PSNR by +0.40")
    assert result["c"] == "no verdict: needs budgets 150 and 300"


def test_a_run_cut_by_the_wall_clock_is_no_budget_point():
    verdicts = _verdicts()
    rows = _rows("a", [(100, 20.0), (200, 20.1)]) + [
        {"system": "a", "steps": 400, "val_psnr_db": 20.15, "complete": False}]
    # the cut 400-step run is ignored: the verdict is 100 -> 200, not 200 -> 400
    assert verdicts(rows)["a"].startswith("converged: 100 -> 200 steps changes validation "
                                          "PSNR by +0.10")
    only_cut = [{"system": "b", "steps": 400, "val_psnr_db": 20.0, "complete": False}]
    assert verdicts(only_cut)["b"] == "no verdict: every run was cut by --max-seconds"


def test_validation_draws_add_channel_realizations_and_draw_0_is_the_manifests():
    """``--val-draws D`` sends the validation images over D seeded channel draws: draw 0 is
    the manifests' channel (SharedChannels batch 0 of the validation seed), the others
    are other realizations, and the figure is the mean over every (draw, image)."""
    import argparse

    import numpy as np

    from semsim.metrics import psnr_per_image
    from semsim.scenario import SCENARIOS_DIR
    from semsim.scenario.loader import load_scenario
    from semsim.scenario.runner import SharedChannels
    from semsim.systems.base import TransmitResult
    from semsim.weights.manifest import validation_setup

    spec = importlib.util.spec_from_file_location("convergence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    resolved = load_scenario(SCENARIOS_DIR / "mimo_2x2.yaml", "quick")
    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 3)).astype(np.float32)
    seen = []

    class Scaling:  # reconstruction error grows with the channel's gain: h matters
        def transmit(self, x, snr_db, h=None):
            seen.append(np.asarray(h))
            gain = float(np.mean(np.abs(h)))
            return TransmitResult(np.clip(x * (1 - 0.1 * gain), 0, 1), np.full(len(x), 0.1), {})

    args = argparse.Namespace(val_images=64, val_draws=3)
    row = module.validate(args, resolved, Scaling(), images)
    setup = validation_setup(resolved)
    manifest_h = SharedChannels(resolved.scenario.link, setup["channel_seed"]).get(0, 0, 4)
    np.testing.assert_array_equal(seen[0], manifest_h)
    assert len(seen) == 3
    assert not np.allclose(seen[0], seen[1]) and not np.allclose(seen[1], seen[2])
    expected = np.mean([psnr_per_image(images, np.clip(images * (1 - 0.1 * np.mean(np.abs(h))),
                                                         0, 1)) for h in seen])
    assert row["val_psnr_db"] == np.float64(expected)
    assert (row["val_images"], row["val_draws"]) == (4, 3)
    assert abs(row["val_cr"] - 0.1) < 1e-12


def test_weights_of_a_system_that_is_not_one_keras_model_are_refused(tmp_path):
    """``--weights`` loads a weights file into the system's Keras model; a wrapped system
    (``classified``: a classifier around another system) has none and gets a one-line
    error instead of an AttributeError."""
    import argparse

    import pytest

    from semsim.scenario import SCENARIOS_DIR

    spec = importlib.util.spec_from_file_location("convergence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = argparse.Namespace(scenario=SCENARIOS_DIR / "scsc_classification.yaml",
                              profile="quick", out=tmp_path, weights=["20=nothing.h5"],
                              val_images=8, val_draws=1)
    with pytest.raises(SystemExit, match=r"'deepjscc' \(classified\) is not one Keras model"):
        module.evaluate_checkpoints(args, "deepjscc")
