"""``semsim validate FILE...``: check scenario files (as written and under each profile)
without running them. Prints one line per problem (``FILE: field.path: message``) on
stderr. Exit codes: 0 all valid, 2 a file is invalid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate", help="check scenario files without running them",
        description="Check scenario files as written and under each of their profiles. "
                    "Exit codes: 0 valid, 2 invalid.")
    parser.add_argument("scenarios", metavar="FILE", nargs="+", type=Path)
    parser.set_defaults(func=validate_command)


def validate_command(args: argparse.Namespace) -> int:
    from semsim.scenario.loader import load_scenario, validate_file

    status = 0
    for path in args.scenarios:
        problems, profiles = validate_file(path)
        if problems:
            for problem in problems:
                print(f"{path}: {problem}", file=sys.stderr)
            status = 2
            continue
        scenario = load_scenario(path).scenario
        systems = ", ".join(f"{s.name} ({s.type})" for s in scenario.systems)
        print(f"{path}: ok - {scenario.name}; profiles: {', '.join(profiles) or 'none'}; "
              f"systems: {systems}")
    return status
