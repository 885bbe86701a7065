"""Config hash, validation PSNR and manifest of a shipped checkpoint.

Config hash
-----------
SHA-256 (hex) of the canonical JSON (``sort_keys``, no spaces, ASCII) of
:func:`hashed_config`: everything of the resolved scenario that determines the trained
weights of one system, namely

* ``code_version``: :data:`semsim.weights.MODEL_CODE_VERSION`;
* ``type`` and the resolved ``params`` without the keys of :data:`NON_WEIGHT_PARAMS`
  (evaluation-only);
* ``train_snr_db``: the system's training SNR range (its own, else ``snr.train_db``);
* ``link``: the resolved link section (antennas, users, fading, correlations, SNR
  definition, CSI, detector);
* ``data``: ``source``, ``path``, ``image_size``, ``train_images``, ``augment``, ``labels``;
* ``train``: the resolved train section without ``max_seconds`` (a safety budget; steps
  done are in the manifest) and ``jit_compile`` (same model with or without XLA);
* ``seed``: the scenario seed;
* ``variable_shapes``: the shapes of the built model's weights, in order.

``params``, ``link``, ``data`` and ``train`` leave out every field at its schema default,
so a new option whose default keeps the old behaviour does not change the hash.

Validation PSNR
---------------
The first :data:`VALIDATION_IMAGES` test images of the resolved scenario (rounded down
to a multiple of ``link.users``), sent once at the middle SNR of its evaluation grid
(``eval_db[len // 2]``) over the channel realization the runner's
:class:`~semsim.scenario.channels.SharedChannels` draws for (SNR index 0, batch 0) from
seed ``derive_seed(seed, 9, 0)``, with every generator seeded with
``derive_seed(seed, 9, 1)`` right before ``transmit``; no ``target_cr`` (a rate-adaptive
system uses its default rate). The figure is the mean over those images of the runner's
per-image PSNR (dB).

Convergence
-----------
A manifest may carry ``convergence``, measured after the build by
``benchmarks/convergence.py`` on the held-out validation images: ``converged`` (doubling
the steps raised validation PSNR by less than 0.3 dB), ``gain_db``, ``steps`` ``[N, 2N]``,
``method`` (``"from scratch"``: a second run of ``2N`` steps; ``"warm restart"``: ``N``
more steps from the checkpoint with the profile's recipe run again), ``validation`` (the
measure: held-out images x seeded channel draws, SNR), ``psnr_db`` ``[at N, at 2N]``,
``command`` and optionally ``checkpoint_2n`` (the command that made the ``2N`` weights
when ``command`` only judged existing files) and ``spread`` (what a second training of the
same budget measured). A verdict pooled over several trainings per budget
(``benchmarks/convergence.py --seeds``) gives the means in ``psnr_db`` and their
difference in ``gain_db``, and adds ``interval_db`` (its 95 % interval), ``verdict``,
``trainings_db`` (every training's figure, by budget) and ``trainings_made_by`` (the
commands). It is not hashed; the runner copies it into ``results.json``
(``weights_convergence``) and marks a system ``NOT converged`` in its tables and plots.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import typing
from pathlib import Path
from typing import Any

import numpy as np

from semsim.weights import MODEL_CODE_VERSION, WEIGHTS_DIR

MANIFEST_VERSION = 1
#: Parameters that only affect evaluation, left out of the config hash.
NON_WEIGHT_PARAMS = ("eval_batch_size",)
#: Validation images (at most; a multiple of ``link.users``).
VALIDATION_IMAGES = 16
#: ``derive_seed`` key of the validation channel and noise.
VALIDATION_KEY = 9


def hashed_config(resolved, name: str, system) -> dict[str, Any]:
    """What the config hash of system ``name`` covers (see the module docstring);
    ``system``: the built system (its model gives ``variable_shapes``)."""
    scenario = resolved.scenario
    entry = scenario.system(name)
    # Sections without the fields left at their defaults, so that a new option of the
    # schema (default: the old behaviour) does not invalidate every shipped checkpoint.
    train = scenario.train_for(name).model_dump(
        mode="json", exclude={"max_seconds", "jit_compile"}, exclude_defaults=True)
    data = scenario.data.model_dump(
        mode="json", exclude_defaults=True,
        include={"source", "path", "image_size", "train_images", "augment", "labels"})
    return {
        "code_version": MODEL_CODE_VERSION,
        "type": entry.type,
        "params": {k: v for k, v in resolved.params[name].model_dump(
            mode="json", exclude_defaults=True).items() if k not in NON_WEIGHT_PARAMS},
        "train_snr_db": list(entry.train_snr_db or scenario.snr.train_db),
        "link": scenario.link.model_dump(mode="json", exclude_defaults=True),
        "data": data,
        "train": train,
        "seed": scenario.seed,
        "variable_shapes": [list(v.shape) for v in system.model.weights],
    }


def learned_systems(resolved) -> list[str]:
    """Names of the scenario's learned systems: those whose registered factory is
    annotated to return a trainable system (:class:`~semsim.systems.base.System`)."""
    from semsim.systems.registry import get_system_type

    names = []
    for entry in resolved.scenario.systems:
        factory = get_system_type(entry.type).factory
        returned = typing.get_type_hints(factory).get("return")
        if getattr(returned, "trainable", False):
            names.append(entry.name)
    return names


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a :func:`hashed_config` dict."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_paths(scenario: str, profile: str, system: str,
                     root: Path = WEIGHTS_DIR) -> tuple[Path, Path]:
    """``(weights, manifest)`` paths of a shipped checkpoint."""
    folder = Path(root) / scenario / profile
    return folder / f"{system}.weights.h5", folder / f"{system}.manifest.json"


def manifest_id(scenario: str, profile: str, system: str, digest: str) -> str:
    """``<scenario>/<profile>/<system>@<first 12 hex digits of the config hash>``."""
    return f"{scenario}/{profile}/{system}@{digest[:12]}"


def machine_info() -> dict[str, Any]:
    """CPU model, core counts and library versions of this machine."""
    import keras
    import tensorflow as tf

    from semsim import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable,
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "semsim": __version__}


def validation_setup(resolved) -> dict[str, Any]:
    """The validation definition of a resolved scenario (numbers, see the module docstring)."""
    from semsim.scenario.channels import derive_seed

    scenario = resolved.scenario
    grid = scenario.snr.eval_db
    users = scenario.link.users
    return {"images": (VALIDATION_IMAGES // users) * users,
            "snr_db": float(grid[len(grid) // 2]),
            "channel_seed": derive_seed(scenario.seed, VALIDATION_KEY, 0),
            "noise_seed": derive_seed(scenario.seed, VALIDATION_KEY, 1),
            "metric": "mean per-image PSNR (dB) of the first test images at the middle "
                      "evaluation SNR, one seeded channel and noise draw"}


def validation_images(resolved, count: int | None = None) -> np.ndarray:
    """``float32 [n, H, W, 3]`` in ``[0, 1]``: the first ``count`` (default: the
    validation count) test images of the resolved scenario."""
    from semsim.data.pipeline import load_data

    n = validation_setup(resolved)["images"] if count is None else count
    test = load_data(resolved.scenario.data).test
    if len(test) < n:
        raise ValueError(f"the test set has {len(test)} images, validation needs {n}")
    return test[:n].astype(np.float32) / 255.0


def validation_transmit(resolved, system, images: np.ndarray | None = None,
                        snr_db: float | None = None, draw: int = 0):
    """``(images, result)``: the validation images (``float32 [n, H, W, 3]`` in ``[0, 1]``)
    and the :class:`~semsim.systems.base.TransmitResult` of a prepared ``system`` on them
    (see the module docstring); ``images``/``snr_db`` override the defined images and SNR
    (same seeds). ``draw > 0`` sends them over another seeded channel and noise draw (the
    channel of batch index ``draw`` of the same :class:`SharedChannels`, the noise seed
    derived from ``draw``); ``draw = 0`` is the manifest's definition."""
    from semsim.scenario.channels import SharedChannels, derive_seed
    from semsim.seeding import set_seed

    setup = validation_setup(resolved)
    images = validation_images(resolved) if images is None else images
    snr = setup["snr_db"] if snr_db is None else float(snr_db)
    h = SharedChannels(resolved.scenario.link, setup["channel_seed"]).get(0, draw, len(images))
    set_seed(derive_seed(setup["noise_seed"], draw) if draw else setup["noise_seed"])
    return images, system.transmit(images, snr, h=h)


