"""A tiny deterministic system for the runner tests (registered as type ``toy``).

"Training" estimates the mean training image over ``TrainSpec.steps`` batches with
a checkpoint after every step, so an interrupted ``prepare`` resumes exactly.
``transmit`` sends the image through an AWGN-like distortion whose variance follows
the channel gain ``||H||_F^2 / (Nr Nt)``, the SNR and the CR, with noise drawn from
numpy's global generator (which the runner seeds), pulled towards the learned mean.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from semsim.systems.base import LinkSpec, System, TrainSpec, TransmitResult
from semsim.systems.registry import get_system_type, register_system


class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cr: float = Field(0.25, gt=0.0, le=1.0)
    shrink: float = Field(0.1, ge=0.0, le=1.0)
    #: Test hook: raise KeyboardInterrupt after this training step (fresh runs only).
    interrupt_at_step: int | None = None


class ToySystem(System):
    type_name = "toy"
    trainable = True
    #: Every transmit call of the process: (snr_db, h, target_cr) - tests inspect it.
    calls: list[tuple[float, np.ndarray | None, float | None]] = []

    def __init__(self, params: ToyParams, link: LinkSpec, image_size: tuple[int, int]):
        self.params = params
        self.link = link
        self.image_size = image_size
        self.mean_image: np.ndarray | None = None
        self.steps_run = 0

    def prepare(self, train_data, train: TrainSpec, workdir: Path, resume: bool) -> None:
        state_file = Path(workdir) / "toy_state.json"
        step, total = 0, np.zeros((*self.image_size, 3))
        if resume and state_file.exists():
            state = json.loads(state_file.read_text())
            step, total = state["step"], np.asarray(state["total"])
        for batch in train_data.skip(step).take(train.steps - step):
            images = batch[0] if isinstance(batch, tuple) else batch
            total = total + np.asarray(images).mean(axis=0)
            step += 1
            self.steps_run += 1
            Path(workdir).mkdir(parents=True, exist_ok=True)
            state_file.write_text(json.dumps({"step": step, "total": total.tolist()}))
            if not resume and self.params.interrupt_at_step == step:
                raise KeyboardInterrupt
        self.mean_image = (total / max(step, 1)).astype(np.float32)

    def transmit(self, images, snr_db, h=None, target_cr=None) -> TransmitResult:
        images = np.asarray(images, np.float32)
        ToySystem.calls.append((float(snr_db), None if h is None else np.array(h), target_cr))
        batch = images.shape[0]
        cr = self.params.cr if target_cr is None else float(target_cr)
        gain = np.ones(batch) if h is None else \
            (np.abs(np.asarray(h)) ** 2).sum(axis=(1, 2)) / (h.shape[1] * h.shape[2])
        snr = 10.0 ** (np.asarray(snr_db, np.float64) / 10.0)
        std = np.sqrt(1.0 / (snr * gain * cr * 40.0))
        noise = np.random.normal(size=images.shape) * std[:, None, None, None]
        blurred = (1 - self.params.shrink) * images + self.params.shrink * self.mean_image
        out = np.clip(blurred + noise, 0.0, 1.0).astype(np.float32)
        symbols = np.full(batch, cr * 3 * images.shape[1] * images.shape[2])
        return TransmitResult(out, np.full(batch, cr, np.float32),
                              {"kept_symbols": symbols, "failed": (std > 0.3).astype(np.float32)})


    def summarize(self, extras):
        """A test-set figure: the fraction of failed images at this SNR point."""
        return {"failure_rate": float(np.mean(extras["failed"]))}


def _build(params: ToyParams, link: LinkSpec, image_size, seed: int) -> ToySystem:
    return ToySystem(params, link, tuple(image_size))


def register() -> None:
    """Register type ``toy`` once per process."""
    try:
        get_system_type("toy")
    except KeyError:
        register_system("toy", params=ToyParams, description="test-only toy system")(_build)
