"""``semsim eval FILE --checkpoint DIR``: evaluate the checkpoints of an earlier run.

``DIR`` is a run directory (its ``checkpoints/`` is used) or a checkpoints directory
holding one sub-directory per system. Each system's ``prepare`` is called with
``resume=True`` on its sub-directory, which loads a finished checkpoint (an
unfinished one is trained to the end). Outputs as ``semsim run``; exit codes too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semsim.cli.run import EXIT_USAGE, add_common_arguments, execute


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate the checkpoints of an earlier run",
        description="Evaluate a scenario's systems from existing checkpoints (no fresh "
                    "training) and write the same outputs as `semsim run`.")
    add_common_arguments(parser)
    parser.add_argument("--checkpoint", type=Path, required=True, metavar="DIR",
                        help="run directory or its checkpoints/ directory")
    parser.set_defaults(func=eval_command, needs_tensorflow=True)


def eval_command(args: argparse.Namespace) -> int:
    checkpoints = args.checkpoint
    if (checkpoints / "checkpoints").is_dir():
        checkpoints = checkpoints / "checkpoints"
    if not checkpoints.is_dir():
        print(f"error: --checkpoint: {args.checkpoint} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    return execute(args, checkpoints=checkpoints, out_suffix="-eval")
