"""The outputs of a run directory: results.json, results.csv, the figures (curves and
original-vs-reconstruction sample grids) and report.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semsim.report.markdown import write_report
from semsim.report.plots import plot_results, plot_samples
from semsim.report.results import ResultsFile, write_csv


def sample_grids(run_dir: Path, results: ResultsFile, out_dir: Path) -> list[Path]:
    """Original-vs-reconstruction grids (one per system, at the lowest, middle and
    highest SNR) from the evaluation state of ``run_dir``, written to ``out_dir``; none
    when that state is absent."""
    originals_file = run_dir / "eval" / "originals.npy"
    if not originals_file.exists():
        return []
    originals = np.load(originals_file)
    paths = []
    for name, system in results.systems.items():
        n = len(system.snr_db)
        picks = sorted({0, n // 2, n - 1})
        files = [run_dir / "eval" / name / f"snr_{i:02d}.npz" for i in picks]
        if not all(f.exists() for f in files):
            continue
        recons = {system.snr_db[i]: np.load(f)["samples"] for i, f in zip(picks, files, strict=True)}
        paths.append(plot_samples(name, originals[: len(next(iter(recons.values())))], recons,
                                  Path(out_dir) / f"samples_{name}.png"))
    return paths


def write_outputs(results: ResultsFile, run_dir: Path) -> list[Path]:
    """results.json, results.csv, figures and report.md into ``run_dir``."""
    run_dir = Path(run_dir)
    results.write(run_dir / "results.json")
    write_csv(results, run_dir / "results.csv")
    figures = plot_results(results, run_dir) + sample_grids(run_dir, results, run_dir)
    report = write_report(results, figures, run_dir / "report.md")
    return [run_dir / "results.json", run_dir / "results.csv", *figures, report]
