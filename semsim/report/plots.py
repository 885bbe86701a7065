"""PNG figures of a run (matplotlib, headless ``Agg`` backend).

:func:`plot_results` draws, from a :class:`~semsim.report.results.ResultsFile`:
the headline PSNR vs SNR, PSNR vs CR (rate-distortion, points labelled with their SNR),
SSIM and MS-SSIM vs SNR (quality figures with their 95 % confidence intervals as error
bars; under-trained systems are marked in the legend), CR vs SNR and, when systems
report extras (policy decisions such as kept maps/symbols,
side-info bits, failure rate), one panel per extra vs SNR. :func:`plot_samples`
draws original vs reconstructed images of one system at a few SNRs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from semsim.atomic import atomic_path  # noqa: E402
from semsim.report.results import ResultsFile, SystemResults  # noqa: E402

DPI = 120
#: Quality figures drawn with error bars: value key -> 95 % half-width key.
ERROR_BARS = {"psnr_db": "psnr_ci95_db", "ssim": "ssim_ci95", "ms_ssim": "ms_ssim_ci95"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format=path.suffix.lstrip("."))
    plt.close(fig)
    return path


def _label(name: str, system: SystemResults) -> str:
    if system.under_trained:
        return f"{name} (under-trained)"
    if system.proxy_failed:
        return f"{name} (proxy failed)"
    return f"{name} (not converged)" if system.not_converged else name


def _draw(ax, x, system: SystemResults, y_key: str, label: str):
    """A line with 95 % error bars for the quality figures, a plain one otherwise."""
    if y_key in ERROR_BARS:
        return ax.errorbar(x, getattr(system, y_key), yerr=getattr(system, ERROR_BARS[y_key]),
                           marker="o", capsize=3, label=label)
    return ax.plot(x, getattr(system, y_key), marker="o", label=label)


def _line_plot(results: ResultsFile, y_key: str, y_label: str, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, system in results.systems.items():
        _draw(ax, system.snr_db, system, y_key, _label(name, system))
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _rate_distortion(results: ResultsFile, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, system in results.systems.items():
        _draw(ax, system.cr, system, "psnr_db", _label(name, system))
        for cr, psnr, snr in zip(system.cr, system.psnr_db, system.snr_db, strict=True):
            ax.annotate(f"{snr:g} dB", (cr, psnr), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)
    ax.set_xlabel("CR (real channel symbols / 3HW)")
    ax.set_ylabel("mean PSNR of 8-bit images (dB)")
    ax.set_title("Rate-distortion (points labelled with SNR; 95 % CI)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _extras(results: ResultsFile, path: Path) -> Path | None:
    keys = sorted({k for s in results.systems.values() for k in s.extras()})
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.8), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for name, system in results.systems.items():
            extras = system.extras()
            if key in extras:
                ax.plot(system.snr_db, extras[key], marker="o", label=name)
        ax.set_xlabel("SNR (dB)")
        ax.set_title(key)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("System decisions vs SNR (mean per image)")
    return _save(fig, path)


def plot_results(results: ResultsFile, out_dir: str | Path) -> list[Path]:
    """Write the figures into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        _line_plot(results, "psnr_db", "mean PSNR of 8-bit images (dB)",
                   "PSNR vs SNR (error bars: 95 % CI)", out_dir / "psnr_vs_snr.png"),
        _rate_distortion(results, out_dir / "psnr_vs_cr.png"),
        _line_plot(results, "ssim", "mean SSIM", "SSIM vs SNR (error bars: 95 % CI)",
                   out_dir / "ssim_vs_snr.png"),
        _line_plot(results, "ms_ssim", "mean MS-SSIM", "MS-SSIM vs SNR (error bars: 95 % CI)",
                   out_dir / "ms_ssim_vs_snr.png"),
        _line_plot(results, "cr", "CR", "CR vs SNR", out_dir / "cr_vs_snr.png"),
    ]
    extras = _extras(results, out_dir / "extras_vs_snr.png")
    return paths + ([extras] if extras is not None else [])


def plot_samples(name: str, originals: np.ndarray, recons: dict[float, np.ndarray],
                 path: str | Path) -> Path:
    """Grid of ``originals`` (``[k, H, W, 3]``, uint8 or float in ``[0, 1]``) in the first
    row and each SNR's reconstructions (``{snr_db: [k, H, W, 3]}``) below."""
    rows = [("original", originals)] + [(f"{snr:g} dB", recons[snr]) for snr in sorted(recons)]
    k = len(originals)
    fig, axes = plt.subplots(len(rows), k, figsize=(1.6 * k + 0.8, 1.6 * len(rows)),
                             squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(k):
            ax = axes[r][c]
            ax.imshow(images[c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label)
    fig.suptitle(f"{name}: original vs reconstructed")
    return _save(fig, Path(path))
