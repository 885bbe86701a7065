"""Classic codecs: bit counts parsed independently, decodes against independent paths."""

import fractions
import io

import av
import numpy as np
import pytest
import skimage.data
from PIL import Image

from semsim.codecs import DecodeError, HEVCCodec, JPEG2000Codec, JPEGCodec, make_codec, psnr_db
from semsim.codecs.hevc import HEADER_BYTES, X265_PARAMS, rgb_to_yuv444, yuv444_to_rgb


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A textured 32x32 crop of skimage's bundled astronaut image, float32 in [0, 1]."""
    return (skimage.data.astronaut()[180:212, 220:252] / 255.0).astype(np.float32)


def _nal_units(stream: bytes) -> list[bytes]:
    """Annex B parser written independently of semsim: scan for 00 00 01 start codes."""
    starts = [i + 3 for i in range(len(stream) - 2) if stream[i : i + 3] == b"\x00\x00\x01"]
    ends = [s - 3 - (stream[s - 4] == 0 if s >= 4 else 0) for s in starts[1:]] + [len(stream)]
    return [stream[s:e] for s, e in zip(starts, ends, strict=True)]


def _x265_stream(planes: np.ndarray, qp: int) -> bytes:
    ctx = av.CodecContext.create("libx265", "w")
    ctx.width, ctx.height, ctx.pix_fmt = planes.shape[2], planes.shape[1], "yuv444p"
    ctx.time_base = fractions.Fraction(1, 25)
    ctx.options = {"x265-params": f"qp={qp}:{X265_PARAMS}"}
    frame = av.VideoFrame.from_ndarray(planes, format="yuv444p")
    return b"".join(bytes(p) for p in list(ctx.encode(frame)) + list(ctx.encode(None)))


def test_yuv_matches_pillow_bt601_full_range(image):
    ours = rgb_to_yuv444(image).transpose(1, 2, 0).astype(int)
    pil = np.asarray(Image.fromarray((image * 255).round().astype(np.uint8)).convert("YCbCr"))
    # Pillow's fixed-point JFIF conversion rounds differently by at most one code value.
    assert np.abs(ours - pil.astype(int)).max() <= 1
    # 8-bit round trip error is bounded by the quantisation (|inverse matrix| rows <= 2.8 LSB).
    back = yuv444_to_rgb(rgb_to_yuv444(image))
    assert np.abs(back - image).max() < 3.0 / 255


@pytest.mark.parametrize("qp", [20, 37])
def test_hevc_bits_are_slice_nal_units_plus_header(image, qp):
    stream = _x265_stream(rgb_to_yuv444(image), qp)
    units = _nal_units(stream)
    types = [(u[0] >> 1) & 0x3F for u in units]
    assert {32, 33, 34} <= set(types), "VPS, SPS and PPS present in the full stream"
    slice_bytes = sum(len(u) for u, t in zip(units, types, strict=True) if t < 32)
    param_bytes = sum(len(u) for u, t in zip(units, types, strict=True) if t in (32, 33, 34))
    enc = HEVCCodec().encode(image, qp)
    assert enc.bits == 8 * (slice_bytes + HEADER_BYTES)
    assert param_bytes > 40  # the parameter sets that are not counted are not negligible
    # The decoded picture equals FFmpeg's decode of the complete Annex B stream (container path).
    with av.open(io.BytesIO(stream), format="hevc") as container:
        full = container.decode(video=0).__next__().to_ndarray()
    ref = yuv444_to_rgb(full)
    ours = HEVCCodec().decode(enc.payload, image.shape[:2])
    np.testing.assert_array_equal(ours, ref)
    assert psnr_db(image, ours) == pytest.approx(psnr_db(image, ref), abs=1e-9)


