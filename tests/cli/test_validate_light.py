"""``semsim validate`` and ``semsim list`` import no TensorFlow, Keras, Sionna or
TensorFlow Probability: every shipped scenario, under every profile, is validated in a
fresh interpreter by the command's own code path, which must leave none of them in
``sys.modules``; building a system afterwards must import them (so the probe sees them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from semsim.scenario import SCENARIOS_DIR

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "keras", "sionna", "tensorflow_probability")

PROBE = """
import contextlib, io, json, sys
from pathlib import Path
from semsim.cli.main import main
from semsim.scenario.loader import load_scenario, validate_file
from semsim.systems.registry import get_system_type

HEAVY = {heavy}
files = sorted(Path({scenarios!r}).glob("*.yaml"))
report = {{"files": len(files), "profiles": 0}}
with contextlib.redirect_stdout(io.StringIO()) as out:
    report["validate_status"] = main(["validate", *map(str, files)])
    report["list_status"] = main(["list"])
report["ok_lines"] = sum(": ok - " in line for line in out.getvalue().splitlines())
for path in files:
    problems, profiles = validate_file(path)
    assert not problems, (path, problems)
    for profile in profiles:
        load_scenario(path, profile=profile)
        report["profiles"] += 1
report["after_validate"] = sorted({{m.split(".")[0] for m in sys.modules}} & HEAVY)
get_system_type("deepjscc").factory
report["after_build"] = sorted({{m.split(".")[0] for m in sys.modules}} & HEAVY)
print(json.dumps(report))
"""


def test_validating_every_shipped_scenario_imports_no_tensorflow():
    code = PROBE.format(heavy=set(HEAVY), scenarios=str(SCENARIOS_DIR))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                    "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    shipped = len(list(SCENARIOS_DIR.glob("*.yaml")))
    assert report["files"] == shipped >= 10
    assert report["validate_status"] == 0 and report["ok_lines"] == shipped
    assert report["list_status"] == 0
    assert report["profiles"] >= shipped            # every shipped file has profiles
    assert report["after_validate"] == []
    # the probe does see the heavy packages once a builder is imported
    assert {"tensorflow", "keras", "sionna"} <= set(report["after_build"])
