"""The one interface every end-to-end system implements.

A *system* is a transmitter/receiver pair on the shared physical layer
(:mod:`semsim.phy`). The scenario runner only talks to systems through
:class:`System`, so a new system needs no change in the runner or the CLI:
implement :class:`System`, give it a pydantic ``Params`` model and register a
factory with :func:`semsim.systems.registry.register_system`.

Conventions
-----------
* Images are ``float32`` tensors ``[batch, height, width, 3]`` with values in ``[0, 1]``.
* ``snr_db`` is the per-receive-antenna average SNR in dB, one value per image
  (``[batch]`` ``float32``) or a scalar.
* ``h`` is an optional channel realization shared by all compared systems:
  ``[batch, num_rx_ant, num_tx_ant]`` ``complex64`` (block fading). When given,
  the system must use it instead of drawing its own, so that every system of a
  scenario sees the same channels.
* CR (compression ratio) is the number of **real** channel symbols that entered the
  channel layer (counted there: ``sent_reals`` of :class:`semsim.phy.Transmission` or
  :meth:`semsim.phy.DigitalLink.send`) divided by ``3 * height * width``. Everything that
  crosses the channel counts (e.g. the multi-user system's index symbols); pilots do not.
* Side information is what a system assumes the receiver knows for free (not sent, so
  not in CR): e.g. the reference system's cut-off pair, SwinJSCC's channel mask. Every
  such system reports it as ``side_info_bits`` per image with one definition,
  :func:`side_info_bits`: the empirical entropy of those per-image decisions over the
  test set at one SNR (the cost of entropy-coding them), computed in
  :meth:`System.summarize`. A system that reports none assumes none.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from semsim.metrics import empirical_entropy_bits
from semsim.phy.spec import CSISpec, LinkSpec

__all__ = ["CSISpec", "LinkSpec", "TrainReport", "TrainSpec", "TransmitResult", "System", "side_info_bits",
           "side_info_summary"]


def side_info_bits(extras: dict[str, np.ndarray], keys: tuple[str, ...],
                   fixed_bits: float = 0.0) -> float:
    """Side information per image (bits): the empirical entropy of the joint per-image
    decisions ``extras[key]`` (``[num_images]`` integer-valued, rounded) over a test set,
    plus ``fixed_bits`` per image of values that are not decisions from a finite set
    (e.g. a quantizer's scale as a 32-bit float) and so are sent at their fixed length."""
    if fixed_bits < 0:
        raise ValueError(f"fixed_bits must be >= 0, got {fixed_bits}")
    decided = empirical_entropy_bits(*(np.rint(np.asarray(extras[key], np.float64))
                                       for key in keys)) if keys else 0.0
    return float(fixed_bits) + decided


def side_info_summary(*keys: str, fixed_bits: float = 0.0
                      ) -> Callable[[dict[str, np.ndarray]], dict[str, float]]:
    """A :meth:`System.summarize` that reports ``{"side_info_bits": side_info_bits(extras,
    keys, fixed_bits)}`` for the per-image decisions named ``keys``."""
    if not keys and fixed_bits <= 0:
        raise ValueError("side_info_summary needs the names of the decisions' extras "
                         "or fixed_bits > 0")
    return lambda extras: {"side_info_bits": side_info_bits(extras, keys, fixed_bits)}


def check_images(images: np.ndarray) -> np.ndarray:
    """The ``images`` argument of :meth:`System.transmit` as float32 ``[B, H, W, 3]``; a
    ``ValueError`` for any other shape."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [batch, H, W, 3]; got shape {images.shape}")
    return images


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """Training budget and optimizer, resolved from the scenario's profile.

    ``steps`` is the total number of optimizer steps (``epochs * steps_per_epoch``).
    ``snr_range_db``: training SNR drawn per image from ``U[lo, hi]`` dB.
    ``max_seconds``: optional wall-clock budget; training stops cleanly when reached.
    ``validation_images``: held-out images (``float32 [V, H, W, 3]`` in ``[0, 1]``, never
    the test set) on which learned systems log their PSNR after every epoch.
    ``tensorboard``: also write TensorBoard logs under the workdir.
    ``lr_schedule``: ``constant`` or ``cosine`` (decay to 1 % of ``learning_rate`` over
    ``steps``). ``precision``: ``float32``, ``mixed_float16`` or ``mixed_bfloat16`` (the
    learned blocks' dtype policy, see :mod:`semsim.systems.precision`). ``clip_norm``:
    bound on the global gradient norm of each step (``None``: no clipping).
    """

    steps: int = 100
    steps_per_epoch: int = 50
    batch_size: int = 32
    learning_rate: float = 1e-3
    lr_schedule: Literal["constant", "cosine"] = "constant"
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 0.0
    clip_norm: float | None = None
    snr_range_db: tuple[float, float] = (0.0, 20.0)
    max_seconds: float | None = None
    jit_compile: bool = True
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    seed: int = 0
    validation_images: np.ndarray | None = dataclasses.field(default=None, compare=False,
                                                             repr=False)
    tensorboard: bool = False

    @property
    def epochs(self) -> int:
        return max(1, -(-self.steps // self.steps_per_epoch))

    @property
    def epoch_steps(self) -> int:
        """``steps`` rounded up to whole epochs: what an epoch-wise training runs."""
        return self.epochs * self.steps_per_epoch


@dataclasses.dataclass(frozen=True)
class TrainReport:
    """What ``prepare`` of a system trained by optimizer steps returns: ``steps_done``
    (in total, over resumes) and ``steps_planned``; fewer done than planned means the
    wall-clock budget stopped it (under-trained)."""

    steps_done: int
    steps_planned: int

    @property
    def complete(self) -> bool:
        return self.steps_done >= self.steps_planned


@dataclasses.dataclass
class TransmitResult:
    """What one system returns for one batch at one SNR.

    ``images_hat``: ``[batch, H, W, 3]`` float32 in ``[0, 1]``.
    ``cr``: ``[batch]`` real channel symbols sent / ``3HW`` per image.
    ``extras``: per-image values (``[batch]`` arrays) reported alongside, e.g.
    ``kept_maps``, ``kept_symbols``, ``side_info_bits``, ``failed``.
    """

    images_hat: np.ndarray
    cr: np.ndarray
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


class System(abc.ABC):
    """Base of all systems. Subclasses set ``type_name`` and ``trainable``."""

    type_name: ClassVar[str]
    trainable: ClassVar[bool]

    @abc.abstractmethod
    def prepare(self, train_data: Any, train: TrainSpec, workdir: Path,
                resume: bool) -> TrainReport | None:
        """Train (learned systems) or fit statistics (classic ones) on ``train_data``;
        systems trained by optimizer steps return a :class:`TrainReport`.

        ``train_data`` is a ``tf.data.Dataset`` of ``[batch, H, W, 3]`` images (or of
        ``(images, labels)`` pairs). Checkpoints go under ``workdir``; with
        ``resume`` an interrupted run continues exactly where it stopped, and a
        finished one is loaded instead of retrained.
        """

    @abc.abstractmethod
    def transmit(
        self,
        images: np.ndarray,
        snr_db: float,
        h: np.ndarray | None = None,
        target_cr: float | None = None,
    ) -> TransmitResult:
        """Send ``images`` over the link at ``snr_db`` (evaluation mode, deterministic
        decisions) and return the reconstructions. ``target_cr`` is given to systems
        that match another system's CR (``match_cr_of``)."""

    def planned_steps(self, train: TrainSpec) -> int:
        """The optimizer steps ``prepare`` plans for ``train`` (what a run announces and
        records as planned): ``train.steps``, unless the system trains otherwise."""
        return train.steps

    def has_checkpoint(self, workdir: Path) -> bool:
        """Whether ``workdir`` holds this system's training state, finished or
        interrupted, that ``prepare(..., resume=True)`` loads or continues (none here)."""
        return False

    def summarize(self, extras: dict[str, np.ndarray]) -> dict[str, float]:
        """Per-image values that only exist over a whole test set at one SNR (e.g. the
        entropy-coded side information, in bits per image), computed from the
        concatenated ``extras`` of every batch. The runner reports each as an extra."""
        return {}
