"""The verdict of benchmarks/convergence.py (:mod:`semsim.weights.convergence`): converged
when doubling the steps from N to 2N raises validation PSNR by less than 0.3 dB."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "convergence.py"


def _verdicts():
    from semsim.weights.convergence import verdicts

    return verdicts


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
    from semsim.scenario.channels import SharedChannels
    from semsim.scenario.loader import load_scenario
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


def _module():
    spec = importlib.util.spec_from_file_location("convergence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pooled_verdict_uses_welch_interval_over_trainings_of_one_budget():
    """Several trainings per budget (seeds): the gain of the means and its 95 % Welch
    interval, checked against hand-computed values (Student's t quantiles from tables:
    t(0.975, 2) = 4.3027, t(0.975, 4) = 2.7764)."""
    import re

    from semsim.weights.convergence import pooled_verdicts as pooled

    rows = (_rows("wide", [(100, 20.0), (100, 21.0), (200, 21.0), (200, 22.0)])
            + _rows("flat", [(100, 20.0), (100, 20.1), (100, 20.2),
                             (200, 20.05), (200, 20.15), (200, 20.25)])
            + _rows("rising", [(100, 20.0), (100, 20.1), (100, 20.2),
                               (200, 21.0), (200, 21.1), (200, 21.2)])
            + _rows("single", [(100, 20.0), (200, 25.0)]))
    result = pooled(rows)
    assert "single, pooled" not in result  # one training per budget: no interval

    def interval(text):
        low, high = re.search(r"interval \[([-+.\d]+), ([-+.\d]+)\]", text).groups()
        return float(low), float(high)

    # wide: gain 1.0, SE sqrt(0.5/2 + 0.5/2) = 0.7071, Welch dof 2: 1.0 -/+ 3.0425
    assert result["wide, pooled"].startswith("undecided")
    assert interval(result["wide, pooled"]) == (-2.04, 4.04)
    # flat: gain 0.05, SE sqrt(2 * 0.01 / 3) = 0.08165, dof 4: 0.05 -/+ 0.2267
    assert result["flat, pooled"].startswith("converged: 100 -> 200 steps")
    assert interval(result["flat, pooled"]) == (-0.18, 0.28)
    assert "by +0.05 dB" in result["flat, pooled"]
    # rising: gain 1.0 -/+ 0.2267: the whole interval above 0.3 dB
    assert result["rising, pooled"].startswith("NOT converged")
    assert interval(result["rising, pooled"]) == (0.77, 1.23)


def test_a_series_with_two_trainings_of_one_budget_defers_to_the_pooled_verdict():
    """Two rows of one series at the same budget are two trainings: the per-series
    verdict picks neither (before, the last one read silently won)."""
    from semsim.weights.convergence import pooled_verdicts, verdicts

    rows = _rows("a", [(100, 20.0), (200, 20.1), (200, 21.0)])
    assert verdicts(rows)["a"] == (
        "no verdict of its own: 200 steps have several trainings here (the pooled verdict "
        "judges them, given at least 2 trainings at each of 100 and 200 steps)")
    assert "a, pooled" not in pooled_verdicts(rows)  # one training at 100 steps


def test_pooled_verdict_leaves_out_warm_restarts_and_cut_runs():
    from semsim.weights.convergence import pooled_verdicts as pooled

    rows = _rows("a", [(100, 20.0), (100, 20.2), (200, 20.1), (200, 20.3)])
    rows += [{"system": "a", "series": "a, from shipped", "steps": 200, "val_psnr_db": 30.0},
             {"system": "a", "steps": 200, "val_psnr_db": 30.0, "complete": False}]
    assert "by +0.10 dB" in pooled(rows)["a, pooled"]  # neither 30 dB row counted


def test_a_training_seed_changes_training_but_not_validation(tmp_path, monkeypatch):
    """``--seeds``: trainings of two seeds differ and one seed trains the same weights
    twice, while validation always uses the file's seed (its images and channel draws)."""
    import argparse

    from semsim.scenario import SCENARIOS_DIR
    from semsim.scenario.loader import load_scenario

    module = _module()
    file_seed = load_scenario(SCENARIOS_DIR / "siso_awgn.yaml", "quick").scenario.seed
    validated = []
    original = module.validate

    def spy(args, resolved, system, validation):
        validated.append(resolved.scenario.seed)
        return original(args, resolved, system, validation)

    monkeypatch.setattr(module, "validate", spy)
    args = argparse.Namespace(scenario=SCENARIOS_DIR / "siso_awgn.yaml", profile="quick",
                              out=tmp_path, val_images=8, val_draws=1, max_seconds=None)
    seeds = (file_seed + 1, file_seed + 2, file_seed + 1)
    rows = [module.train_and_validate(args, "deepjscc", 3, seed=seed) for seed in seeds]
    assert [r["seed"] for r in rows] == list(seeds)
    assert validated == [file_seed] * 3
    assert rows[0]["series"] == f"deepjscc, seed {seeds[0]}"
    assert rows[0]["val_psnr_db"] == rows[2]["val_psnr_db"]  # same seed: same training
    assert rows[0]["val_psnr_db"] != rows[1]["val_psnr_db"]


