"""Every third-party module semsim imports is declared in setup.cfg: the package's own
imports in ``install_requires``, the tests' and benchmarks' in ``install_requires`` or the
``test`` extra (found by an AST scan of every ``import`` statement, lazy ones included)."""

from __future__ import annotations

import ast
import configparser
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def declared(*sections: str) -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = cfg["options"]["install_requires"].splitlines()
    for section in sections:
        lines += cfg["options.extras_require"][section].splitlines()
    return {canonicalize_name(Requirement(line).name) for line in lines if line.strip()}


def imported_top_level(*folders: str) -> dict[str, Path]:
    """Top-level module names imported by the ``.py`` files under ``folders`` (first file)."""
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], path)
    return found


def undeclared(folders: tuple[str, ...], allowed: set[str]) -> list[str]:
    owners = metadata.packages_distributions()
    missing = []
    for module, path in sorted(imported_top_level(*folders).items()):
        if module in sys.stdlib_module_names or module in ("semsim", "tests", "__future__"):
            continue
        dists = {canonicalize_name(d) for d in owners.get(module, [])}
        if not dists:
            missing.append(f"{module} (imported by {path.relative_to(ROOT)}; not installed)")
        elif not dists & allowed:
            missing.append(f"{module} from {', '.join(sorted(dists))} "
                           f"(imported by {path.relative_to(ROOT)})")
    return missing


#: Extras the package imports lazily, behind a one-line error naming the extra to install
#: (``semsim run --tensorboard`` without the tensorboard package).
OPTIONAL_EXTRAS = ("tensorboard",)


def test_package_imports_are_install_requires():
    missing = undeclared(("semsim",), declared() | declared(*OPTIONAL_EXTRAS))
    assert not missing, "not in install_requires: " + "; ".join(missing)


def test_test_and_benchmark_imports_are_declared():
    missing = undeclared(("tests", "benchmarks", "docs"), declared("test", "dev"))
    assert not missing, "not in install_requires or the test extra: " + "; ".join(missing)
