"""Rate-distortion of the classic codecs and of the separation chain on 32x32 crops.

Usage::

    python benchmarks/separation_rd.py [--crops 16] [--seed 0] [--thresholds]

Data: Kodak (``../shared/data/kodak`` relative to the repository root): kodim19-24 give
the test crops, kodim01-18 the fallback mean; without it, skimage's bundled images are
used (a note is printed). ``--crops`` 32x32 crops per test image, on a regular grid.

Tables printed:

1. No channel: PSNR (dB) of HEVC intra, JPEG 2000 and JPEG at the bit budget that a CR
   buys with rate-1/2 coded 16-QAM (2 information bits per complex symbol, i.e.
   ``bits = CR * 3HW``); an image that does not fit at the lowest quality counts as the
   fallback (training-set mean colour).
2. Separation over 2x2 Rayleigh block fading (perfect CSI, LMMSE) at CR 0.2, 0..20 dB:
   HEVC + DVB-S2 short frames (codewords across images), HEVC + 5G LDPC (one codeword per
   image), both with automatic QAM choice, and the capacity bound; PSNR, failure rate and
   bits per QAM symbol. All systems see the same channel realizations.
3. With ``--thresholds``: codeword error rate vs SNR per QAM order for both codes (the
   measurement behind ``semsim.systems.separation.REQUIRED_SNR_DB``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from semsim.codecs import make_codec, psnr_db
from semsim.phy.qam import bits_per_symbol
from semsim.seeding import set_seed
from semsim.systems.base import CSISpec, LinkSpec
from semsim.systems.capacity_bound import CapacityBoundSystem
from semsim.systems.codec_common import channel_uses_per_image
from semsim.systems.separation import AUTO_MODULATIONS, SeparationSystem

KODAK = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kodak"
SIZE = 32


def _crops(image: np.ndarray, per_image: int) -> list[np.ndarray]:
    side = int(np.ceil(np.sqrt(per_image)))
    ys = np.linspace(0, image.shape[0] - SIZE, side).astype(int)
    xs = np.linspace(0, image.shape[1] - SIZE, side).astype(int)
    crops = [image[y : y + SIZE, x : x + SIZE] for y in ys for x in xs]
    return crops[:per_image]


def load_data(per_image: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Test crops ``[N, 32, 32, 3]``, the fallback mean ``[3]`` and a source label."""
    if KODAK.is_dir():
        load = lambda i: np.asarray(Image.open(KODAK / f"kodim{i:02d}.png").convert("RGB"))
        test = [c for i in range(19, 25) for c in _crops(load(i) / 255.0, per_image)]
        mean = np.mean([load(i).reshape(-1, 3).mean(0) / 255.0 for i in range(1, 19)], axis=0)
        source = "Kodak kodim19-24"
    else:
        import skimage.data

        print("note: ../shared/data/kodak not found; using skimage's bundled images")
        pics = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
        test = [c for p in pics for c in _crops(p / 255.0, per_image)]
        mean = np.mean([p.reshape(-1, 3).mean(0) / 255.0 for p in pics], axis=0)
        source = "skimage astronaut/chelsea/coffee"
    return np.stack(test).astype(np.float32), mean.astype(np.float32), source


def mean_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([psnr_db(x, y) for x, y in zip(a, b, strict=True)]))


def codec_table(images: np.ndarray, fallback: np.ndarray) -> None:
    crs = (0.05, 0.1, 0.2, 0.3, 0.5)
    names = ("hevc", "jpeg2000", "jpeg")
    print("\nNo channel: PSNR (dB) at bits = CR * 3HW (rate-1/2 16-QAM); '(k fail)' = images")
    print("that did not fit at the lowest quality (fallback)")
    print(f"{'CR':>6} {'bpp':>6} " + " ".join(f"{n:>16}" for n in names))
    for cr in crs:
        budget = int(cr * 3 * SIZE * SIZE)
        cells = []
        for name in names:
            codec = make_codec(name)
            recs, fails = [], 0
            for image in images:
                enc = codec.encode_to_fit(image, budget)
                if enc is None:
                    fails += 1
                    recs.append(np.broadcast_to(fallback, image.shape))
                else:
                    recs.append(codec.decode(enc.payload, image.shape[:2]))
            cells.append(f"{mean_psnr(images, np.stack(recs)):7.2f} ({fails:2d} fail)")
        print(f"{cr:6.2f} {budget / SIZE**2:6.2f} " + " ".join(f"{c:>16}" for c in cells))


