"""Verdicts of convergence studies (``benchmarks/convergence.py``): converged when doubling
the training steps from ``N`` to ``2N`` raises validation PSNR by less than
:data:`semsim.systems.history.CONVERGED_GAIN_DB` (0.3 dB, issue 16).

The rows judged here are the benchmark's ``convergence.csv`` rows, one per trained
budget: ``system``, ``series`` (``"<system>, from shipped"`` for a warm restart from the
shipped checkpoint; the system name otherwise), ``steps``, ``complete`` (False when the
wall clock cut the run; such a run is no budget point), ``val_psnr_db`` (dB), and for the
manifest entry ``val_images``, ``val_draws`` and ``val_cr`` (real channel symbols per
``3HW``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semsim.systems.history import CONVERGED_GAIN_DB
from semsim.weights import WEIGHTS_DIR
from semsim.weights.manifest import (
    checkpoint_paths,
    read_manifest,
    validation_setup,
    write_manifest,
)


def series_name(system: str, warm: bool = False, seed: int | None = None) -> str:
    """The series of a training of ``system``: ``"<system>"`` from scratch,
    ``"<system>, from shipped"`` for a warm restart, ``", seed <seed>"`` appended for a
    training seed of its own."""
    name = f"{system}, from shipped" if warm else system
    return name if seed is None else f"{name}, seed {seed}"


def is_warm_restart(name: str) -> bool:
    """Whether the series ``name`` (:func:`series_name`) is a warm restart."""
    return ", from shipped" in name


def series(row: dict) -> str:
    """The series a row belongs to (its ``series``, else its ``system``)."""
    return row.get("series", row["system"])


def _values_by_steps(rows: list[dict], keep) -> dict[int, list[float]]:
    """Validation PSNR of the complete rows (runs cut by the wall clock are no budget
    point) for which ``keep(row)`` holds, grouped by step count."""
    out: dict[int, list[float]] = {}
    for r in rows:
        if r.get("complete", True) and keep(r):
            out.setdefault(r["steps"], []).append(float(r["val_psnr_db"]))
    return out


def trainings(rows: list[dict], system: str) -> dict[int, list[float]]:
    """Every training of ``system`` from scratch (warm restarts left out), by step count."""
    return _values_by_steps(rows, lambda r: r["system"] == system
                            and not is_warm_restart(series(r)))


def verdicts(rows: list[dict]) -> dict[str, str]:
    """Per series (a system from scratch, or from its shipped checkpoint): the PSNR gain
    from the largest step count's half to it, and the verdict."""
    out = {}
    for name in dict.fromkeys(series(r) for r in rows):
        by_steps = _values_by_steps(rows, lambda r, name=name: series(r) == name)
        if not by_steps:
            out[name] = "no verdict: every run was cut by --max-seconds"
            continue
        top = max(by_steps)
        half = top // 2
        if half not in by_steps:
            out[name] = f"no verdict: needs budgets {half} and {top}"
            continue
        several = [n for n in (half, top) if len(by_steps[n]) > 1]
        if several:
            out[name] = (f"no verdict of its own: {' and '.join(map(str, several))} steps "
                         f"have several trainings here (the pooled verdict judges them, given "
                         f"at least 2 trainings at each of {half} and {top} steps)")
            continue
        gain = by_steps[top][0] - by_steps[half][0]
        word = "converged" if gain < CONVERGED_GAIN_DB else "NOT converged"
        out[name] = (f"{word}: {half} -> {top} steps changes validation PSNR by {gain:+.2f} dB "
                     f"(threshold {CONVERGED_GAIN_DB} dB)")
    return out


