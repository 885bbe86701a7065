"""``semsim merge DIR... --out DIR``: assemble the run directories of the shards of one
scenario (``semsim run FILE --shard i/N``) into one run directory with results.json,
results.csv, the figures and report.md (see :mod:`semsim.scenario.merge`).

Exit codes: 0 done, 2 the directories do not make one complete run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

EXIT_OK, EXIT_USAGE = 0, 2
log = logging.getLogger("semsim")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "merge", help="assemble the shards of a run (semsim run --shard i/N)",
        description="Merge the run directories written by `semsim run FILE --shard i/N` "
                    "(all N of them) into one run directory with results.json, results.csv, "
                    "figures and report.md, equal to a single-process run.")
    parser.add_argument("dirs", metavar="DIR", type=Path, nargs="+",
                        help="the shard run directories")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="merged run directory (must not hold a run)")
    parser.set_defaults(func=merge_command, needs_tensorflow=True)


def merge_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from semsim.cli.run import summary_table
    from semsim.scenario.merge import merge_shards
    from semsim.scenario.runner import RunError

    try:
        results = merge_shards(args.dirs, args.out)
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    Console().print(summary_table(results))
    log.info("results in %s (report.md, results.json, results.csv)", args.out)
    return EXIT_OK
