"""Every scenario shipped in scenarios/ validates, as written and under each profile."""

from __future__ import annotations

import pytest

from semsim.scenario.loader import SCENARIOS_DIR, load_scenario, validate_file

SHIPPED = sorted(SCENARIOS_DIR.glob("*.yaml"))


def test_the_expected_scenarios_are_shipped():
    assert {p.stem for p in SHIPPED} >= {
        "siso_awgn", "mimo_2x2", "mimo_4x4", "imperfect_csi", "mu_mimo_2users",
        "mu_mimo_3users", "mu_mimo_4users", "ablation_no_vit"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenario_validates(path):
    problems, profiles = validate_file(path)
    assert [str(p) for p in problems] == []
    assert set(profiles) >= {"quick", "standard", "paper"}
    assert load_scenario(path, "standard").scenario.data.source in ("builtin", "digits")
    quick = load_scenario(path, "quick")
    assert quick.scenario.name == path.stem
    assert quick.scenario.data.source in ("builtin", "digits")  # runs without downloads
    for name in (p for p in profiles if p.startswith("paper")):
        # CIFAR-10, or an image folder (Kodak) for the standard-codec systems
        assert load_scenario(path, name).scenario.data.source in ("cifar10", "folder")
