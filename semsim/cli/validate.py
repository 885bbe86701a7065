"""``semsim validate FILE...``: check scenario files (as written and under each profile)
without running them. A directory stands for the ``*.yaml`` files in it; ``--all`` with
no FILE checks the shipped scenarios. Prints one line per problem
(``FILE: field.path: message``) on stderr. Exit codes: 0 all valid, 2 a file is invalid
or a directory holds no scenario."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate", help="check scenario files without running them",
        description="Check scenario files as written and under each of their profiles. "
                    "Exit codes: 0 valid, 2 invalid.")
    parser.add_argument("scenarios", metavar="FILE", nargs="*", type=Path,
                        help="scenario files, or directories of them (their *.yaml files)")
    parser.add_argument("--all", action="store_true",
                        help="with no FILE: every shipped scenario (semsim's scenarios/)")
    parser.set_defaults(func=validate_command, parser=parser)


def scenario_files(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """The files ``paths`` names (a directory: its ``*.yaml``, sorted) and the directories
    that hold none."""
    files: list[Path] = []
    empty: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.yaml"))
            files.extend(found)
            if not found:
                empty.append(path)
        else:
            files.append(path)
    return files, empty


def validate_command(args: argparse.Namespace) -> int:
    from semsim.scenario import SCENARIOS_DIR
    from semsim.scenario.loader import load_scenario, validate_file

    paths = args.scenarios or ([SCENARIOS_DIR] if args.all else [])
    if not paths:
        args.parser.error("give scenario files or directories, or --all for the shipped ones")
    files, empty = scenario_files(paths)
    status = 0
    for directory in empty:
        print(f"{directory}: no *.yaml scenario in this directory", file=sys.stderr)
        status = 2
    for path in files:
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
