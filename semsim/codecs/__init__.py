"""Classic image codecs (HEVC intra, JPEG, JPEG 2000) for the separation baselines."""

from semsim.codecs.base import DecodeError, Encoded, ImageCodec, RDPoint, psnr_db
from semsim.codecs.hevc import HEVCCodec
from semsim.codecs.jpeg import JPEG2000Codec, JPEGCodec

#: Codec classes by the name used in scenario params.
CODECS: dict[str, type[ImageCodec]] = {
    "hevc": HEVCCodec,
    "jpeg": JPEGCodec,
    "jpeg2000": JPEG2000Codec,
}


def make_codec(name: str) -> ImageCodec:
    """Codec instance by name (``"hevc"``, ``"jpeg"`` or ``"jpeg2000"``)."""
    if name not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}; got {name!r}")
    return CODECS[name]()


__all__ = [
    "CODECS",
    "DecodeError",
    "Encoded",
    "HEVCCodec",
    "ImageCodec",
    "JPEG2000Codec",
    "JPEGCodec",
    "RDPoint",
    "make_codec",
    "psnr_db",
]