def test_the_printed_verdict_names_a_moved_rate():
    """A rate-adaptive system whose validation CR moved between N and 2N steps gets the
    move in its verdict (the PSNR change then compares two operating points); a CR that
    stayed within 1 % does not."""
    from semsim.weights.manifest import convergence_text

    entry = {"converged": True, "gain_db": -0.31, "steps": [12000, 24000],
             "method": "warm restart", "cr": [0.1859, 0.141]}
    assert convergence_text(entry) == ("converged: -0.31 dB from 12000 to 24000 steps "
                                       "(warm restart; CR 0.186 -> 0.141)")
    steady = {**entry, "cr": [0.3333, 0.333]}
    assert convergence_text(steady) == ("converged: -0.31 dB from 12000 to 24000 steps "
                                        "(warm restart)")
    assert convergence_text({k: v for k, v in entry.items() if k != "cr"}).endswith(
        "(warm restart)")


def test_record_writes_the_warm_restart_verdict_into_the_manifest(tmp_path):
    """``--record``: the shipped checkpoint (N) and its warm restart (2N) become the
    manifest's convergence entry (gain and verdict from the two PSNRs, CR pair, command);
    every other manifest field stays as it was; from-scratch rows and a system whose
    restart was cut record nothing."""
    import json
    import shutil

    from semsim.scenario import SCENARIOS_DIR
    from semsim.scenario.loader import load_scenario
    from semsim.weights import WEIGHTS_DIR
    from semsim.weights.convergence import record
    from semsim.weights.manifest import convergence_text

    resolved = load_scenario(SCENARIOS_DIR / "siso_awgn.yaml", "standard")
    folder = tmp_path / "siso_awgn" / "standard"
    folder.mkdir(parents=True)
    shipped = WEIGHTS_DIR / "siso_awgn" / "standard" / "deepjscc.manifest.json"
    before = json.loads(shipped.read_text())
    before.pop("convergence", None)
    (folder / "deepjscc.manifest.json").write_text(json.dumps(before))
    shutil.copyfile(shipped, folder / "other.manifest.json")
    untouched = (folder / "other.manifest.json").read_text()

    def row(system, series, steps, psnr, cr, complete=True):
        return {"system": system, "series": series, "steps": steps, "val_psnr_db": psnr,
                "val_cr": cr, "val_images": 64, "val_draws": 8, "complete": complete}

    rows = [row("deepjscc", "deepjscc", 500, 20.0, 0.16667),
            row("deepjscc", "deepjscc, from shipped", 1000, 25.004, 0.1666667),
            row("deepjscc", "deepjscc, from shipped", 2000, 25.41, 0.1666667),
            row("other", "other, from shipped", 1000, 25.0, 0.2),
            row("other", "other, from shipped", 2000, 25.1, 0.2, complete=False)]
    written = record(resolved, rows, "python benchmarks/convergence.py x", tmp_path)

    assert written == [str(folder / "deepjscc.manifest.json")]
    after = json.loads((folder / "deepjscc.manifest.json").read_text())
    entry = after.pop("convergence")
    assert after == before
    assert entry == {"converged": False, "gain_db": 0.41, "steps": [1000, 2000],
                     "method": "warm restart",
                     "validation": "mean per-image PSNR of 64 held-out validation images x 8 "
                                   "seeded channel draws at 10 dB",
                     "psnr_db": [25.0, 25.41], "cr": [0.16667, 0.16667],
                     "command": "python benchmarks/convergence.py x"}
    assert convergence_text(entry) == ("NOT converged: +0.41 dB from 1000 to 2000 steps "
                                       "(warm restart)")
    assert (folder / "other.manifest.json").read_text() == untouched


def test_weights_from_a_run_directory_load_what_the_run_trained(tmp_path):
    """``--weights STEPS=RUN_DIR`` judges a system that is not one Keras model (SCSC's
    stages) as the run trained it: the loaded weights are the run's saved ones (nothing
    retrained, the run directory untouched), and a STEPS other than the run's finished
    steps, or a run of another seed (other validation images), is refused."""
    import argparse

    import numpy as np
    import pytest

    from semsim.scenario import SCENARIOS_DIR
    from semsim.scenario.loader import load_scenario
    from semsim.scenario.runner import RunOptions, run_scenario

    module = _module()
    file = SCENARIOS_DIR / "scsc_2x2.yaml"
    resolved = load_scenario(file, "quick")
    run_dir = tmp_path / "run"
    with pytest.warns(RuntimeWarning, match="does not track"):  # the tiny proxy
        results = run_scenario(resolved, RunOptions(out_dir=run_dir, systems=("scsc_q34",),
                                                    progress=False))
    done = results.systems["scsc_q34"].steps_done
    assert done == 20  # quick: PCEN 10 + proxy 6 + PPEN 4
    saved = run_dir / "checkpoints" / "scsc_q34" / "scsc.weights.npz"
    before = saved.stat().st_mtime_ns
    system = module.from_run_dir(resolved, run_dir, "scsc_q34", done)
    with np.load(saved) as arrays:
        for j, weight in enumerate(system.ppen.get_weights()):
            np.testing.assert_array_equal(weight, arrays[f"0_{j}"])
    assert saved.stat().st_mtime_ns == before
    with pytest.raises(SystemExit, match="did 20 of 20 planned steps, not 40"):
        module.from_run_dir(resolved, run_dir, "scsc_q34", 40)
    other = load_scenario(file, "quick", {"seed": 1})
    with pytest.raises(SystemExit, match="another seed"):
        module.from_run_dir(other, run_dir, "scsc_q34", done)
    args = argparse.Namespace(scenario=file, profile="quick", out=tmp_path / "conv",
                              weights=[f"{done}={run_dir}"], val_images=8, val_draws=1)
    (row,) = module.evaluate_checkpoints(args, "scsc_q34")
    assert row["steps"] == done and np.isfinite(row["val_psnr_db"]) and row["val_cr"] > 0
