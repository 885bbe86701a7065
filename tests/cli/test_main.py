"""The top-level ``semsim`` command: version, help, no sub-command."""

import subprocess
import sys

import pytest

from semsim import __version__
from semsim.cli.main import COMMAND_MODULES, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"semsim {__version__}"


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("ber", "run", "validate", "list", "eval", "plot", "merge"):
        assert command in out
    assert len(COMMAND_MODULES) == 7


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: semsim" in capsys.readouterr().out


def test_console_script_and_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "semsim", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"semsim {__version__}"
