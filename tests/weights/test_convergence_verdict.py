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
