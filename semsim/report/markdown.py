"""``report.md``: the run summary (headline PSNR with its 95 % interval and CR per SNR,
SSIM / MS-SSIM, training status) embedding the figures."""

from __future__ import annotations

from pathlib import Path

from semsim.atomic import write_text
from semsim.report.results import ResultsFile, SystemResults
from semsim.systems.history import CONVERGED_GAIN_DB, trend_text
from semsim.systems.params import PROXY_MIN_PSNR_DB
from semsim.weights.manifest import convergence_text


def training_status(system: SystemResults) -> str:
    """``"600/2000 steps, UNDER-TRAINED"``, ``"2000 steps"`` (shipped weights add their
    measured convergence, e.g. ``"7000 steps, NOT converged: +0.67 dB from 7000 to 14000
    steps (from scratch)"``; weights trained in the run the second half of their
    validation history, e.g. ``"1500 steps, NOT converged: validation PSNR +0.85 dB from
    step 750 to 1500 (second half of training)"``; an ``scsc`` system whose proxy did not
    track the chain adds ``"proxy FAILED: 16.04 dB against the chain"``; trained weights
    with neither a measured convergence nor a validation history, e.g. shipped weights
    whose manifest records none or an ``scsc`` system's stages, say ``"convergence not
    measured"``), or ``"-"`` (no training)."""
    if system.steps_done is None:
        return "-"
    if system.under_trained:
        return f"{system.steps_done}/{system.steps_planned} steps, UNDER-TRAINED"
    known = (convergence_text(system.weights_convergence) or trend_text(system.training_trend)
             or "convergence not measured")
    if system.proxy_failed:
        known += f", proxy FAILED: {min(system.extras()['proxy_psnr_db']):.2f} dB against the chain"
    return f"{system.steps_done} steps, {known}"


def _snrs(results: ResultsFile) -> list[float]:
    return sorted({s for system in results.systems.values() for s in system.snr_db})


def _table(results: ResultsFile, cell, with_training: bool) -> list[str]:
    snrs = _snrs(results)
    training = "training | " if with_training else ""
    lines = [f"| system | type | {training}" + " | ".join(f"{s:g} dB" for s in snrs) + " |",
             "|---|---|" + ("---|" if with_training else "") + "---|" * len(snrs)]
    for name, system in results.systems.items():
        cells = [cell(system, system.snr_db.index(s)) if s in system.snr_db else ""
                 for s in snrs]
        status = f"{training_status(system)} | " if with_training else ""
        lines.append(f"| {name} | {system.type} | {status}" + " | ".join(cells) + " |")
    return lines


def _psnr_cell(system: SystemResults, i: int) -> str:
    exact = f" ({system.exact_images[i]} exact)" if system.exact_images[i] else ""
    cell = (f"{system.psnr_db[i]:.2f} ± {system.psnr_ci95_db[i]:.2f} dB{exact} / "
            f"CR {system.cr[i]:.4f}")
    if "accuracy" in system.extras():  # systems that classify
        cell += f" / acc {system.extras()['accuracy'][i]:.3f}"
    return cell


def _ssim_cell(system: SystemResults, i: int) -> str:
    return (f"{system.ssim[i]:.3f} ± {system.ssim_ci95[i]:.3f} / "
            f"{system.ms_ssim[i]:.3f} ± {system.ms_ssim_ci95[i]:.3f}")


def _metric_notes(results: ResultsFile) -> list[str]:
    metrics = results.metrics
    lines = ["PSNR: mean over the test images of the per-image PSNR of 8-bit images "
             "(originals and reconstructions rounded to 0..255), ± the half-width of its "
             "95 % confidence interval (Student t); CR counts real channel symbols per 3HW; "
             "acc is the classification accuracy (systems that classify)."]
    if "psnr_cap_db" in metrics:
        lines.append(f"An exact reconstruction (MSE = 0) is counted at "
                     f"{metrics['psnr_cap_db']:.2f} dB, the PSNR of the smallest non-zero "
                     "8-bit MSE; cells say how many images were exact.")
    return lines


