"""Validation plots of the physical layer for ``docs/phy.md``.

Writes into ``docs/img/``:

* ``ber_vs_theory.png``: Monte-Carlo uncoded BER of QPSK and 16-QAM (Gray) over AWGN and
  SISO Rayleigh fading (perfect CSI) from :class:`semsim.phy.DigitalLink`, against
  the exact closed forms of :mod:`semsim.phy.theory`;
* ``ls_mse_vs_pilots.png``: the mean squared error of the LS channel estimate
  (:class:`semsim.phy.PilotLSEstimator`, 4x4 Rayleigh) against the pilot length ``Np``,
  against ``no / (Np P)``.

    python docs/scripts/phy_validation.py [--bits 200000] [--out docs/img]

Seeded (``--seed``): a rerun gives the same figures. About a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from semsim.phy import DigitalLink, PilotLSEstimator, RayleighMIMOChannel  # noqa: E402
from semsim.phy.ber import simulate_ber  # noqa: E402
from semsim.phy.theory import ber_awgn, ber_rayleigh  # noqa: E402
from semsim.seeding import set_seed  # noqa: E402

IMG_DIR = Path(__file__).resolve().parents[1] / "img"
SNR_AWGN_DB = np.arange(0.0, 17.0, 2.0)
SNR_RAYLEIGH_DB = np.arange(0.0, 31.0, 5.0)
PILOTS = (4, 8, 16, 32, 64)
LS_SNR_DB = (0.0, 10.0)


def ber_figure(num_bits: int, seed: int, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, fading, snrs, theory, title in (
            (axes[0], "none", SNR_AWGN_DB, ber_awgn, "AWGN"),
            (axes[1], "fast", SNR_RAYLEIGH_DB, ber_rayleigh, "SISO Rayleigh (fast), perfect CSI")):
        fine = np.linspace(snrs[0], snrs[-1], 200)
        for modulation, color in (("qpsk", "C0"), ("16qam", "C1")):
            link = DigitalLink(modulation, fading=fading)
            result = simulate_ber(link, snrs, num_bits, seed=seed)
            ber = np.array(result.ber)
            shown = ber > 0
            ax.semilogy(snrs[shown], ber[shown], "o", color=color,
                        label=f"{modulation}, simulated")
            ax.semilogy(fine, theory(modulation, fine), "-", color=color,
                        label=f"{modulation}, closed form")
        ax.set_title(title)
        ax.set_xlabel("Es/N0 per receive antenna [dB]")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("bit error rate")
    axes[0].set_ylim(1e-5, 0.5)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Uncoded Gray QAM: semsim.phy vs semsim.phy.theory ({num_bits} bits/point)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def ls_figure(seed: int, path: Path, batch: int = 4000, nt: int = 4, nr: int = 4) -> Path:
    set_seed(seed)
    channel = RayleighMIMOChannel(nr, nt)
    h = channel.sample_channel(batch)
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    for snr_db, color in zip(LS_SNR_DB, ("C0", "C1"), strict=True):
        no = channel.noise_variance(h, tf.fill([batch], snr_db))
        mse = []
        for pilots in PILOTS:
            h_hat, _ = PilotLSEstimator(nt, pilots)(h, no)
            mse.append(float(tf.reduce_mean(tf.abs(h_hat - h) ** 2)))
        theory = float(tf.reduce_mean(no)) / np.array(PILOTS, np.float64)
        ax.loglog(PILOTS, mse, "o", color=color, label=f"{snr_db:g} dB, simulated")
        ax.loglog(PILOTS, theory, "-", color=color, label=f"{snr_db:g} dB, no / Np")
    ax.set_xticks(PILOTS, [str(p) for p in PILOTS])
    ax.minorticks_off()
    ax.set_xlabel("pilot length Np (channel uses)")
    ax.set_ylabel("MSE per entry of H_hat")
    ax.set_title(f"LS estimation, {nr}x{nt} Rayleigh, unit pilot power", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=200_000, help="bits per BER point")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=IMG_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in (ber_figure(args.bits, args.seed, args.out / "ber_vs_theory.png"),
                 ls_figure(args.seed, args.out / "ls_mse_vs_pilots.png")):
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
