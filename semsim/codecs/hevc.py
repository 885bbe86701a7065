"""HEVC intra coding of one image (what BPG does), with x265 and FFmpeg via PyAV.

Pipeline
--------
1. RGB ``[0, 1]`` -> YCbCr 4:4:4, 8 bit, **BT.601 full range** (the JFIF matrix,
   :func:`rgb_to_yuv444`), edge-padded to a multiple of 8 pixels (x265's minimum
   CU size) and to at least 32 (x265 rejects smaller pictures with 32x32 CTUs);
   cropped again after decoding.
2. x265 (``libx265``) codes the picture as one IDR frame with the x265 parameters
   ``qp=<QP>:ctu=32:keyint=1:info=0`` (constant QP, 32x32 CTUs, no version SEI).
3. The Annex B output is split into NAL units. The VPS/SPS/PPS parameter sets depend
   only on (padded size, QP), so they are *not* sent: like BPG, which carries a few
   header bytes and regenerates the parameter sets, the payload is

   ``[QP: 1 byte][height: u16 BE][width: u16 BE]`` (:data:`HEADER_BYTES` = 5 bytes)
   followed by the slice NAL unit(s) of the picture (VCL NAL types 0-31, each with its
   2-byte NAL header and emulation-prevention bytes, without start codes; one slice per
   picture, x265's default).

   Counted bits = ``8 * (HEADER_BYTES + sum of slice NAL unit sizes)``.
4. The receiver reads the header, rebuilds the parameter sets for that (size, QP) with
   the same encoder configuration, prepends them to the slice and decodes with
   FFmpeg's native ``hevc`` decoder, then converts back to RGB.

Levels are QPs, listed from 51 (lowest rate) to 0 (highest rate).
"""

from __future__ import annotations

import fractions
import functools
from typing import ClassVar

import av
import numpy as np

from semsim.codecs.base import DecodeError, Encoded, ImageCodec, check_image

#: Bytes of the payload header (QP, height, width) counted on top of the slice data.
HEADER_BYTES = 5
#: x265 parameters besides ``qp``.
X265_PARAMS = "ctu=32:keyint=1:info=0:log-level=none:frame-threads=1:pools=1"
#: HEVC NAL unit types of coded slices (VCL NAL units) are ``< 32``.
_FIRST_NON_VCL_TYPE = 32
_START_CODE = b"\x00\x00\x00\x01"
_PAD = 8
_MIN_SIZE = 32

# BT.601 full-range (JFIF) RGB -> YCbCr matrix, on the 0..255 scale; offsets (0, 128, 128).
_RGB_TO_YUV = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
_YUV_OFFSET = np.array([0.0, 128.0, 128.0])


