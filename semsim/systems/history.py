"""A learned system's training history and what it says about convergence.

``history.csv`` (Keras ``CSVLogger``, written by :class:`~semsim.systems.keras_system.
KerasSystem` in its workdir, appended across resumes) holds one row per epoch: the
training metrics, ``step`` (optimizer steps so far) and, when validation images were
given, ``val_psnr_db`` (headline PSNR of the held-out validation images at the middle of
the training SNR range, with the same channel and noise draws every epoch). A system
trained in stages keeps one history per stage, in a sub-directory named after the stage
(A-MIJSCC: ``base/`` and ``adaptive/``).

The project's convergence test (issue 16) doubles the steps: a system trained for ``N``
steps is converged when ``2N`` steps raise validation PSNR by less than
:data:`CONVERGED_GAIN_DB` (``benchmarks/convergence.py`` runs it). A run that trains a
system cannot afford that, so the runner reads the **second half of its own validation
history** (:func:`validation_trend`): the validation PSNR at the last row against the row
at (or last before) half the steps. A gain of at least :data:`CONVERGED_GAIN_DB` means
the system was still learning when training stopped, and the run marks it ``NOT
converged``. A smaller gain is no proof of convergence and is reported as measured, never
called converged. (With a decaying learning-rate schedule the half-way model is noisier
than one trained for half the steps, so the second half tends to gain more than a
doubling would: the mark errs on the cautious side.)
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

HISTORY = "history.csv"

#: dB: doubling the training steps must raise validation PSNR by less than this for a
#: system to count as converged; a run's second half gaining this much marks it NOT
#: converged.
CONVERGED_GAIN_DB = 0.3


def val_psnr_db(system, images: np.ndarray, snr_range_db: tuple[float, float],
                seed: int, draws: int = 1) -> float:
    """The ``val_psnr_db`` column of a training history: the headline PSNR (dB, mean
    per-image PSNR of 8-bit images) of ``system.transmit(images, snr_db)`` for held-out
    ``images`` (``float32 [V, H, W, 3]`` in ``[0, 1]``), with ``snr_db`` the middle of the
    training SNR range ``snr_range_db`` (dB), averaged over ``draws`` sends of the images.
    Channel and noise come from Sionna's generator reset to ``seed`` (draw 0) or to a seed
    derived from it (draw ``d``), so every call sees the same draws, and the caller's
    generator state is restored afterwards, so logging it leaves training unchanged."""
    import sionna.phy

    from semsim.metrics import mean_psnr
    from semsim.scenario.channels import derive_seed
    from semsim.seeding import restore_sionna_rng_state, sionna_rng_state

    snr_db = sum(float(v) for v in snr_range_db) / 2.0
    state = sionna_rng_state()
    values = []
    try:
        for draw in range(draws):
            sionna.phy.config.tf_rng.reset_from_seed(derive_seed(seed, draw) if draw else seed)
            values.append(mean_psnr(images, system.transmit(images, snr_db).images_hat))
    finally:
        restore_sionna_rng_state(state)
    return float(np.mean(values))


def validation_curve(path: str | Path) -> list[tuple[int, float]]:
    """``[(step, val_psnr_db), ...]`` of a ``history.csv``, in step order; rows without a
    finite validation PSNR are skipped, and a step logged twice (an epoch cut by the
    wall-clock budget and finished by a resumed run) keeps its last row. ``[]`` when the
    file is missing or has no validation column."""
    path = Path(path)
    if not path.exists():
        return []
    by_step: dict[int, float] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                step, value = int(float(row["step"])), float(row["val_psnr_db"])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(value):
                by_step[step] = value
    return sorted(by_step.items())


def _second_half(curve: list[tuple[int, float]], stage: str) -> dict[str, Any] | None:
    if len(curve) < 2:
        return None
    last_step, last = curve[-1]
    before = [(step, value) for step, value in curve if step <= last_step / 2]
    if not before:
        return None
    half_step, half = before[-1]
    gain = last - half
    return {"stage": stage, "steps": [half_step, last_step], "val_psnr_db": [half, last],
            "gain_db": gain, "rising": gain >= CONVERGED_GAIN_DB}


def validation_trend(workdir: str | Path) -> dict[str, Any] | None:
    """The second half of a system's validation history (module docstring), or ``None``
    when there is no history with validation rows at and before half the steps (a system
    without validation images, a single epoch, weights not trained here).

    Returns ``{"stage": "" (or the stage's directory name), "steps": [half, last],
    "val_psnr_db": [at half, at last] (dB), "gain_db": last - half (dB), "rising": gain_db
    >= CONVERGED_GAIN_DB}``; for a system trained in stages, the stage whose second half
    gained most."""
    workdir = Path(workdir)
    paths = [(workdir / HISTORY, "")]
    paths += [(p, p.parent.name) for p in sorted(workdir.glob(f"*/{HISTORY}"))]
    trends = [t for path, stage in paths if (t := _second_half(validation_curve(path), stage))]
    return max(trends, key=lambda t: t["gain_db"]) if trends else None


def trend_text(trend: dict[str, Any] | None) -> str:
    """``"NOT converged: validation PSNR +0.85 dB from step 750 to 1500 (second half of
    training)"``, or ``"validation PSNR +0.05 dB from step 750 to 1500 (second half of
    training; not a doubling test)"``; ``""`` for ``None``."""
    if not trend:
        return ""
    low, high = trend["steps"]
    stage = f", {trend['stage']} stage" if trend["stage"] else ""
    text = f"validation PSNR {trend['gain_db']:+.2f} dB from step {low} to {high}"
    if trend["rising"]:
        return f"NOT converged: {text} (second half of training{stage})"
    return f"{text} (second half of training{stage}; not a doubling test)"
