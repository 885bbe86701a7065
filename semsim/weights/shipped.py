"""Using a shipped checkpoint in ``semsim run`` (the runner's prepare step calls
:func:`prepare_weights`, and :func:`weights_record` for ``results.json``).

A learned system's weights come from one of three sources, recorded per system in its
checkpoint directory (``weights.json``) and in ``results.json`` (``weights``,
``weights_manifest``, and what is known of their convergence: the shipped manifest's
``weights_convergence``, or the ``training_trend`` of weights trained here):

* ``shipped``: the package's checkpoint for (scenario, profile, system), used only when
  its manifest's config hash equals the hash of the current resolved config
  (:func:`semsim.weights.manifest.hashed_config`) and the file's SHA-256 equals the
  manifest's; it is copied into the checkpoint directory as the finished training;
* ``trained``: trained from scratch in this run (no shipped checkpoint, one that does not
  match, or ``--retrain``);
* ``resumed``: an existing checkpoint directory was continued or loaded (``--resume``,
  ``semsim eval --checkpoint``), unless it holds the shipped weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from semsim.atomic import write_text
from semsim.systems.history import validation_trend
from semsim.systems.keras_system import FINAL_STATE, FINAL_WEIGHTS
from semsim.weights import WEIGHTS_DIR
from semsim.weights.manifest import (
    checkpoint_paths,
    config_hash,
    convergence_text,
    file_sha256,
    hashed_config,
    read_manifest,
)

RECORD_FILE = "weights.json"


class ShippedMismatch(ValueError):
    """A shipped checkpoint exists but does not match (message says why)."""


def find_shipped(resolved, name: str, system, root: Path | None = None) -> dict[str, Any] | None:
    """The manifest of the shipped checkpoint of system ``name`` (under ``root``, default
    :data:`WEIGHTS_DIR`) when it matches the resolved config and its file; ``None`` when
    none is shipped. Raises :class:`ShippedMismatch` when one is shipped but its config
    hash or SHA-256 differs."""
    if resolved.profile is None:
        return None
    weights, manifest_file = checkpoint_paths(resolved.scenario.name, resolved.profile, name,
                                              WEIGHTS_DIR if root is None else root)
    if not manifest_file.exists():
        return None
    manifest = read_manifest(manifest_file)
    current = hashed_config(resolved, name, system)
    if manifest.get("config_hash") != config_hash(current):
        shipped = manifest.get("hashed_config") or {}
        changed = sorted(k for k in set(shipped) | set(current) if shipped.get(k) != current.get(k))
        raise ShippedMismatch(f"config hash differs (changed: {', '.join(changed) or '?'})")
    if not weights.exists():
        raise ShippedMismatch(f"{weights.name} is missing")
    if file_sha256(weights) != manifest.get("weights_sha256"):
        raise ShippedMismatch(f"SHA-256 of {weights.name} differs from its manifest")
    manifest["_weights_path"] = str(weights)
    return manifest


def _write_record(workdir: Path, source: str, manifest: str | None,
                  convergence: dict[str, Any] | None = None) -> None:
    (workdir / RECORD_FILE).write_text(json.dumps({"weights": source, "manifest": manifest,
                                                   "convergence": convergence}))


def prepare_weights(resolved, name: str, system, workdir: Path, resume: bool,
                    retrain: bool, plan: str = "") -> bool:
    """Choose where system ``name``'s weights come from, before its ``prepare``; returns
    the ``resume`` flag to pass to it (``True`` once a shipped checkpoint is installed as
    the finished training in ``workdir``). Prints the decision; ``plan`` (e.g. ``"56,000
    steps of batch 64"``) is added to the line that announces a training."""
    plan = f": {plan}" if plan else ""
    if not system.trainable:
        return resume
    workdir = Path(workdir)
    previous = weights_record(workdir)
    if resume and system.has_checkpoint(workdir):
        if previous.get("weights") != "shipped":
            _write_record(workdir, "resumed", None)
        print(f"{name}: weights from the existing checkpoint in {workdir}", flush=True)
        return True
    manifest = None
    if retrain:
        why = "training from scratch (--retrain)"
    else:
        where = f"{resolved.scenario.name}/{resolved.profile}" if resolved.profile else \
            f"{resolved.scenario.name} without a profile"
        why = f"no shipped weights for {where}; training from scratch"
        try:
            manifest = find_shipped(resolved, name, system)
        except ShippedMismatch as err:
            why = f"shipped weights not used: {err}; training"
    if manifest is None:
        print(f"{name}: {why}{plan}", flush=True)
        _write_record(workdir, "trained", None)
        return resume
    shutil.copyfile(manifest["_weights_path"], workdir / FINAL_WEIGHTS)
    # The steps the shipped training did, so an under-trained checkpoint is reported so.
    write_text(workdir / FINAL_STATE, json.dumps({"steps_done": int(manifest["steps_done"]),
                                                  "steps_planned": int(manifest["steps_planned"])}))
    _write_record(workdir, "shipped", manifest["id"], manifest.get("convergence"))
    state = "UNDER-TRAINED, " if manifest.get("under_trained") else ""
    converged = convergence_text(manifest.get("convergence"))
    print(f"{name}: using shipped weights {manifest['id']} ({state}{manifest['steps_done']} of "
          f"{manifest['steps_planned']} steps; {converged + '; ' if converged else ''}config "
          "hash and SHA-256 verified; --retrain trains instead)", flush=True)
    return True


def weights_record(workdir: Path) -> dict[str, Any]:
    """``{"weights": "shipped"|"trained"|"resumed", "weights_manifest": id or None,
    "weights_convergence": the shipped manifest's convergence entry or None,
    "training_trend": the second half of the validation history of weights trained in
    this directory (:func:`semsim.systems.history.validation_trend`) or None}`` of a
    checkpoint directory, or ``{}`` (classic systems, nothing recorded)."""
    path = Path(workdir) / RECORD_FILE
    if not path.exists():
        return {}
    record = json.loads(path.read_text())
    trained_here = record.get("weights") != "shipped"
    return {"weights": record.get("weights"), "weights_manifest": record.get("manifest"),
            "weights_convergence": record.get("convergence"),
            "training_trend": validation_trend(workdir) if trained_here else None}