def rgb_to_yuv444(image: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` RGB in ``[0, 1]`` -> ``[3, H, W]`` ``uint8`` Y, Cb, Cr planes.

    BT.601 full range (JFIF): ``Y = 0.299 R + 0.587 G + 0.114 B`` etc. on the 0..255
    scale, chroma offset 128, rounded to the nearest integer.
    """
    yuv = np.asarray(image, np.float64) * 255.0 @ _RGB_TO_YUV.T + _YUV_OFFSET
    return np.clip(np.rint(yuv), 0, 255).astype(np.uint8).transpose(2, 0, 1)


def yuv444_to_rgb(planes: np.ndarray) -> np.ndarray:
    """``[3, H, W]`` ``uint8`` BT.601 full-range planes -> ``[H, W, 3]`` float32 RGB in [0, 1]."""
    yuv = planes.transpose(1, 2, 0).astype(np.float64) - _YUV_OFFSET
    rgb = yuv @ np.linalg.inv(_RGB_TO_YUV).T / 255.0
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def split_annexb(stream: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream (start codes removed)."""
    units = []
    for chunk in stream.split(b"\x00\x00\x01"):
        unit = chunk.rstrip(b"\x00")  # a 4-byte start code leaves a trailing zero
        if unit:
            units.append(unit)
    return units


def nal_type(unit: bytes) -> int:
    """HEVC ``nal_unit_type`` (6 bits after the forbidden-zero bit)."""
    return (unit[0] >> 1) & 0x3F


def x265_encode_annexb(planes: np.ndarray, qp: int) -> bytes:
    """Full Annex B stream (parameter sets + slice) of one ``[3, H, W]`` yuv444p picture."""
    _, height, width = planes.shape
    ctx = av.CodecContext.create("libx265", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv444p"
    ctx.time_base = fractions.Fraction(1, 25)
    ctx.options = {"x265-params": f"qp={qp}:{X265_PARAMS}"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(planes), format="yuv444p")
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    return b"".join(bytes(p) for p in packets)


@functools.lru_cache(maxsize=256)
def _parameter_sets(height: int, width: int, qp: int) -> bytes:
    """Annex B VPS/SPS/PPS of the encoder configuration (content independent)."""
    stream = x265_encode_annexb(np.full((3, height, width), 128, np.uint8), qp)
    units = [u for u in split_annexb(stream) if nal_type(u) >= _FIRST_NON_VCL_TYPE]
    return b"".join(_START_CODE + u for u in units)


def _padded(n: int) -> int:
    return max(_MIN_SIZE, -(-n // _PAD) * _PAD)


class HEVCCodec(ImageCodec):
    """HEVC intra (BPG-like) with x265; see the module docstring for the exact bit count."""

    name: ClassVar[str] = "hevc"
    levels = tuple(range(51, -1, -1))

    def encode(self, image: np.ndarray, level: int) -> Encoded:
        image = check_image(image)
        self.check_level(level)
        height, width = image.shape[:2]
        if not (0 < height < 2**16 and 0 < width < 2**16):
            raise ValueError(f"image size must be below 65536 pixels a side; got {image.shape}")
        pad = ((0, _padded(height) - height), (0, _padded(width) - width), (0, 0))
        planes = rgb_to_yuv444(np.pad(image, pad, mode="edge"))
        units = split_annexb(x265_encode_annexb(planes, level))
        slices = [u for u in units if nal_type(u) < _FIRST_NON_VCL_TYPE]
        if len(slices) != 1:
            raise RuntimeError(f"x265 produced {len(slices)} slice NAL units; expected 1")
        header = bytes([level]) + height.to_bytes(2, "big") + width.to_bytes(2, "big")
        return Encoded(header + slices[0], level)

    def decode(self, payload: bytes, shape: tuple[int, int]) -> np.ndarray:
        if len(payload) <= HEADER_BYTES:
            raise DecodeError(f"HEVC payload of {len(payload)} bytes has no slice data")
        qp = payload[0]
        height = int.from_bytes(payload[1:3], "big")
        width = int.from_bytes(payload[3:5], "big")
        if qp > 51 or (height, width) != tuple(shape):
            raise DecodeError(f"corrupt HEVC header: qp={qp}, size={height}x{width}")
        stream = _parameter_sets(_padded(height), _padded(width), qp)
        stream += _START_CODE + payload[HEADER_BYTES:]
        ctx = av.CodecContext.create("hevc", "r")
        try:
            frames = list(ctx.decode(av.Packet(stream))) + list(ctx.decode(None))
        except av.FFmpegError as err:
            raise DecodeError(f"HEVC decoding failed: {err}") from err
        if len(frames) != 1 or frames[0].format.name != "yuv444p":
            raise DecodeError(f"HEVC decoding gave {len(frames)} frame(s), expected 1 yuv444p")
        planes = frames[0].to_ndarray()
        if planes.shape != (3, _padded(height), _padded(width)):
            raise DecodeError(f"HEVC decoded picture has shape {planes.shape}")
        return yuv444_to_rgb(planes[:, :height, :width])
