"""The Python API for notebooks and scripts, no YAML file needed (re-exported by
:mod:`semsim`)::

    import semsim
    scenario = semsim.load_scenario({"name": "mine", "link": {"nr": 2, "nt": 2}, ...})
    results = semsim.run(scenario, out="runs/mine")      # a ResultsFile
    system = semsim.build_system(scenario, "deepjscc")   # an untrained System
    system = semsim.trained_system("scenarios/siso_awgn.yaml", "deepjscc")  # shipped weights

A scenario is given as a mapping (what a YAML file would hold), YAML text, a file path,
or an already loaded :class:`~semsim.scenario.loader.ResolvedScenario`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semsim.scenario.loader import ResolvedScenario
from semsim.scenario.loader import load_scenario as _load


def load_scenario(source: dict | str | Path | ResolvedScenario, profile: str | None = None,
                  overrides: dict[str, Any] | None = None) -> ResolvedScenario:
    """Validate a scenario: a mapping, YAML text (a string with a newline), a file path or
    a :class:`ResolvedScenario` (returned as is when no ``profile``/``overrides``).
    ``overrides``: dotted keys set after the profile, e.g. ``{"train.steps": 200}``.
    Raises :class:`~semsim.scenario.loader.ScenarioError` listing every problem."""
    if isinstance(source, ResolvedScenario):
        if profile is None and not overrides:
            return source
        source = source.to_dict()
    return _load(source, profile, overrides)


def run(scenario: dict | str | Path | ResolvedScenario, out: str | Path, *,
        profile: str | None = None, overrides: dict[str, Any] | None = None,
        resume: bool = False, overwrite: bool = False, systems: list[str] | None = None,
        progress: bool = True):
    """Train and evaluate a scenario's systems into the run directory ``out`` (as
    ``semsim run``) and return the :class:`~semsim.report.results.ResultsFile`.
    ``resume``/``overwrite``: continue / replace a run already in ``out``; ``systems``:
    run only these names. Raises :class:`~semsim.scenario.runner.RunError` when the run
    cannot start (existing directory, data errors...)."""
    from semsim.scenario.runner import RunOptions, run_scenario

    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    resolved = load_scenario(scenario, profile, overrides)
    options = RunOptions(out_dir=Path(out), resume=resume, overwrite=overwrite,
                         systems=tuple(systems) if systems is not None else None,
                         progress=progress)
    return run_scenario(resolved, options)


def build_system(scenario: dict | str | Path | ResolvedScenario, name: str,
                 image_size: int | None = None):
    """The (untrained) :class:`~semsim.systems.base.System` named ``name`` in the scenario,
    built as the runner builds it: the scenario's link and seed, ``image_size`` (pixels,
    square; default the scenario's ``data.image_size``)."""
    from semsim.seeding import set_seed
    from semsim.systems.registry import get_system_type

    resolved = load_scenario(scenario)
    entries = {s.name: s for s in resolved.scenario.systems}
    if name not in entries:
        raise KeyError(f"no system named {name!r} in scenario {resolved.scenario.name!r} "
                       f"(systems: {', '.join(entries)})")
    size = image_size or resolved.scenario.data.image_size
    set_seed(resolved.scenario.seed)
    return get_system_type(entries[name].type).factory(
        resolved.params[name], resolved.scenario.link.to_spec(), (size, size),
        resolved.scenario.seed)


class NoShippedWeights(LookupError):
    """:func:`trained_system`: no shipped checkpoint for the system, or one that does not
    match its resolved config (the message says which, and how to train instead)."""


def trained_system(scenario: dict | str | Path | ResolvedScenario, name: str,
                   profile: str | None = "standard", retrain: bool = False,
                   workdir: str | Path | None = None,
                   overrides: dict[str, Any] | None = None):
    """The learned :class:`~semsim.systems.base.System` ``name`` of the scenario, ready to
    ``transmit``: with its shipped weights (:mod:`semsim.weights.shipped`; prints the
    manifest id it used), or trained from scratch with ``retrain=True``. Built and
    prepared by the runner's own steps (``semsim run``: same build, seeds, training
    stream, validation images and :func:`~semsim.weights.shipped.prepare_weights`).

    ``profile``: the profile to apply (shipped checkpoints belong to a profile,
    ``standard``); a :class:`ResolvedScenario` keeps its own profile, and ``profile``
    must then be ``None`` or the same. ``overrides``: dotted keys set after the profile;
    keys outside the config hash (``data.test_images``, ``snr.eval_db``, ``eval.*``...)
    keep the shipped weights usable. ``retrain``: train with the profile's full training
    budget (an hour per system for ``standard`` on 2 CPU cores). ``workdir``: a run
    directory (default: a temporary one); the system's checkpoint goes to
    ``workdir/checkpoints/<name>``, where ``semsim.run(..., out=workdir, resume=True)``
    finds it. Raises :class:`NoShippedWeights` when ``retrain`` is false and no matching
    checkpoint is shipped, ``KeyError`` for an unknown system, ``ValueError`` for a
    system without learned weights."""
    import tempfile

    from semsim.data.pipeline import load_data
    from semsim.scenario.evaluation import validation_split
    from semsim.scenario.runner import RunOptions, _Run
    from semsim.weights.shipped import ShippedMismatch, find_shipped

    if isinstance(scenario, ResolvedScenario):
        if profile is not None and profile != scenario.profile:
            raise ValueError(f"the resolved scenario has profile {scenario.profile!r}, not "
                             f"{profile!r}: pass profile=None or load it with that profile")
        resolved = load_scenario(scenario, overrides=overrides)
        if overrides:  # load_scenario re-resolves from plain data, without the profile name
            resolved.profile = scenario.profile
    else:
        resolved = load_scenario(scenario, profile, overrides)
    sc = resolved.scenario
    names = [s.name for s in sc.systems]
    if name not in names:
        raise KeyError(f"no system named {name!r} in scenario {sc.name!r} "
                       f"(systems: {', '.join(names)})")
    entry = sc.system(name)
    if resolved.profile is None and not retrain:
        raise NoShippedWeights(f"scenario {sc.name!r} has no profile: shipped weights belong to "
                               "a profile (standard); pass profile=... or retrain=True")
    where = f"{sc.name}/{resolved.profile}/{name}"
    data, validation = validation_split(load_data(sc.data), sc.link.users)
    with tempfile.TemporaryDirectory(prefix="semsim-trained-") as tmp:
        out = Path(tmp) if workdir is None else Path(workdir)
        run = _Run(resolved, RunOptions(out_dir=out, retrain=retrain, progress=False))
        system = run._build(entry, data)
        if not system.trainable:
            raise ValueError(f"system {name!r} ({entry.type}) has no learned weights: use "
                             "semsim.build_system and its prepare")
        if not retrain:
            how = (f"train it with semsim.trained_system(..., retrain=True) or `semsim run "
                   f"--profile {resolved.profile}` (the profile's full training)")
            try:
                manifest = find_shipped(resolved, name, system)
            except ShippedMismatch as err:
                raise NoShippedWeights(f"the shipped weights of {where} do not match this "
                                       f"config ({err}); {how}") from err
            if manifest is None:
                raise NoShippedWeights(f"no shipped weights for {where} (semsim/weights/"
                                       f"{where}.weights.h5); {how}")
        run._prepare(entry, system, data, validation)
    return system
