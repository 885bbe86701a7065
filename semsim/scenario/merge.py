"""Assembling the run directories of shards (``semsim run FILE --shard i/N``) into one
run directory with results.json, results.csv, the figures and report.md.

Every directory must come from the same resolved scenario and profile (their
run_state.json are equal) and the same shard count; each (system, SNR point) is taken
from the one shard that evaluated it, and a point that no shard holds, or two shards
hold, is an error naming it. The merged directory gets the run layout of
:mod:`semsim.scenario.runner` without ``checkpoints/`` (those stay in the shard
directories, where ``semsim eval --checkpoint`` finds them). Per system, timing.json
sums the shards' training and evaluation seconds; the training steps come from the
shard that trained it. Wall-clock fields and ``created`` aside, the merged results
equal those of a single-process run.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import numpy as np

from semsim import __version__
from semsim.atomic import atomic_path, write_text
from semsim.report.bd import section_of_run
from semsim.report.results import ResultsFile
from semsim.scenario.evaluation import system_results
from semsim.scenario.outputs import write_outputs
from semsim.scenario.runner import STATE_FILE, RunError
from semsim.scenario.shard import SHARD_FILE
from semsim.weights.shipped import weights_record


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise RunError(f"merge: cannot read {path}: {err}") from err


def merge_shards(dirs: list[Path], out: Path) -> ResultsFile:
    """Merge the shard run directories ``dirs`` into ``out`` (created; it must not hold
    a run already) and return the results written there."""
    if not dirs:
        raise RunError("merge: no shard directories given")
    dirs = [Path(d) for d in dirs]
    states, records = [], []
    for d in dirs:
        if not (d / SHARD_FILE).is_file():
            raise RunError(f"merge: {d} holds no {SHARD_FILE} (not a finished "
                           "`semsim run --shard` directory)")
        states.append(_read_json(d / STATE_FILE))
        records.append(_read_json(d / SHARD_FILE))
    for d, state, record in zip(dirs[1:], states[1:], records[1:], strict=True):
        if state != states[0]:
            raise RunError(f"merge: {d} was run with another scenario or profile than {dirs[0]}")
        if record["shard"][1] != records[0]["shard"][1]:
            raise RunError(f"merge: {d} is shard {record['shard'][0]}/{record['shard'][1]}, "
                           f"{dirs[0]} is of {records[0]['shard'][1]} shards")
    out = Path(out)
    if (out / STATE_FILE).exists() or (out / "results.json").exists():
        raise RunError(f"merge: {out} already holds a run; choose another --out")
    scenario = states[0]["scenario"]
    n_snr = len(scenario["snr"]["eval_db"])
    owner: dict[tuple[str, int], Path] = {}
    for d, record in zip(dirs, records, strict=True):
        for name, indices in record["points"].items():
            for i in indices:
                if (name, i) in owner:
                    raise RunError(f"merge: system {name!r} SNR point {i} is in both "
                                   f"{owner[name, i]} and {d}")
                owner[name, i] = d
    names = [s["name"] for s in scenario["systems"] if any((s["name"], i) in owner
                                                           for i in range(n_snr))]
    if not names:
        raise RunError("merge: the shards hold no evaluation points")
    for name in names:
        missing = [i for i in range(n_snr) if (name, i) not in owner]
        if missing:
            raise RunError(f"merge: system {name!r} lacks SNR point(s) "
                           f"{', '.join(map(str, missing))} (run the missing shard(s))")

    (out / "eval").mkdir(parents=True, exist_ok=True)
    for source in ("scenario.resolved.yaml", STATE_FILE):
        write_text(out / source, (dirs[0] / source).read_text(encoding="utf-8"))
    with atomic_path(out / "eval" / "originals.npy") as tmp:
        shutil.copyfile(dirs[0] / "eval" / "originals.npy", tmp)
    types = {s["name"]: s["type"] for s in scenario["systems"]}
    systems = {}
    for name in names:
        target = out / "eval" / name
        target.mkdir(exist_ok=True)
        points, timing = [], {"train_seconds": 0.0, "eval_seconds": 0.0}
        weights: dict = {}  # where a learned system's weights came from (its shard's record)
        for d in sorted({owner[name, i] for i in range(n_snr)}, key=dirs.index):
            weights = weights or weights_record(d / "checkpoints" / name)
            part = _read_json(d / "eval" / name / "timing.json")
            for key in ("train_seconds", "eval_seconds"):
                timing[key] += part.get(key, 0.0)
            if "steps_planned" in part:
                timing.update(steps_done=part["steps_done"], steps_planned=part["steps_planned"])
        for i in range(n_snr):
            file = f"snr_{i:02d}.npz"
            with atomic_path(target / file) as tmp:
                shutil.copyfile(owner[name, i] / "eval" / name / file, tmp)
            points.append(dict(np.load(target / file)))
        write_text(target / "timing.json", json.dumps(timing))
        systems[name] = system_results(types[name], points, timing, weights)
    results = ResultsFile(
        semsim_version=__version__,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        profile=states[0]["profile"], data=records[0]["data"], metrics=records[0]["metrics"],
        scenario=scenario, systems=systems, bd=section_of_run(scenario, systems))
    write_outputs(results, out)
    return results
