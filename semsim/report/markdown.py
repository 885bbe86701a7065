"""``report.md``: the run summary (table of PSNR/CR per SNR) embedding the figures."""

from __future__ import annotations

from pathlib import Path

from semsim.report.results import ResultsFile


def _table(results: ResultsFile) -> list[str]:
    snrs = sorted({s for system in results.systems.values() for s in system.snr_db})
    lines = ["| system | type | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
             "|---|---|" + "---|" * len(snrs)]
    for name, system in results.systems.items():
        cells = []
        for snr in snrs:
            if snr in system.snr_db:
                i = system.snr_db.index(snr)
                cell = f"{system.psnr_db[i]:.2f} dB / CR {system.cr[i]:.4f}"
                if "accuracy" in system.extras():  # systems that classify
                    cell += f" / acc {system.extras()['accuracy'][i]:.3f}"
                cells.append(cell)
            else:
                cells.append("")
        lines.append(f"| {name} | {system.type} | " + " | ".join(cells) + " |")
    return lines


def write_report(results: ResultsFile, figures: list[Path], path: str | Path) -> Path:
    """Write ``report.md`` at ``path``; ``figures`` are embedded relative to it."""
    path = Path(path)
    scenario = results.scenario
    lines = [
        f"# {scenario.get('name', 'semsim run')}",
        "",
        str(scenario.get("description", "")),
        "",
        f"- profile: {results.profile or '(none)'}",
        f"- data: {results.data}",
        f"- created: {results.created} (semsim {results.semsim_version})",
        "",
        "## PSNR / CR per SNR",
        "",
        "PSNR is the mean over test images of the per-image PSNR; CR counts real channel "
        "symbols per 3HW; acc is the classification accuracy (systems that classify).",
        "",
        *_table(results),
        "",
        "## Figures",
        "",
    ]
    for figure in figures:
        rel = Path(figure).resolve().relative_to(path.parent.resolve())
        lines += [f"![{rel.stem}]({rel.as_posix()})", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