def _bd_lines(results: ResultsFile) -> list[str]:
    """The Bjontegaard table: one row per curve, one cell per SNR (BD-rate / BD-PSNR, or
    ``n/a`` with a numbered reason below the table)."""
    bd = results.bd
    if bd is None:
        return []
    lines = ["## Bjontegaard deltas", "",
             f"Against `{bd.anchor}`, per SNR: BD-rate (percent CBR at equal PSNR; negative = "
             f"fewer channel symbols) / BD-PSNR (dB at equal CBR; positive = better), "
             f"`bjontegaard` package, {bd.method} interpolation in log-CBR. Curves (systems "
             f"at different rates, same SNR): "
             + "; ".join(f"{c}: {', '.join(n)}" for c, n in bd.curves.items()) + ".", ""]
    if not bd.deltas:
        return [*lines, "No curve besides the anchor.", ""]
    for curve, kept in bd.envelope.items():
        lines += [f"`{curve}` is the scheme choosing its best configuration per CBR: at each "
                  f"SNR only its upper envelope counts (no other point at a CBR <= and a PSNR "
                  f">=); kept: " + "; ".join(
                      f"{snr:g} dB: " + ("not evaluated" if k is None else ", ".join(k))
                      for snr, k in zip(bd.snr_db, kept, strict=True)) + ".", ""]
    lines += ["| curve | " + " | ".join(f"{s:g} dB" for s in bd.snr_db) + " |",
              "|---|" + "---|" * len(bd.snr_db)]
    notes: list[str] = []
    for curve, entry in bd.deltas.items():
        cells = []
        for rate, psnr, note in zip(entry.bd_rate_percent, entry.bd_psnr_db, entry.notes,
                                    strict=True):
            cell = " / ".join(["n/a" if rate is None else f"{rate:+.1f} %",
                               "n/a" if psnr is None else f"{psnr:+.2f} dB"])
            if note:
                if note not in notes:
                    notes.append(note)
                cell += f" [{notes.index(note) + 1}]"
            cells.append(cell)
        lines.append(f"| {curve} | " + " | ".join(cells) + " |")
    return [*lines, "", *(f"[{i}] {note}  " for i, note in enumerate(notes, 1)), ""]


#: Report banners: (``SystemResults`` flag, title, why), each naming the flagged systems.
_BANNERS = (
    ("under_trained", "Warning: under-trained",
     "training stopped by the wall-clock budget `train.max_seconds` before its planned "
     "steps; continue it with `--resume`"),
    ("not_converged", "Not converged",
     "shipped weights whose measured convergence says that doubling the training steps "
     f"still raises validation PSNR by {CONVERGED_GAIN_DB} dB or more "
     "(`benchmarks/convergence.py`), or weights trained in this run whose validation PSNR "
     f"still rose by {CONVERGED_GAIN_DB} dB or more over the second half of their training: "
     "see the training column; their numbers are under-trained"),
    ("proxy_failed", "Proxy does not track the chain",
     "the PSNR of the proxy's reconstruction against the real chain's, mean over its check "
     f"SNRs, is below {PROXY_MIN_PSNR_DB:g} dB: the learned modules trained on the proxy's "
     "gradients, which do not follow the chain; these numbers are those of a failed "
     "training, see the training column"),
)


def write_report(results: ResultsFile, figures: list[Path], path: str | Path) -> Path:
    """Write ``report.md`` at ``path`` (atomically); ``figures`` are embedded relative
    to it."""
    path = Path(path)
    scenario = results.scenario
    warning = []
    for flag, title, why in _BANNERS:
        names = [name for name, s in results.systems.items() if getattr(s, flag)]
        if names:
            warning += [f"**{title}: {', '.join(names)}** ({why}).", ""]
    ms = results.metrics.get("ms_ssim")
    ms_note = "" if not ms else (f" MS-SSIM: {ms['scales']} scales, {ms['filter_size']}x"
                                 f"{ms['filter_size']} window, weights {ms['weights']}.")
    lines = [
        f"# {scenario.get('name', 'semsim run')}",
        "",
        str(scenario.get("description", "")),
        "",
        f"- profile: {results.profile or '(none)'}",
        f"- data: {results.data}",
        f"- created: {results.created} (semsim {results.semsim_version})",
        "",
        *warning,
        "## PSNR / CR per SNR",
        "",
        *_metric_notes(results),
        "",
        *_table(results, _psnr_cell, with_training=True),
        "",
        "## SSIM / MS-SSIM per SNR",
        "",
        "Mean over test images ± the 95 % confidence half-width, on 8-bit images "
        "(`tf.image.ssim` / `tf.image.ssim_multiscale`)." + ms_note,
        "",
        *_table(results, _ssim_cell, with_training=False),
        "",
        *_bd_lines(results),
        "## Figures",
        "",
    ]
    for figure in figures:
        rel = Path(figure).resolve().relative_to(path.parent.resolve())
        lines += [f"![{rel.stem}]({rel.as_posix()})", ""]
    write_text(path, "\n".join(lines))
    return path
