"""JPEG and JPEG 2000 through Pillow (libjpeg and OpenJPEG).

JPEG (:class:`JPEGCodec`)
    Baseline JPEG, Pillow's defaults (YCbCr BT.601 full range as JFIF defines it,
    4:2:0 chroma subsampling, standard Huffman tables), quality 1..100. The
    quantization and Huffman tables are a function of the quality alone, so, as with
    the HEVC parameter sets, they are not sent: the payload is

    ``[quality: 1 byte]`` + the *abbreviated* JPEG stream (Pillow ``streamtype=2``:
    SOI, SOF0, SOS, entropy-coded data, EOI) with its JFIF APP0 segment removed.

    Counted bits = ``8 * len(payload)``. The receiver rebuilds the tables for that
    quality (a tables-only stream, ``streamtype=1``), inserts them after SOI and
    decodes with Pillow; the result is bit-exact with decoding the ordinary JPEG file.

JPEG 2000 (:class:`JPEG2000Codec`)
    Raw codestream (no JP2 boxes), irreversible 9/7 wavelet with the colour transform,
    OpenJPEG's distortion-driven rate allocation with one quality layer at a target
    PSNR (``quality_mode="dB"``); levels are those target PSNRs in dB, 15..70. The
    payload is the whole codestream minus its COM (comment) marker segments, which
    carry only the encoder's name. The main header (SIZ, COD, QCD, ~100 bytes) is
    counted: JPEG 2000 has no table-free mode.
"""

from __future__ import annotations

import functools
import io
from typing import ClassVar

import numpy as np
from PIL import Image

from semsim.codecs.base import DecodeError, Encoded, ImageCodec, check_image, to_uint8

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
_APP0 = b"\xff\xe0"
_J2K_COM = b"\xff\x64"
_J2K_SOT = b"\xff\x90"


def _image_from_bytes(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Decode ``data`` with Pillow into a float32 RGB image of ``shape`` or raise."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = np.asarray(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's decoding errors
        raise DecodeError(f"decoding failed: {err}") from err
    if rgb.shape[:2] != tuple(shape):
        raise DecodeError(f"decoded size {rgb.shape[:2]} differs from {tuple(shape)}")
    return (rgb.astype(np.float32) / 255.0).astype(np.float32)


def _segments_after_soi(data: bytes):
    """Yield ``(marker, segment_bytes)`` of the marker segments of a JPEG or J2K header.

    Stops at the first marker without a length field or with an unknown layout
    (start of entropy-coded data), yielding the rest as one ``(None, tail)``.
    """
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos : pos + 2]
        if marker in (b"\xff\xda", _J2K_SOT):  # SOS / SOT: entropy data or tiles follow
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        yield marker, data[pos : pos + 2 + length]
        pos += 2 + length
    yield None, data[pos:]


class JPEGCodec(ImageCodec):
    """Baseline JPEG (Pillow); see the module docstring for what is counted."""

    name: ClassVar[str] = "jpeg"
    levels = tuple(range(1, 101))

    def encode(self, image: np.ndarray, level: int) -> Encoded:
        image = check_image(image)
        self.check_level(level)
        buf = io.BytesIO()
        Image.fromarray(to_uint8(image)).save(buf, "JPEG", quality=level, streamtype=2)
        body = b"".join(seg for m, seg in _segments_after_soi(buf.getvalue()) if m != _APP0)
        return Encoded(bytes([level]) + _SOI + body, level)

    def decode(self, payload: bytes, shape: tuple[int, int]) -> np.ndarray:
        if len(payload) < 3 or payload[0] not in self.levels or payload[1:3] != _SOI:
            raise DecodeError("corrupt JPEG payload header")
        return _image_from_bytes(_SOI + _jpeg_tables(payload[0]) + payload[3:], shape)


@functools.lru_cache(maxsize=128)
def _jpeg_tables(quality: int) -> bytes:
    """DQT + DHT segments Pillow/libjpeg writes for ``quality`` (SOI/EOI stripped)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=quality, streamtype=1)
    tables = buf.getvalue()
    if not (tables.startswith(_SOI) and tables.endswith(_EOI)):
        raise RuntimeError("unexpected tables-only JPEG stream from Pillow")
    return tables[2:-2]


class JPEG2000Codec(ImageCodec):
    """JPEG 2000 codestream (OpenJPEG via Pillow); levels are target PSNRs in dB."""

    name: ClassVar[str] = "jpeg2000"
    levels = tuple(range(15, 71))

    def encode(self, image: np.ndarray, level: int) -> Encoded:
        image = check_image(image)
        self.check_level(level)
        buf = io.BytesIO()
        Image.fromarray(to_uint8(image)).save(
            buf, "JPEG2000", quality_mode="dB", quality_layers=[level], irreversible=True,
            no_jp2=True,
        )  # fmt: skip
        data = buf.getvalue()
        body = b"".join(seg for m, seg in _segments_after_soi(data) if m != _J2K_COM)
        return Encoded(data[:2] + body, level)

    def decode(self, payload: bytes, shape: tuple[int, int]) -> np.ndarray:
        if not payload.startswith(b"\xff\x4f\xff\x51"):  # SOC, SIZ
            raise DecodeError("corrupt JPEG 2000 codestream header")
        return _image_from_bytes(payload, shape)
