"""Registry of system types: the only place the runner learns what systems exist.

Each type has a name (a scenario's ``type:``), a pydantic parameter model and a builder
``build(params, link: LinkSpec, image_size: (H, W), seed) -> System``. The shipped types
are listed in :data:`SHIPPED` with their parameter models (in :mod:`semsim.systems.params`,
which imports no TensorFlow) and their builders as ``"module:function"`` paths, imported
only when a system is built (:attr:`SystemType.factory`): reading and validating a
scenario never imports TensorFlow, Keras or Sionna. User code and tests add types at run
time with the :func:`register_system` decorator::

    @register_system("toy", params=ToyParams, description="a toy system")
    def build(params: ToyParams, link: LinkSpec, image_size: tuple[int, int], seed: int):
        return ToySystem(...)

The runner calls :func:`semsim.seeding.set_seed` with the scenario's seed right before
each factory call, so weight initializers (which draw their seeds when a layer is
constructed) are reproducible. The loader validates each ``systems:`` entry's ``params``
against the type's model (unknown keys are errors), and the runner calls the factory.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

import pydantic

from semsim.systems.base import LinkSpec, System

Builder = Callable[[pydantic.BaseModel, LinkSpec, tuple[int, int], int], System]

#: The shipped system types: name -> (parameter model in :mod:`semsim.systems.params`,
#: builder as ``"module:function"``, one-line description).
SHIPPED: dict[str, tuple[str, str, str]] = {
    "deepjscc": ("DeepJSCCParams", "semsim.systems.deepjscc:build_deepjscc",
                 "Fixed-rate Deep JSCC (conv autoencoder, PReLU, per-image power "
                 "normalization)."),
    "adjscc": ("DeepJSCCParams", "semsim.systems.deepjscc:build_adjscc",
               "ADJSCC: Deep JSCC with SNR attention-feature modules."),
    "separation": ("SeparationParams", "semsim.systems.separation:build_separation",
                   "Image codec + LDPC + QAM over the same MIMO link (classic digital "
                   "baseline)."),
    "capacity_bound": ("CapacityBoundParams", "semsim.systems.capacity_bound:build_capacity_bound",
                       "HEVC intra at the per-image MIMO capacity (upper bound of "
                       "separation)."),
    "swinjscc": ("SwinJSCCParams", "semsim.systems.swinjscc:build_swinjscc",
                 "SwinJSCC with SNR and rate adaptation (SA&RA) on the same MIMO link."),
    "multiuser": ("MultiUserParams", "semsim.systems.multiuser:build_multiuser",
                  "Multi-user MIMO SemCom with entropy-and-channel-adaptive rate control "
                  "(Chen et al.)."),
    "reference": ("ReferenceParams", "semsim.systems.reference:build",
                  "Channel- and content-adaptive Swin JSCC with learned map selection and "
                  "symbol pruning (2D-entropy-aware Gumbel-Softmax policies) over a MIMO "
                  "link with LMMSE detection."),
    "mijscc": ("MIJSCCParams", "semsim.systems.mijscc:build_mijscc",
               "MIJSCC (InfoMax-aided JSCC, optional q-bit constellation), A-MIJSCC "
               "(``adaptive``), or Deep JSCC with the same networks (``mi_weight: 0``), each "
               "with a frozen-encoder classifier reporting ``accuracy``."),
    "classified": ("ClassifiedParams", "semsim.systems.mijscc_separation:build_classified",
                   "Another system (e.g. HEVC + LDPC + QAM separation, or HEVC at capacity) "
                   "with a 3-layer FC classifier trained on its decoded images, reporting "
                   "``accuracy``."),
    "scsc": ("SCSCParams", "semsim.systems.scsc.system:build_scsc",
             "SCSC: PPEN + HEVC/LDPC/QPSK/SVD chain + PCEN, trained through a proxy "
             "(Han et al.)."),
}


@dataclasses.dataclass(frozen=True)
class SystemType:
    """A system type: ``params`` (its pydantic model), ``builder`` (the build function,
    or its ``"module:function"`` path, imported on first use of :attr:`factory`) and a
    one-line ``description``."""

    name: str
    params: type[pydantic.BaseModel]
    builder: Builder | str
    description: str

    @property
    def factory(self) -> Builder:
        """The build function (imports its module, with TensorFlow, on first use)."""
        if not isinstance(self.builder, str):
            return self.builder
        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(module), function)


_REGISTRY: dict[str, SystemType] = {}


def _register(stype: SystemType) -> None:
    if stype.name in _REGISTRY:
        raise ValueError(f"system type {stype.name!r} is registered twice")
    _REGISTRY[stype.name] = stype


def register_system(name: str, params: type[pydantic.BaseModel], description: str = ""):
    """Decorator registering ``factory`` under ``name`` (a scenario's ``type:``)."""

    def decorate(factory):
        _load_shipped()
        _register(SystemType(name, params, factory, description or (factory.__doc__ or "")))
        return factory

    return decorate


def _load_shipped() -> None:
    if SHIPPED.keys() <= _REGISTRY.keys():
        return
    from semsim.systems import params as models

    for name, (model, builder, description) in SHIPPED.items():
        _register(SystemType(name, getattr(models, model), builder, description))


def system_types() -> dict[str, SystemType]:
    """All registered system types, by name."""
    _load_shipped()
    return dict(_REGISTRY)


def shipped_system_types() -> dict[str, SystemType]:
    """The system types semsim itself ships (:data:`SHIPPED`), without any registered at
    run time by user code or tests."""
    return {name: stype for name, stype in system_types().items() if name in SHIPPED}


def get_system_type(name: str) -> SystemType:
    types = system_types()
    if name not in types:
        raise KeyError(f"unknown system type {name!r}; known: {', '.join(sorted(types))}")
    return types[name]
