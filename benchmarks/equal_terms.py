"""What sharing one physical layer moves: Deep JSCC (untrained and briefly trained) and
HEVC + DVB-S2 + QAM separation at Deep JSCC's CR on one 2x2 Rayleigh block-fading link
(LS CSI, LMMSE), on the same test patches and channel realizations.

The script uses only the system API that has not changed (registry factories, ``prepare``,
``transmit``), so it runs on a tree from before the equal-terms changes as well; point
``PYTHONPATH`` at each tree and compare the two printed tables::

    PYTHONPATH=/path/to/tree TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/equal_terms.py

Printed per system and SNR: the mean per-image PSNR (8-bit reconstructions), the PSNR of
the mean MSE, the mean CR, and for separation the share of failed images.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from semsim.data.builtin import load_builtin, patches
from semsim.phy.spec import CSISpec, LinkSpec
from semsim.seeding import set_seed
from semsim.systems.base import TrainSpec
from semsim.systems.registry import get_system_type


def _psnrs(images: np.ndarray, images_hat: np.ndarray) -> tuple[float, float]:
    x = np.round(images * 255.0)
    y = np.round(np.clip(images_hat, 0, 1) * 255.0)
    mse = np.mean((x - y) ** 2, axis=(1, 2, 3))
    per_image = 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))
    return float(np.mean(per_image)), float(10 * np.log10(255.0**2 / np.mean(mse)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="Deep JSCC training steps")
    parser.add_argument("--test-images", type=int, default=128)
    parser.add_argument("--snrs", type=float, nargs="+", default=[0.0, 10.0, 20.0])
    parser.add_argument("--snr-definition", choices=["average", "realized"], default=None,
                        help="the link's SNR definition (trees with link.snr only; default: "
                             "the tree's default)")
    args = parser.parse_args()

    definition = {} if args.snr_definition is None else {"snr": args.snr_definition}
    link = LinkSpec(num_rx_ant=2, antennas_per_user=2, fading="block",
                    csi=CSISpec(mode="ls", pilots=2), detector="lmmse", **definition)
    photographs, test, _ = load_builtin(32)
    # Fixed 32x32 tiles of the training photographs (the runner draws random crops; a fixed
    # set keeps this script on the API both trees share).
    train = np.concatenate([patches(p, 32) for p in photographs]).astype(np.float32) / 255.0
    test = test.astype(np.float32) / 255.0
    test = test[: args.test_images]
    stream = (tf.data.Dataset.from_tensor_slices(train).shuffle(4096, seed=0)
              .repeat().batch(32))
    rng = np.random.default_rng(7)
    channels = {snr: ((rng.normal(size=(len(test), 2, 2)) + 1j * rng.normal(size=(len(test), 2, 2)))
                      / np.sqrt(2)).astype(np.complex64) for snr in args.snrs}

    deep = get_system_type("deepjscc")
    params = deep.params(cr=1 / 6, filters=(16, 32, 32, 32))
    set_seed(0)
    untrained = deep.factory(params, link, (32, 32), 0)
    set_seed(0)
    trained = deep.factory(params, link, (32, 32), 0)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        trained.prepare(stream, TrainSpec(steps=args.steps, steps_per_epoch=args.steps,
                                          batch_size=32, learning_rate=1e-3, seed=0,
                                          jit_compile=False), Path(work), False)
    print(f"Deep JSCC trained {args.steps} steps in {time.perf_counter() - start:.0f} s")
    sep_type = get_system_type("separation")
    separation = sep_type.factory(sep_type.params(codec="hevc", code="dvbs2", frame="short"),
                                  link, (32, 32), 0)
    separation.prepare(stream, TrainSpec(steps_per_epoch=20), None, False)

    print(f"{'system':<22}{'SNR':>5}{'PSNR img':>10}{'PSNR mse':>10}{'CR':>8}{'failed':>8}")
    for name, system in (("deepjscc untrained", untrained), (f"deepjscc {args.steps} steps", trained),
                         ("separation", separation)):
        for snr in args.snrs:
            set_seed(1)
            result = system.transmit(test, snr, h=channels[snr], target_cr=1 / 6)
            per_image, of_mean = _psnrs(test, result.images_hat)
            failed = np.mean(result.extras.get("failed", np.zeros(1)))
            print(f"{name:<22}{snr:>5.0f}{per_image:>10.2f}{of_mean:>10.2f}"
                  f"{np.mean(result.cr):>8.4f}{failed:>8.2f}")


if __name__ == "__main__":
    main()
