"""Train the learned systems of a scenario profile and write them as shipped checkpoints.

    python -m semsim.weights.build scenarios/siso_awgn.yaml --profile standard
    python -m semsim.weights.build scenarios/mimo_2x2.yaml --profile standard --systems reference

Each learned system is built and trained exactly as ``semsim run`` would train it (the
runner's own build and prepare steps, from scratch, in a temporary run directory); its
final weights go to ``semsim/weights/<scenario>/<profile>/<system>.weights.h5`` (or
``--root``) with a manifest (:mod:`semsim.weights.manifest`) that records the config
hash, steps done and planned, wall time, machine, validation PSNR, the file's SHA-256 and
this command. ``--max-seconds`` overrides the profile's wall-clock budget; a run it cuts
short is marked ``under_trained`` in its manifest.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_checkpoint(resolved, name: str, root: Path, command: str,
                     max_seconds: float | None = None, workdir: Path | None = None) -> dict:
    """Train system ``name`` of ``resolved`` from scratch and write its weights and
    manifest under ``root``; returns the manifest. ``workdir``: where training
    checkpoints (a run directory); an interrupted build given the same ``workdir``
    continues where it stopped; ``None``: a temporary directory."""
    from semsim.atomic import write_text
    from semsim.data.pipeline import load_data
    from semsim.scenario.evaluation import validation_split
    from semsim.scenario.runner import RunOptions, _Run
    from semsim.weights.manifest import checkpoint_paths, make_manifest, write_manifest

    scenario = resolved.scenario
    if resolved.profile is None:
        raise ValueError("shipped checkpoints belong to a profile: pass --profile")
    entry = scenario.system(name)
    if max_seconds is not None:  # the system's own train keys, over the scenario's
        entry.train = {**(entry.train or {}), "max_seconds": float(max_seconds)}
    with tempfile.TemporaryDirectory(prefix="semsim-weights-") as tmp:
        out = Path(tmp) if workdir is None else Path(workdir)
        run = _Run(resolved, RunOptions(out_dir=out, resume=workdir is not None, retrain=True,
                                        progress=False))
        data, validation = validation_split(load_data(scenario.data), scenario.link.users)
        system = run._build(entry, data)
        if not system.trainable:
            raise ValueError(f"system {name!r} ({entry.type}) has no weights to ship")
        seconds, report = run._prepare(entry, system, data, validation)
        if workdir is not None:  # wall time over every run of an interrupted build
            record = out / "checkpoints" / name / "build_seconds.json"
            if record.exists():
                seconds += json.loads(record.read_text())["seconds"]
            write_text(record, json.dumps({"seconds": seconds}))
        done, planned = report.steps_done, report.steps_planned
        weights, manifest_file = checkpoint_paths(scenario.name, resolved.profile, name, root)
        weights.parent.mkdir(parents=True, exist_ok=True)
        # ship the model's weights only: a fresh, uncompiled copy drops the optimizer state
        # (and a budget-stopped run has no final weights file: its model holds the weights)
        bare = run._build(entry, data)
        bare.model.set_weights(system.model.get_weights())
        bare.model.save_weights(weights, overwrite=True)
    manifest = make_manifest(resolved, name, system, weights_file=weights, steps_done=done,
                             steps_planned=planned, train_seconds=seconds, command=command)
    write_manifest(manifest, manifest_file)
    return manifest


def main(argv: list[str] | None = None) -> int:
    from semsim.scenario.loader import ScenarioError, load_scenario
    from semsim.weights import WEIGHTS_DIR
    from semsim.weights.manifest import learned_systems

    parser = argparse.ArgumentParser(prog="python -m semsim.weights.build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path, metavar="FILE")
    parser.add_argument("--profile", required=True, metavar="NAME")
    parser.add_argument("--systems", metavar="A,B",
                        help="only these learned systems (default: every learned one)")
    parser.add_argument("--max-seconds", type=float, metavar="S",
                        help="override the profile's train.max_seconds (cuts training short)")
    parser.add_argument("--workdir", type=Path, metavar="DIR",
                        help="keep the training checkpoints here: rerunning the same command "
                             "continues an interrupted build (default: a temporary directory)")
    parser.add_argument("--root", type=Path, default=WEIGHTS_DIR,
                        help="weights directory (default: the package's)")
    args = parser.parse_args(argv)
    try:
        resolved = load_scenario(args.scenario, args.profile)
    except ScenarioError as err:
        print("\n".join(err.lines()), file=sys.stderr)
        return 2
    learned = learned_systems(resolved)
    names = learned if args.systems is None else [n.strip() for n in args.systems.split(",")]
    unknown = [n for n in names if n not in learned]
    if unknown:
        print(f"error: --systems: {', '.join(unknown)} not a learned system of this scenario "
              f"(learned: {', '.join(learned)})", file=sys.stderr)
        return 2
    command = shlex.join(["python", "-m", "semsim.weights.build", *(argv or sys.argv[1:])])
    for name in names:
        print(f"building {resolved.scenario.name}/{args.profile}/{name}", flush=True)
        manifest = build_checkpoint(resolved, name, args.root, command, args.max_seconds,
                                    args.workdir)
        print(f"{manifest['id']}: {manifest['steps_done']}/{manifest['steps_planned']} steps, "
              f"{manifest['train_seconds']:.0f} s, validation PSNR "
              f"{manifest['validation']['psnr_db']:.2f} dB at "
              f"{manifest['validation']['snr_db']:g} dB, {manifest['weights_bytes']} bytes",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
