"""What the codec-based systems (separation, its capacity bound, SCSC) share: the channel
budget of an image at a target CR and the fallback image (the per-channel training
mean)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from semsim.systems.base import TrainSpec


def fallback_mean(train_data: Any, max_batches: int | None = None) -> np.ndarray:
    """Per-channel mean ``[3]`` float32 of a data set of ``[B, H, W, 3]`` images (or of
    ``(images, labels)`` pairs); exact running sums over all pixels of its first
    ``max_batches`` batches (all when ``None``; the runner's stream is endless)."""
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"max_batches must be >= 1 or None, got {max_batches!r}")
    total = np.zeros(3, np.float64)
    count = 0
    for batch in itertools.islice(train_data, max_batches):
        images = batch[0] if isinstance(batch, tuple | list) else batch
        images = np.asarray(images, np.float64).reshape(-1, 3)
        total += images.sum(axis=0)
        count += len(images)
    if count == 0:
        raise ValueError("train_data holds no images; cannot compute the fallback mean")
    return (total / count).astype(np.float32)


def channel_uses_per_image(target_cr: float, image_shape: tuple[int, int], num_antennas: int) -> int:
    """``U = floor(target_cr * 3HW / (2 A))`` complex channel uses of the ``A = num_antennas``
    antennas that send one image (``Nt`` single user, ``antennas_per_user`` multi-user)."""
    if not 0 < target_cr <= 10:
        raise ValueError(f"target_cr must lie in (0, 10]; got {target_cr!r}")
    height, width = image_shape
    return int(math.floor(target_cr * 3 * height * width / (2 * num_antennas) + 1e-9))


class FallbackMixin:
    """The fallback image of the codec-based systems: what an image that could not be
    sent or decoded is reconstructed as (the per-channel training mean)."""

    fallback: np.ndarray | None

    def prepare(self, train_data: Any, train: TrainSpec, workdir: Path, resume: bool) -> None:
        """Compute the fallback, the per-channel mean of one epoch
        (``train.steps_per_epoch`` batches) of the endless training stream; nothing is
        trained."""
        self.fallback = fallback_mean(train_data, train.steps_per_epoch)

    def _fallback_image(self, shape: tuple[int, int]) -> np.ndarray:
        if self.fallback is None:
            raise RuntimeError(f"{type(self).__name__}.prepare() must run before transmit()")
        return np.broadcast_to(self.fallback, (*shape, 3)).astype(np.float32)

    def _target(self, target_cr: float | None) -> float:
        cr = target_cr if target_cr is not None else self.cr
        if cr is None:
            raise ValueError(
                f"{self.type_name}: no target CR; set params.cr or give the system a match_cr_of"
            )
        return float(cr)