def validation_psnr(resolved, system, images: np.ndarray | None = None,
                    snr_db: float | None = None) -> float:
    """Validation PSNR (dB) of a prepared ``system``: mean per-image PSNR of
    :func:`validation_transmit`'s reconstructions (same arguments)."""
    from semsim.metrics import mean_psnr

    images, result = validation_transmit(resolved, system, images, snr_db)
    return mean_psnr(images, np.asarray(result.images_hat, np.float32))


#: A rate-adaptive system's mean CR at ``N`` and ``2N`` steps that differ by more than
#: this fraction are named in the verdict: the PSNR change then compares two operating points.
CR_MOVE_FRACTION = 0.01


def convergence_text(convergence: dict[str, Any] | None) -> str:
    """``"NOT converged: +0.67 dB from 7000 to 14000 steps (from scratch)"`` (or
    ``"converged: ..."``) for a manifest's ``convergence`` entry; ``""`` when unmeasured.
    When its validation CR (``cr``: at ``N`` and ``2N`` steps) moved by more than
    :data:`CR_MOVE_FRACTION`, the parentheses add it: ``(warm restart; CR 0.186 ->
    0.141)``."""
    if not convergence:
        return ""
    word = "converged" if convergence["converged"] else "NOT converged"
    low, high = convergence["steps"]
    how = convergence["method"]
    cr = convergence.get("cr")
    if cr and abs(cr[1] - cr[0]) > CR_MOVE_FRACTION * cr[0]:
        how += f"; CR {cr[0]:.3f} -> {cr[1]:.3f}"
    return f"{word}: {convergence['gain_db']:+.2f} dB from {low} to {high} steps ({how})"


