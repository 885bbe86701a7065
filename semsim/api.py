"""The Python API for notebooks and scripts, no YAML file needed (re-exported by
:mod:`semsim`)::

    import semsim
    scenario = semsim.load_scenario({"name": "mine", "link": {"nr": 2, "nt": 2}, ...})
    results = semsim.run(scenario, out="runs/mine")      # a ResultsFile
    system = semsim.build_system(scenario, "deepjscc")   # an untrained System

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
