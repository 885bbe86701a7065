"""Registry of system types: the only place the runner learns what systems exist.

A system module registers a factory with a pydantic parameter model::

    @register_system("reference", params=ReferenceParams)
    def build(params: ReferenceParams, link: LinkSpec, image_size: tuple[int, int], seed: int):
        return ReferenceSystem(...)

The runner calls :func:`semsim.seeding.set_seed` with the scenario's seed right before
each factory call, so weight initializers (which draw their seeds when a layer is
constructed) are reproducible. The scenario schema validates each ``systems:`` entry's ``params`` against the
registered model (unknown keys are errors), and the runner calls the factory.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

import pydantic

from semsim.systems.base import LinkSpec, System

#: Modules that register systems; imported on first use of the registry.
SYSTEM_MODULES: tuple[str, ...] = (
    "semsim.systems.deepjscc",
    "semsim.systems.separation",
    "semsim.systems.swinjscc",
    "semsim.systems.multiuser",
    "semsim.systems.reference",
    "semsim.systems.mijscc",
    "semsim.systems.mijscc_separation",
    "semsim.systems.scsc.system",
)


@dataclasses.dataclass(frozen=True)
class SystemType:
    name: str
    params: type[pydantic.BaseModel]
    factory: Callable[[pydantic.BaseModel, LinkSpec, tuple[int, int], int], System]
    description: str


_REGISTRY: dict[str, SystemType] = {}


def register_system(name: str, params: type[pydantic.BaseModel], description: str = ""):
    """Decorator registering ``factory`` under ``name`` (a scenario's ``type:``)."""

    def decorate(factory):
        if name in _REGISTRY:
            raise ValueError(f"system type {name!r} is registered twice")
        _REGISTRY[name] = SystemType(name, params, factory, description or (factory.__doc__ or ""))
        return factory

    return decorate


def _load_all() -> None:
    for module in SYSTEM_MODULES:
        importlib.import_module(module)


def system_types() -> dict[str, SystemType]:
    """All registered system types, by name."""
    _load_all()
    return dict(_REGISTRY)


def shipped_system_types() -> dict[str, SystemType]:
    """The system types semsim itself ships (those of :data:`SYSTEM_MODULES`), without
    any registered at run time by user code or tests."""
    return {
        name: stype
        for name, stype in system_types().items()
        if stype.factory.__module__ in SYSTEM_MODULES
    }


def get_system_type(name: str) -> SystemType:
    types = system_types()
    if name not in types:
        raise KeyError(f"unknown system type {name!r}; known: {', '.join(sorted(types))}")
    return types[name]
