"""The constellation MIJSCC sends, analog vs 8 bit vs 4 bit, for ``docs/mijscc.md``.

Builds three ``mijscc`` systems (seed 0, the quick profile's small networks, *untrained*:
the point is the structure of the sent symbols, which quantization fixes whatever the
weights; CR 1/3, i.e. 512 symbols per image) on a SISO AWGN link and plots the complex
symbols one digits test image puts on the channel (unit mean energy per symbol; the grid
is scaled per image, so one image shows it best) into
``docs/img/mijscc_constellation.png``.

    python docs/scripts/mijscc_constellation.py [--out docs/img]

Seconds on 2 CPU cores; a rerun gives the same figure.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from semsim.data.labelled import load_digits_rgb  # noqa: E402
from semsim.seeding import set_seed  # noqa: E402
from semsim.systems.base import CSISpec, LinkSpec  # noqa: E402
from semsim.systems.mijscc import MIJSCCParams, build_mijscc  # noqa: E402
from semsim.systems.mijscc_plots import plot_constellation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "img")
    args = parser.parse_args()
    link = LinkSpec(num_rx_ant=1, antennas_per_user=1, fading="none",
                    csi=CSISpec(mode="perfect"), detector="zf")
    _, (test, _) = load_digits_rgb(32)
    images = test[:1].astype("float32") / 255
    symbols = {}
    for label, bits in (("analog", None), ("8 bit", 8), ("4 bit", 4)):
        set_seed(0)
        system = build_mijscc(MIJSCCParams(cr=1 / 3, filters=(16, 32, 32), bits=bits), link, (32, 32), 0)
        symbols[label] = system.sent_symbols(images, 10.0)
    args.out.mkdir(parents=True, exist_ok=True)
    print(plot_constellation(symbols, args.out / "mijscc_constellation.png"))


if __name__ == "__main__":
    main()
