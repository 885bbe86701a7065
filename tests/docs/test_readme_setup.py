"""The README's set-up section: exactly two commands (code blocks), each creating and
activating a virtual environment before ``pip`` (PEP 668 systems refuse a system-wide
install), the supported Python versions as ``python_requires`` says, and how to start
Jupyter with what the first command installs."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def setup_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Set-up")
    return text[start: text.index("\n## ", start + 1)]


def blocks(section: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", section, flags=re.M | re.S)


def setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    return cfg


def test_two_commands_each_in_a_fresh_virtual_environment():
    commands = blocks(setup_section())
    assert len(commands) == 2, commands
    for command in commands:
        steps = [s.strip() for s in re.split(r"&&|\n", command) if s.strip()]
        assert steps[0] == "python3 -m venv .venv", command
        assert steps[1] in (". .venv/bin/activate", "source .venv/bin/activate"), command
        assert all("pip" not in s for s in steps[:2])
        assert any(s.startswith("pip install -e") for s in steps[2:]), command


def test_supported_python_versions_are_stated():
    oldest = setup_cfg()["options"]["python_requires"].strip().removeprefix(">=")
    assert f"Python {oldest} or newer" in setup_section()
    assert f"Python {oldest}+" in setup_section()


def test_the_first_command_installs_what_jupyter_needs():
    section = setup_section()
    first = blocks(section)[0]
    extras = re.search(r'pip install -e "\.\[([\w,-]+)\]"', first)
    assert extras, first
    cfg = setup_cfg()["options.extras_require"]
    installed = {Requirement(line).name for extra in extras[1].split(",")
                 for line in cfg[extra].splitlines() if line.strip()}
    assert {"jupyterlab", "ipykernel"} <= installed
    assert "jupyter lab notebooks/" in section


def test_ci_runs_the_readme_test_command():
    """The pytest invocation of the README's second command is the one ``.ci/run`` runs
    (CI's extra flags, such as ``-q``, may follow it)."""
    readme = blocks(setup_section())[1]
    command = next(line for line in readme.splitlines() if "pytest" in line).strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert any(line.strip().startswith(command) for line in ci.splitlines()), command
    assert "pytest-xdist" in setup_cfg()["options.extras_require"]["test"] or "-n" not in command
