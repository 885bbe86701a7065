"""The Python versions semsim claims (``python_requires`` in setup.cfg) are ones it runs on.

* every declared dependency, as installed, accepts the oldest claimed version (its
  ``Requires-Python``);
* no module of semsim, its tests or benchmarks uses a language or library feature newer
  than the oldest claimed version (``vermin``, an AST scan of syntax and standard-library
  members such as ``datetime.UTC`` or ``tomllib``);
* every module of the package imports.
"""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import pkgutil
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import semsim

ROOT = Path(__file__).resolve().parents[2]


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    return cfg


def oldest_claimed() -> tuple[int, int]:
    """The lower bound of ``python_requires``, e.g. ``(3, 11)``."""
    spec = _setup_cfg()["options"]["python_requires"]
    match = re.fullmatch(r"\s*>=\s*(\d+)\.(\d+)\s*", spec)
    assert match, f"python_requires should be a plain lower bound, got {spec!r}"
    return int(match[1]), int(match[2])


def declared_requirements() -> list[Requirement]:
    cfg = _setup_cfg()
    lines = cfg["options"]["install_requires"].splitlines()
    lines += cfg["options.extras_require"]["test"].splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def test_dependencies_accept_the_oldest_claimed_python():
    major, minor = oldest_claimed()
    oldest = f"{major}.{minor}.0"
    refusing = []
    for req in declared_requirements():
        try:
            needs = metadata.metadata(req.name).get("Requires-Python")
        except metadata.PackageNotFoundError:
            continue
        if needs and oldest not in SpecifierSet(needs):
            refusing.append(f"{req.name} needs Python {needs}")
    assert not refusing, f"python_requires claims {major}.{minor}, but " + "; ".join(refusing)


def test_the_running_interpreter_is_a_claimed_version():
    assert sys.version_info[:2] >= oldest_claimed()


@pytest.mark.skipif(importlib.util.find_spec("vermin") is None,
                    reason="vermin is not installed (pip install -e '.[test]')")
def test_no_feature_newer_than_the_oldest_claimed_python():
    major, minor = oldest_claimed()
    run = subprocess.run(
        [sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())",
         f"-t={major}.{minor}-", "--no-tips", "--violations", "--no-parse-comments",
         str(ROOT / "semsim"), str(ROOT / "tests"), str(ROOT / "benchmarks")],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_module_imports():
    failed = []
    for info in pkgutil.walk_packages(semsim.__path__, "semsim."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception as err:  # noqa: BLE001 - report every failing module at once
            failed.append(f"{info.name}: {type(err).__name__}: {err}")
    assert not failed, "\n".join(failed)