def test_hevc_odd_size_is_padded_and_cropped():
    rng = np.random.default_rng(0)
    img = np.clip(np.cumsum(rng.normal(0, 0.05, (21, 27, 3)), axis=1) + 0.5, 0, 1)
    codec = HEVCCodec()
    rec = codec.decode(codec.encode(img, 10).payload, (21, 27))
    assert rec.shape == (21, 27, 3)
    assert psnr_db(img, rec) > 40.0  # QP 10 is near lossless on a smooth image


def test_jpeg_payload_is_table_free_stream_and_decodes_like_pillow(image):
    q = 60
    buf = io.BytesIO()
    Image.fromarray((image * 255).round().astype(np.uint8)).save(buf, "JPEG", quality=q)
    full = buf.getvalue()
    # Independent parse of the full JFIF file: sum the DQT (DB), DHT (C4) and APP0 (E0) segments.
    pos, skipped = 2, 0
    while full[pos + 1] != 0xDA:
        length = int.from_bytes(full[pos + 2 : pos + 4], "big")
        if full[pos + 1] in (0xDB, 0xC4, 0xE0):
            skipped += 2 + length
        pos += 2 + length
    enc = JPEGCodec().encode(image, q)
    assert enc.bits == 8 * (len(full) - skipped + 1)  # + 1 quality byte
    ours = JPEGCodec().decode(enc.payload, image.shape[:2])
    ref = np.asarray(Image.open(io.BytesIO(full)).convert("RGB")) / 255.0
    np.testing.assert_allclose(ours, ref, atol=1e-7)


def test_jpeg2000_payload_drops_only_comments(image):
    level = 35
    buf = io.BytesIO()
    Image.fromarray((image * 255).round().astype(np.uint8)).save(
        buf, "JPEG2000", quality_mode="dB", quality_layers=[level], irreversible=True, no_jp2=True
    )
    full = buf.getvalue()
    com = full.find(b"\xff\x64")
    com_len = 2 + int.from_bytes(full[com + 2 : com + 4], "big") if com >= 0 else 0
    enc = JPEG2000Codec().encode(image, level)
    assert enc.bits == 8 * (len(full) - com_len)
    ours = JPEG2000Codec().decode(enc.payload, image.shape[:2])
    ref = np.asarray(Image.open(io.BytesIO(full)).convert("RGB")) / 255.0
    np.testing.assert_allclose(ours, ref, atol=1e-7)


@pytest.mark.parametrize("name", ["hevc", "jpeg", "jpeg2000"])
def test_bits_monotone_and_fit(image, name):
    codec = make_codec(name)
    levels = codec.levels[:: max(1, len(codec.levels) // 8)]
    encs = [codec.encode(image, lv) for lv in levels]
    bits = [e.bits for e in encs]
    assert bits == sorted(bits) and bits[-1] > 2 * bits[0], bits
    psnrs = [psnr_db(image, codec.decode(e.payload, image.shape[:2])) for e in encs]
    assert psnrs[-1] > psnrs[0] + 8.0, psnrs
    budget = (bits[0] + bits[-1]) // 2
    fit = codec.encode_to_fit(image, budget)
    assert fit is not None and fit.bits <= budget
    index = codec.levels.index(fit.level)
    assert codec.encode(image, codec.levels[index + 1]).bits > budget
    assert codec.encode_to_fit(image, codec.encode(image, codec.levels[0]).bits - 1) is None


@pytest.mark.parametrize("name", ["hevc", "jpeg", "jpeg2000"])
def test_corrupt_payload_raises(image, name):
    codec = make_codec(name)
    payload = codec.encode(image, codec.levels[len(codec.levels) // 2]).payload
    with pytest.raises(DecodeError):
        codec.decode(b"\x00\x01" + payload[2:], image.shape[:2])
    with pytest.raises(DecodeError):
        codec.decode(payload, (image.shape[0] + 8, image.shape[1]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="codec must be one of"):
        make_codec("bpg")
    with pytest.raises(ValueError, match="level must be one of"):
        HEVCCodec().encode(np.zeros((8, 8, 3)), 52)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        JPEGCodec().encode(np.full((8, 8, 3), 2.0), 50)
