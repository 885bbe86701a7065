"""``semsim list``: shipped scenarios and registered system types."""

from __future__ import annotations

from semsim.cli.main import main
from semsim.scenario.loader import SCENARIOS_DIR
from semsim.systems.registry import system_types

SHIPPED = ("siso_awgn", "mimo_2x2", "mimo_4x4", "imperfect_csi", "mu_mimo_2users",
           "mu_mimo_3users", "mu_mimo_4users", "ablation_no_vit")


def test_list_shows_scenarios_and_types(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert f"{name}.yaml" in out
    for name in system_types():
        assert name in out


def test_list_with_a_custom_directory(tmp_path, capsys):
    (tmp_path / "mine.yaml").write_text("name: mine\ndescription: my own scenario\n")
    (tmp_path / "broken.yaml").write_text("name: [\n")
    assert main(["list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mine.yaml" in out and "my own scenario" in out
    assert "broken.yaml" in out and "unreadable" in out
    assert "siso_awgn" not in out


def test_list_without_directory(tmp_path, capsys):
    assert main(["list", "--dir", str(tmp_path / "none")]) == 2
    assert "no scenario directory" in capsys.readouterr().err


def test_shipped_directory_is_the_source_tree():
    assert {p.stem for p in SCENARIOS_DIR.glob("*.yaml")} >= set(SHIPPED)