def channel_table(images: np.ndarray, fallback: np.ndarray, cr: float = 0.2) -> None:
    link = LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(mode="perfect"))
    systems = {
        "HEVC+DVB-S2(short)": SeparationSystem(link, code="dvbs2", frame="short"),
        "HEVC+5G-LDPC": SeparationSystem(link, code="ldpc5g"),
        "capacity bound": CapacityBoundSystem(link),
    }
    for system in systems.values():
        system.fallback = fallback
    rng = np.random.default_rng(0)
    print(f"\nSeparation over 2x2 Rayleigh block fading, perfect CSI, LMMSE, CR target {cr}")
    print("PSNR dB / failure rate / bits per QAM symbol (same channel realizations)")
    print(f"{'SNR':>4} " + " ".join(f"{n:>24}" for n in systems) + "   CR used")
    for snr in (0.0, 5.0, 10.0, 15.0, 20.0):
        h = (rng.normal(size=(len(images), 2, 2, 2)) @ [1, 1j]) / np.sqrt(2)
        cells, crs = [], []
        for system in systems.values():
            result = system.transmit(images, snr, h=h.astype(np.complex64), target_cr=cr)
            m = result.extras.get("bits_per_symbol", np.array([np.nan]))[0]
            cells.append(
                f"{mean_psnr(images, result.images_hat):6.2f} / "
                f"{result.extras['failed'].mean():4.2f} / {m:3.0f}"
            )
            crs.append(float(result.cr[0]))
        print(f"{snr:4.0f} " + " ".join(f"{c:>24}" for c in cells) + f"   {max(crs):.4f}")


def threshold_table(num_images: int = 200, cr: float = 0.2) -> None:
    link = LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(mode="perfect"))
    uses = channel_uses_per_image(cr, (SIZE, SIZE), 2)
    rng = np.random.default_rng(0)
    print(f"\nCodeword error rate vs SNR (dB), {num_images} images of CR {cr}, 2x2, perfect CSI")
    for code, frame in (("dvbs2", "short"), ("ldpc5g", "normal")):
        system = SeparationSystem(link, code=code, frame=frame)
        for modulation in AUTO_MODULATIONS:
            m = bits_per_symbol(modulation)
            dlink = system.digital_link(modulation, uses * 2 * m)
            count = num_images * uses * 2 * m // dlink.n
            row = []
            for snr in range(0, 32, 2):
                info = rng.integers(0, 2, (count, dlink.k)).astype(np.uint8)
                out, _ = system._send(dlink, info, snr, None, num_images, uses)
                cer = float(np.mean(np.any(out != info, axis=1)))
                row.append(f"{snr}:{cer:.2f}")
                if cer == 0.0:
                    break
            print(f"{code:>6} {modulation:>6} ({count:3d} codewords) " + " ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crops", type=int, default=16, help="32x32 crops per test image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thresholds", action="store_true", help="also measure CER tables")
    args = parser.parse_args()
    set_seed(args.seed)
    images, fallback, source = load_data(args.crops)
    print(f"{len(images)} test crops of {SIZE}x{SIZE} from {source}")
    start = time.monotonic()
    codec_table(images, fallback)
    print(f"[{time.monotonic() - start:.0f} s]")
    channel_table(images, fallback)
    print(f"[{time.monotonic() - start:.0f} s]")
    if args.thresholds:
        threshold_table()
        print(f"[{time.monotonic() - start:.0f} s]")


if __name__ == "__main__":
    main()
