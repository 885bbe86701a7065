"""``semsim plot RESULTS``: redraw the figures and report.md of a results.json.

Sample grids are drawn when the run directory's evaluation state (``eval/``) sits
next to the results file. Exit codes: 0 ok, 2 unreadable/invalid results file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plot", help="redraw figures and report.md from results.json",
        description="Redraw the figures and report.md of a run from its results.json.")
    parser.add_argument("results", metavar="RESULTS", type=Path, help="results.json")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="where to write (default: next to RESULTS)")
    parser.set_defaults(func=plot_command, needs_tensorflow=True)


def plot_command(args: argparse.Namespace) -> int:
    import pydantic

    from semsim.report.markdown import write_report
    from semsim.report.plots import plot_results
    from semsim.report.results import ResultsFile
    from semsim.scenario.loader import problems_from_validation
    from semsim.scenario.outputs import sample_grids

    try:
        results = ResultsFile.read(args.results)
    except pydantic.ValidationError as err:
        for problem in problems_from_validation(err, ResultsFile):
            print(f"{args.results}: {problem}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or args.results.parent
    out.mkdir(parents=True, exist_ok=True)
    figures = plot_results(results, out) + sample_grids(args.results.parent, results, out)
    report = write_report(results, figures, out / "report.md")
    print(f"wrote {len(figures)} figures and {report}")
    return 0