def make_manifest(resolved, name: str, system, *, weights_file: Path, steps_done: int,
                  steps_planned: int, train_seconds: float, command: str) -> dict[str, Any]:
    """The manifest of a freshly trained checkpoint (validation PSNR computed here)."""
    config = hashed_config(resolved, name, system)
    digest = config_hash(config)
    scenario = resolved.scenario
    setup = validation_setup(resolved)
    setup["psnr_db"] = validation_psnr(resolved, system)
    under = steps_done < steps_planned
    return {
        "manifest_version": MANIFEST_VERSION,
        "id": manifest_id(scenario.name, resolved.profile, name, digest),
        "scenario": scenario.name,
        "profile": resolved.profile,
        "system": name,
        "type": scenario.system(name).type,
        "config_hash": digest,
        "hashed_config": config,
        "steps_done": int(steps_done),
        "steps_planned": int(steps_planned),
        "under_trained": under,
        "note": (f"UNDER-TRAINED: stopped after {steps_done} of {steps_planned} planned steps"
                 if under else "trained for all planned steps"),
        "train_seconds": round(float(train_seconds), 1),
        "machine": machine_info(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "validation": setup,
        "weights_file": Path(weights_file).name,
        "weights_bytes": Path(weights_file).stat().st_size,
        "weights_sha256": file_sha256(weights_file),
        "command": command,
    }


def write_manifest(manifest: dict[str, Any], path: Path) -> None:
    Path(path).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n",
                          encoding="utf-8")


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def shipped_manifests(root: Path = WEIGHTS_DIR) -> list[Path]:
    """Every shipped manifest file, sorted."""
    return sorted(Path(root).glob("*/*/*.manifest.json"))
