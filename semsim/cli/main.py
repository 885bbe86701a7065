"""Entry point of the ``semsim`` command.

Each sub-command lives in its own module of :mod:`semsim.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed namespace and returning the exit code). Registering must stay
cheap: TensorFlow, Keras, Sionna and matplotlib are imported inside ``func`` only, so
``semsim --help`` answers at once.

``-q`` / ``-v`` set the level of the standard :mod:`logging` module (``semsim`` logger:
WARNING / DEBUG; default INFO); status lines go to stderr through it, results to stdout.
A command that sets ``needs_tensorflow`` gets TensorFlow started before ``func`` by
:func:`semsim.cli.native_log.start_tensorflow`, which filters TensorFlow's native start-up
log (not with ``-v``).

Exit codes: 0 success, 1 run-time failure, 2 invalid input (bad arguments or
scenario file), 130 interrupted (Ctrl-C; a run can be resumed with ``--resume``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from semsim import __version__

COMMAND_MODULES = ("ber", "run", "validate", "list_cmd", "eval", "plot", "merge")

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
    _add_verbosity(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"semsim.cli.{name}").register(subparsers)
    for command in subparsers.choices.values():  # also after the command: semsim run F -q
        _add_verbosity(command, default=argparse.SUPPRESS)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, default) -> None:
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", default=default,
                           help="log warnings and errors only")
    verbosity.add_argument("-v", "--verbose", action="store_true", default=default,
                           help="log debugging detail too (TensorFlow's C++ log included)")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(quiet: bool, verbose: bool) -> None:
    """Level of the ``semsim`` logger, with one plain stderr handler of its own."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logger = logging.getLogger("semsim")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.verbose)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if getattr(args, "needs_tensorflow", False):
            from semsim.cli.native_log import start_tensorflow

            start_tensorflow(verbose=args.verbose)
        return int(args.func(args))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
