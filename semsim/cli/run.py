"""``semsim run FILE``: train (or resume) the systems of a scenario, evaluate, report.

Exit codes: 0 done, 1 run-time failure, 2 invalid scenario or arguments,
130 interrupted (the run directory is left resumable: rerun with ``--resume``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from semsim.report.results import ResultsFile
from semsim.scenario.loader import ResolvedScenario, ScenarioError, load_scenario
from semsim.scenario.runner import RunError, RunOptions, run_scenario
from semsim.scenario.schema import PROFILE_NAMES

EXIT_OK, EXIT_USAGE = 0, 2


def system_names(text: str) -> tuple[str, ...]:
    """``--systems a,b`` -> ``("a", "b")``."""
    names = tuple(n.strip() for n in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated system names, got {text!r}")
    return names


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="FILE", type=Path, help="scenario YAML file")
    parser.add_argument("--profile", metavar="NAME",
                        help="profile to apply, e.g. " + ", ".join(PROFILE_NAMES)
                             + " (default: the file's `profile:` key)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="run directory (default: the scenario's output_dir, "
                             "else runs/<name>[-<profile>])")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in the run directory")
    parser.add_argument("--systems", type=system_names, metavar="A,B",
                        help="run only these systems of the scenario")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="train and evaluate the systems of a scenario",
        description="Train (or reuse the checkpoints of) the systems a scenario names, evaluate "
                    "them over its SNR grid on shared channel realizations and write "
                    "results.json, results.csv, figures and report.md. Exit codes: 0 ok, "
                    "1 failure, 2 invalid input, 130 interrupted (resume with --resume).")
    add_common_arguments(parser)
    parser.add_argument("--retrain", action="store_true",
                        help="train learned systems from scratch, ignoring shipped weights")
    parser.set_defaults(func=run_command)


def default_out_dir(resolved: ResolvedScenario, suffix: str = "") -> Path:
    if resolved.scenario.output_dir:
        return Path(resolved.scenario.output_dir + suffix)
    profile = f"-{resolved.profile}" if resolved.profile else ""
    return Path("runs") / f"{resolved.scenario.name}{profile}{suffix}"


def summary_table(results: ResultsFile) -> Table:
    """PSNR (dB) and CR per system and SNR."""
    snrs = sorted({s for system in results.systems.values() for s in system.snr_db})
    table = Table(title=f"{results.scenario.get('name')}: PSNR dB (CR)")
    table.add_column("system")
    table.add_column("type")
    for snr in snrs:
        table.add_column(f"{snr:g} dB", justify="right")
    for name, system in results.systems.items():
        cells = []
        for snr in snrs:
            i = system.snr_db.index(snr) if snr in system.snr_db else None
            cells.append("" if i is None else f"{system.psnr_db[i]:.2f} ({system.cr[i]:.3f})")
        table.add_row(name, system.type, *cells)
    return table


def execute(args: argparse.Namespace, checkpoints: Path | None, out_suffix: str) -> int:
    """Shared by ``run`` and ``eval``."""
    try:
        resolved = load_scenario(args.scenario, args.profile)
    except ScenarioError as err:
        print("\n".join(err.lines()), file=sys.stderr)
        return EXIT_USAGE
    out = args.out or default_out_dir(resolved, out_suffix)
    options = RunOptions(out_dir=out, resume=args.resume, systems=args.systems,
                         checkpoints=checkpoints, progress=not args.no_progress,
                         retrain=getattr(args, "retrain", False))
    try:
        results = run_scenario(resolved, options)
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\nrun left resumable in {out}; continue with: semsim {args.command} "
              f"{args.scenario} --out {out} --resume", file=sys.stderr)
        raise
    Console().print(summary_table(results))
    print(f"results in {out} (report.md, results.json, results.csv)")
    return EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    return execute(args, checkpoints=None, out_suffix="")
