"""Interface of the classic image codecs used by the separation baselines.

A codec turns one image into the exact byte string that a separation system
sends over the channel (:class:`Encoded`), and back. Every codec has an ordered
list of quality *levels* (its native knob: HEVC QP, JPEG quality, JPEG 2000
compression ratio) sorted from the lowest to the highest rate, and the helpers
:meth:`ImageCodec.sweep` (rate-distortion sweep) and :meth:`ImageCodec.encode_to_fit`
(highest level whose bitstream fits a bit budget).

Images are ``float32`` ``[H, W, 3]`` in ``[0, 1]`` (RGB). A decoded image is the same.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

import numpy as np


class DecodeError(ValueError):
    """The received bytes are not a decodable bitstream of this codec."""


@dataclasses.dataclass(frozen=True)
class Encoded:
    """One coded image: ``payload`` is exactly what goes over the channel.

    ``level``: the codec's quality knob used (see :attr:`ImageCodec.levels`).
    ``bits``: ``8 * len(payload)``, the source bits counted for the CR budget.
    """

    payload: bytes
    level: int

    @property
    def bits(self) -> int:
        return 8 * len(self.payload)


@dataclasses.dataclass(frozen=True)
class RDPoint:
    """One point of a rate-distortion sweep (``bits`` per image, ``psnr`` in dB)."""

    level: int
    bits: int
    psnr: float


def psnr_db(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR in dB between two arrays with values in ``[0, peak]`` (``inf`` if equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * np.log10(peak**2 / mse)


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate an ``[H, W, 3]`` image in ``[0, 1]`` and return it as ``float32``."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must have shape [H, W, 3]; got {image.shape}")
    image = image.astype(np.float32)
    if image.size and (image.min() < 0.0 or image.max() > 1.0):
        raise ValueError(f"image values must lie in [0, 1]; got [{image.min():.3g}, {image.max():.3g}]")
    return image


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``[0, 1]`` float image to ``uint8`` by rounding (``x * 255``)."""
    return np.clip(np.rint(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)


class ImageCodec(abc.ABC):
    """Base of the classic codecs. Subclasses set ``name`` and ``levels``."""

    name: ClassVar[str]
    #: Quality levels (native knob values), from the lowest to the highest rate.
    levels: tuple[int, ...]

    @abc.abstractmethod
    def encode(self, image: np.ndarray, level: int) -> Encoded:
        """Code ``image`` (``[H, W, 3]`` float in ``[0, 1]``) at quality ``level``."""

    @abc.abstractmethod
    def decode(self, payload: bytes, shape: tuple[int, int]) -> np.ndarray:
        """Decode ``payload`` into a ``[H, W, 3]`` float32 image in ``[0, 1]``.

        ``shape`` is ``(H, W)`` as known to the receiver from the scenario; a payload
        whose own header disagrees, or that the library cannot decode, raises
        :class:`DecodeError`.
        """

    def check_level(self, level: int) -> None:
        if level not in self.levels:
            raise ValueError(
                f"{self.name} level must be one of {self.levels[0]}..{self.levels[-1]} "
                f"(see {type(self).__name__}.levels); got {level!r}"
            )

    def sweep(self, image: np.ndarray) -> list[RDPoint]:
        """Bits and PSNR of ``image`` at every level (lowest rate first)."""
        image = check_image(image)
        points = []
        for level in self.levels:
            enc = self.encode(image, level)
            rec = self.decode(enc.payload, image.shape[:2])
            points.append(RDPoint(level, enc.bits, psnr_db(image, rec)))
        return points

    def encode_to_fit(self, image: np.ndarray, max_bits: int) -> Encoded | None:
        """Highest-rate level whose payload has at most ``max_bits`` bits.

        Bisection over :attr:`levels`, which assumes the size grows with the level
        (true up to rare one-level inversions, where a slightly lower level may be
        returned). ``None`` if even the lowest level does not fit.
        """
        image = check_image(image)
        lo, hi = 0, len(self.levels) - 1
        best = None
        while lo <= hi:
            mid = (lo + hi) // 2
            enc = self.encode(image, self.levels[mid])
            if enc.bits <= max_bits:
                best, lo = enc, mid + 1
            else:
                hi = mid - 1
        return best
