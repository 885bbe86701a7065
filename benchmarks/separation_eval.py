"""Evaluation speed of the separation baseline: serial vs a thread pool over images.

Usage::

    python benchmarks/separation_eval.py [--images 48] [--size 64] [--workers 2] [--snr 30]

Data: 64x64 (``--size``) crops of the Kodak images (``../shared/data/kodak`` relative to
the repository root; without it, skimage's bundled images, with a note). The system is
HEVC intra + 5G LDPC + 16-QAM at CR 0.2 over a 2x2 Rayleigh block-fading link (perfect
CSI), i.e. what ``semsim run`` calls per evaluation batch. For each worker count a fresh
system (empty codec memo) first transmits a warm-up batch of other crops (graph
tracing), then the timed batches at ``--snr`` dB; the table gives images/s and checks
that the reconstructions equal the serial ones. A second table times the codec alone
(HEVC ``encode_to_fit`` + ``decode`` per image, serial vs the thread pool): whether
PyAV releases the GIL in its codec calls.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from semsim.seeding import set_seed
from semsim.systems.base import CSISpec, LinkSpec, TrainSpec
from semsim.systems.separation import SeparationSystem

KODAK = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kodak"
LINK = LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(mode="perfect"))


def crops(count: int, size: int) -> np.ndarray:
    """``count`` crops ``[count, size, size, 3]`` float32 in [0, 1], 4 per image."""
    if KODAK.is_dir():
        files = sorted(KODAK.glob("*.png"))
        pictures = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    else:
        import skimage.data

        print("note: Kodak not found; using skimage's bundled images")
        pictures = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
    out = []
    for i in range(count):
        picture = pictures[(i // 4) % len(pictures)]
        y = (i % 2) * (picture.shape[0] - size) // 2 + 40
        x = ((i // 2) % 2) * (picture.shape[1] - size) // 2 + 40
        out.append(picture[y : y + size, x : x + size])
    return np.stack(out).astype(np.float32) / 255.0


def run(workers: int, warmup: np.ndarray, images: np.ndarray, batch: int, snr: float):
    system = SeparationSystem(LINK, code="ldpc5g", modulation="16qam", cr=0.2, workers=workers)
    system.prepare(tf.data.Dataset.from_tensor_slices(warmup).batch(batch).repeat(),
                   TrainSpec(steps_per_epoch=1), None, False)
    rng = np.random.default_rng(0)
    h = ((rng.normal(size=(len(images), 2, 2)) + 1j * rng.normal(size=(len(images), 2, 2)))
         / np.sqrt(2)).astype(np.complex64)
    set_seed(1)
    system.transmit(warmup, snr, h=h[: len(warmup)])
    outs = []
    start = time.perf_counter()
    for b in range(0, len(images), batch):
        set_seed(2 + b)
        outs.append(system.transmit(images[b : b + batch], snr, h=h[b : b + batch]).images_hat)
    return len(images) / (time.perf_counter() - start), np.concatenate(outs)


def codec_rate(images: np.ndarray, workers: int, max_bits: int) -> float:
    """Images/s of HEVC encode_to_fit + decode on ``workers`` threads."""
    from semsim.codecs import make_codec

    codec = make_codec("hevc")

    def one(image):
        enc = codec.encode_to_fit(image, max_bits)
        return None if enc is None else codec.decode(enc.payload, image.shape[:2])

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, images))
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="threads of the parallel row")
    parser.add_argument("--snr", type=float, default=30.0)
    args = parser.parse_args()
    data = crops(args.images + args.batch, args.size)
    warmup, images = data[: args.batch], data[args.batch :]
    serial_rate, serial = run(1, warmup, images, args.batch, args.snr)
    pool_rate, pooled = run(args.workers, warmup, images, args.batch, args.snr)
    print(f"{args.images} crops {args.size}x{args.size}, batch {args.batch}, {args.snr:g} dB")
    print(f"{'workers':>8} {'images/s':>9}")
    print(f"{1:>8} {serial_rate:>9.2f}")
    print(f"{args.workers:>8} {pool_rate:>9.2f}   speed-up {pool_rate / serial_rate:.2f}x, "
          f"identical to serial: {bool(np.array_equal(serial, pooled))}")
    budget = int(0.2 * 3 * args.size**2)  # rate-1/2 16-QAM at CR 0.2: CR * 3HW bits
    rates = {w: codec_rate(images, w, budget) for w in (1, args.workers)}
    print(f"codec only (HEVC encode_to_fit + decode, {budget} bits):")
    for w, rate in rates.items():
        print(f"{w:>8} {rate:>9.2f}" + (f"   speed-up {rate / rates[1]:.2f}x" if w > 1 else ""))


if __name__ == "__main__":
    main()
