"""What two runs of one seed must share: results.json without its creation time, the
wall-clock timings and the weights' provenance ("resumed" after a kill, else "trained")."""

from __future__ import annotations

import json
from pathlib import Path


def comparable_results(results_file: Path) -> dict:
    results = json.loads(Path(results_file).read_text())
    results.pop("created")
    for system in results["systems"].values():
        system.pop("train_seconds")
        system.pop("eval_seconds")
        system.pop("weights", None)
    return results
