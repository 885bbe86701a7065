"""Constellation plot of what MIJSCC sends (analog vs 8 bit vs 4 bit).

:func:`plot_constellation` scatters the complex symbols of one or more systems, one panel
each, in the units they enter the channel (unit mean energy per sent symbol; see
:meth:`semsim.systems.mijscc.MIJSCCSystem.sent_symbols`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_constellation(symbols: dict[str, np.ndarray], path: str | Path,
                       max_points: int = 20000) -> Path:
    """One scatter panel per entry of ``symbols`` (label -> complex array of any shape;
    zeros, i.e. symbols a mask dropped, are left out; at most ``max_points`` each, the
    first ones); written as PNG to ``path``."""
    if not symbols:
        raise ValueError("symbols is empty: give at least one label -> complex array")
    fig, axes = plt.subplots(1, len(symbols), figsize=(4 * len(symbols), 4), squeeze=False)
    for ax, (label, values) in zip(axes[0], symbols.items(), strict=True):
        values = np.asarray(values).reshape(-1)
        values = values[np.abs(values) > 0][:max_points]
        ax.scatter(values.real, values.imag, s=2, alpha=0.3)
        ax.set_title(f"{label} ({len(values)} symbols)")
        ax.set_xlabel("in-phase")
        ax.set_ylabel("quadrature")
        ax.set_aspect("equal")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
