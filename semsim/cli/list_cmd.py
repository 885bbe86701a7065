"""``semsim list``: the shipped scenarios and the registered system types."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semsim.scenario import SCENARIOS_DIR


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "list", help="list shipped scenarios and system types",
        description="List the scenario files shipped with semsim and the registered "
                    "system types.")
    parser.add_argument("--dir", type=Path, default=SCENARIOS_DIR,
                        help=f"scenario directory (default: {SCENARIOS_DIR})")
    parser.set_defaults(func=list_command)


def list_command(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from semsim.scenario.loader import ScenarioError, read_yaml
    from semsim.systems.registry import system_types

    if not args.dir.is_dir():
        print(f"error: no scenario directory at {args.dir}; pass --dir", file=sys.stderr)
        return 2
    console = Console()
    scenarios = Table(title=f"Scenarios in {args.dir}")
    for column in ("file", "systems", "description"):
        scenarios.add_column(column)
    for path in sorted(args.dir.glob("*.yaml")):
        try:
            raw = read_yaml(path)
        except ScenarioError as err:
            scenarios.add_row(path.name, "", f"unreadable: {err.problems[0]}")
            continue
        systems = raw.get("systems") if isinstance(raw.get("systems"), list) else []
        names = ", ".join(str(s.get("name")) for s in systems if isinstance(s, dict))
        scenarios.add_row(path.name, names, str(raw.get("description", "")).strip())
    console.print(scenarios)
    types = Table(title="System types")
    types.add_column("type")
    types.add_column("description")
    for name, stype in sorted(system_types().items()):
        first = stype.description.strip().splitlines()[0] if stype.description.strip() else ""
        types.add_row(name, first)
    console.print(types)
    return 0
