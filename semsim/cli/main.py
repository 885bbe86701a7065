"""Entry point of the ``semsim`` command.

Each sub-command lives in its own module of :mod:`semsim.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed namespace and returning the exit code).

Exit codes: 0 success, 1 run-time failure, 2 invalid input (bad arguments or
scenario file), 130 interrupted (Ctrl-C; a run can be resumed with ``--resume``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from semsim import __version__

COMMAND_MODULES = ("ber", "run", "validate", "list_cmd", "eval", "plot")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semsim",
        description="Link-level simulation of semantic communication over wireless MIMO links.",
    )
    parser.add_argument("--version", action="version", version=f"semsim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"semsim.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