def pooled_verdicts(rows: list[dict]) -> dict[str, str]:
    """Per system with several trainings from scratch of the same budgets (``--seeds``, or
    CSV files of several runs read together): the gain of the mean validation PSNR from
    the largest budget's half to it, over every such training, with its 95 % confidence
    interval (Welch's t; needs at least 2 trainings of each budget). Converged when the
    whole interval lies below 0.3 dB, NOT converged when it lies at or above it, undecided
    otherwise (NOT converged is then the cautious reading). Warm restarts and runs cut by
    the wall clock are left out."""
    from scipy import stats

    out = {}
    for name in dict.fromkeys(r["system"] for r in rows):
        by_steps = trainings(rows, name)
        pairs = [s for s in by_steps if s // 2 in by_steps and s % 2 == 0
                 and len(by_steps[s]) >= 2 and len(by_steps[s // 2]) >= 2]
        if not pairs:
            continue
        top = max(pairs)
        low, high = np.asarray(by_steps[top // 2]), np.asarray(by_steps[top])
        gain = float(high.mean() - low.mean())
        if np.ptp(low) == 0 and np.ptp(high) == 0:  # identical trainings: no spread to test
            lower = upper = gain
        else:
            lower, upper = stats.ttest_ind(high, low, equal_var=False).confidence_interval(0.95)
        if upper < CONVERGED_GAIN_DB:
            word = "converged"
        elif lower >= CONVERGED_GAIN_DB:
            word = "NOT converged"
        else:
            word = "undecided (the interval contains the threshold; NOT converged is the " \
                   "cautious reading)"
        out[f"{name}, pooled"] = (
            f"{word}: {top // 2} -> {top} steps changes the mean validation PSNR of "
            f"{len(low)} / {len(high)} trainings ({low.mean():.2f} / {high.mean():.2f} dB, "
            f"standard deviation {low.std(ddof=1):.2f} / {high.std(ddof=1):.2f} dB) by "
            f"{gain:+.2f} dB, 95 % interval [{lower:+.2f}, {upper:+.2f}] dB "
            f"(threshold {CONVERGED_GAIN_DB} dB)")
    return out


def warm_restart_entry(rows: list[dict], system: str, snr_db: float,
                       command: str) -> dict | None:
    """The manifest ``convergence`` entry (:mod:`semsim.weights.manifest`) of ``system``'s
    warm restart in ``rows``: its shipped checkpoint (``N`` steps) and the same trained
    ``N`` more steps (``2N``), both complete; ``None`` when ``rows`` lack either. PSNR and
    gain in dB (2 decimals, as printed), CR as real channel symbols per ``3HW`` (5 digits:
    a rate-adaptive system's move shows at 3)."""
    warm = {r["steps"]: r for r in rows if r["system"] == system
            and is_warm_restart(series(r)) and r.get("complete", True)}
    pairs = [s for s in warm if s // 2 in warm and s % 2 == 0 and s > 0]
    if not pairs:
        return None
    top = max(pairs)
    low, high = warm[top // 2], warm[top]
    psnr = [round(float(low["val_psnr_db"]), 2), round(float(high["val_psnr_db"]), 2)]
    gain = round(float(high["val_psnr_db"]) - float(low["val_psnr_db"]), 2)
    return {"converged": gain < CONVERGED_GAIN_DB, "gain_db": gain,
            "steps": [top // 2, top], "method": "warm restart",
            "validation": f"mean per-image PSNR of {low['val_images']} held-out validation "
                          f"images x {low['val_draws']} seeded channel draws at {snr_db:g} dB",
            "psnr_db": psnr,
            "cr": [round(float(low["val_cr"]), 5), round(float(high["val_cr"]), 5)],
            "command": command}


def record(resolved, rows: list[dict], command: str, root: Path | None = None) -> list[str]:
    """``--record``: write each warm-restarted system's :func:`warm_restart_entry` into its
    shipped manifest (under ``root``, default the package's weights), replacing any
    earlier ``convergence`` entry (it is not hashed: the weights and their config hash stay
    valid). Returns the manifest files written."""
    snr = validation_setup(resolved)["snr_db"]
    written = []
    for system in dict.fromkeys(r["system"] for r in rows):
        entry = warm_restart_entry(rows, system, snr, command)
        if entry is None:
            continue
        _, path = checkpoint_paths(resolved.scenario.name, resolved.profile, system,
                                   WEIGHTS_DIR if root is None else root)
        manifest = read_manifest(path)
        manifest["convergence"] = entry
        write_manifest(manifest, path)
        written.append(str(path))
    return written
