"""The scenario schema: one pydantic model per section of a scenario YAML file.

Every model forbids unknown keys. The link and SNR sections (and the :class:`Strict` base)
are in :mod:`semsim.scenario.schema_link`. Cross-field rules (detector vs antenna counts,
CSI options vs CSI mode, ``match_cr_of`` targets, unique system names) are model
validators, so :mod:`semsim.scenario.loader` reports them like any other problem.
A system's ``params`` are checked against the pydantic model its type registered
(:mod:`semsim.systems.registry`) by the loader, which knows each entry's path.

Units: SNRs in dB (per-receive-antenna average SNR); correlations are the
coefficients of the exponential model (0 = uncorrelated); ``max_seconds`` in
seconds of wall-clock time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from semsim.scenario.schema_link import LinkConfig, SNRConfig, SnrDb, Strict, check_range
from semsim.systems.base import TrainSpec

#: Profile names the shipped scenarios use (``--profile``); a scenario may define any
#: other name that matches :data:`PROFILE_NAME_PATTERN`.
PROFILE_NAMES = ("quick", "standard", "paper")
PROFILE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,39}$"

ProfileName = Annotated[str, Field(pattern=PROFILE_NAME_PATTERN)]


class DataConfig(Strict):
    """Image data (see :mod:`semsim.data`).

    ``source``: ``builtin`` (natural colour photographs bundled with installed
    packages: random crops for training, tiles of held-out photographs for testing; no
    download; not CIFAR-10; see docs/data.md), ``cifar10`` (Keras's loader, or a local
    ``cifar-10-batches-py`` directory given as ``path``) or ``folder`` (PNG/JPEG files
    under ``path``; ``train_glob``/``test_glob`` select the splits, default
    ``train/*`` and ``test/*``; ``test_crop``: ``center`` crop of ``image_size`` or the
    ``full`` images, which must then all have one size) or ``digits`` (scikit-learn's
    bundled 8x8 handwritten digits, labelled, upsampled; no download).
    ``image_size``: patch/crop size (pixels, square). ``train_images``/``test_images``
    cap the number of images used (training photographs for ``builtin``; ``None``:
    all). ``augment``: random horizontal flips in training. ``labels``: hand
    ``(images, labels)`` pairs to training and the test labels to systems that use
    them (cifar10 and digits).
    """

    source: Literal["builtin", "cifar10", "folder", "digits"] = "builtin"
    path: str | None = None
    image_size: Annotated[int, Field(ge=8, le=4096)] = 32
    train_images: Annotated[int, Field(gt=0)] | None = None
    test_images: Annotated[int, Field(gt=0)] | None = None
    augment: bool = True
    labels: bool = False
    train_glob: Annotated[list[str], Field(min_length=1)] | None = None
    test_glob: Annotated[list[str], Field(min_length=1)] | None = None
    test_crop: Literal["center", "full"] | None = None

    @model_validator(mode="after")
    def _options_match_source(self) -> DataConfig:
        if self.source == "folder":
            if self.path is None:
                raise ValueError("path: required with source 'folder'")
            self.train_glob = self.train_glob or ["train/*"]
            self.test_glob = self.test_glob or ["test/*"]
            self.test_crop = self.test_crop or "center"
        else:
            for key in ("train_glob", "test_glob", "test_crop"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: only allowed with source 'folder', "
                                     f"source is {self.source!r}")
        if self.source == "builtin" and self.path is not None:
            raise ValueError("path: not allowed with source 'builtin' (the images are embedded)")
        if self.source == "digits" and self.path is not None:
            raise ValueError("path: not allowed with source 'digits' (the images are embedded)")
        if self.labels and self.source not in ("cifar10", "digits"):
            raise ValueError(f"labels: only sources 'cifar10' and 'digits' have labels, "
                             f"source is {self.source!r}")
        return self


class TrainConfig(Strict):
    """Training budget and optimizer (mapped onto :class:`semsim.systems.base.TrainSpec`).

    Give ``steps`` (optimizer steps) or ``epochs`` (then ``steps = epochs *
    steps_per_epoch``), not both. ``steps_per_epoch`` defaults to the number of full
    batches in the training set (at most ``steps``); with ``steps``, the epochs are
    ``ceil(steps / steps_per_epoch)`` and each is shortened to ``ceil(steps / epochs)``
    steps, so the run trains ``steps`` exactly when the epoch count divides it, else at
    most ``epochs - 1`` steps more (never a whole extra epoch). ``max_seconds``: optional
    wall-clock budget per system. ``lr_schedule``: ``constant`` (``learning_rate``
    throughout) or ``cosine`` (cosine decay from ``learning_rate`` to 1 % of it over the
    planned steps). ``distribute``: ``none``, ``mirrored`` (all local GPUs; ``batch_size``
    stays the global batch) or ``multi_worker`` (several machines, each with its own
    ``TF_CONFIG``), see :mod:`semsim.systems.distribute`. ``precision``: ``float32`` (default),
    ``mixed_float16`` or ``mixed_bfloat16``: the dtype policy of the learned blocks (the
    physical layer stays float32/complex64), see :mod:`semsim.systems.precision`.
    ``clip_norm``: optional bound on the global norm of each step's gradient (all
    trainable weights together; Keras ``global_clipnorm``): a rare huge gradient then
    moves the weights no more than a gradient of that norm would.
    """

    steps: Annotated[int, Field(gt=0)] | None = None
    epochs: Annotated[int, Field(gt=0)] | None = None
    steps_per_epoch: Annotated[int, Field(gt=0)] | None = None
    batch_size: Annotated[int, Field(gt=0)] = 32
    learning_rate: Annotated[float, Field(gt=0.0)] = 1e-3
    lr_schedule: Literal["constant", "cosine"] = "constant"
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    clip_norm: Annotated[float, Field(gt=0.0)] | None = None
    max_seconds: Annotated[float, Field(gt=0.0)] | None = None
    jit_compile: bool = True
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"

    @model_validator(mode="after")
    def _one_budget(self) -> TrainConfig:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("steps, epochs: give one of them, not both")
        if self.steps is None and self.epochs is None:
            raise ValueError("steps, epochs: give one of them (the training budget)")
        return self

    def to_spec(self, snr_range_db: tuple[float, float], seed: int,
                train_batches: int) -> TrainSpec:
        """``train_batches``: full batches in the training set (default epoch length)."""
        per_epoch = self.steps_per_epoch or train_batches
        if self.steps is not None:
            per_epoch = min(per_epoch, self.steps)  # an epoch never exceeds the budget
            per_epoch = -(-self.steps // -(-self.steps // per_epoch))  # even epochs
        steps = self.steps if self.steps is not None else self.epochs * per_epoch
        return TrainSpec(
            steps=steps, steps_per_epoch=per_epoch, batch_size=self.batch_size,
            learning_rate=self.learning_rate, lr_schedule=self.lr_schedule,
            optimizer=self.optimizer,
            weight_decay=self.weight_decay, clip_norm=self.clip_norm,
            snr_range_db=tuple(snr_range_db),
            max_seconds=self.max_seconds, jit_compile=self.jit_compile,
            precision=self.precision, seed=seed,
        )


class EvalConfig(Strict):
    """Evaluation: ``batch_size`` images per channel draw; ``samples``: images shown
    in the original-vs-reconstruction grid. ``bd_anchor``: the curve every other one is
    compared with by Bjontegaard deltas (BD-rate in percent CBR at equal PSNR, BD-PSNR in
    dB at equal CBR, per SNR; written to results.json and report.md, see
    :mod:`semsim.report.bd`): a system name or a key of ``bd_curves``. ``bd_curves``: curve
    name -> the systems whose (CBR, PSNR) points at one SNR form that curve (a rate sweep:
    the same scheme at different rates; a system may be in several curves); a system in
    no curve is a curve of one point. ``bd_envelope``: curves of ``bd_curves`` that are
    one scheme choosing its best configuration per CBR (e.g. the chain's (Q, code rate)):
    at each SNR only their upper envelope counts (no other point at a CBR <= and a PSNR
    >=). A delta needs at least 4 distinct rates on both curves (after the envelope),
    otherwise it is null with the reason."""

    batch_size: Annotated[int, Field(gt=0)] = 32
    samples: Annotated[int, Field(gt=0, le=16)] = 4
    bd_anchor: str | None = None
    bd_curves: dict[str, Annotated[list[str], Field(min_length=1)]] | None = None
    bd_envelope: list[str] | None = None

    def check_bd(self, names: list[str]) -> None:
        """Raise ``ValueError`` unless the BD options refer to systems ``names``."""
        curves = self.bd_curves or {}
        if curves and self.bd_anchor is None:
            raise ValueError("eval.bd_curves: needs eval.bd_anchor (the curve compared against)")
        seen: dict[str, str] = {}
        for curve, members in curves.items():
            for name in members:
                if name not in names:
                    raise ValueError(f"eval.bd_curves[{curve!r}]: {name!r} is not a system of "
                                     f"this scenario; systems: {', '.join(names)}")
                if members.count(name) > 1:
                    raise ValueError(f"eval.bd_curves[{curve!r}]: {name!r} is listed twice")
                seen.setdefault(name, curve)
            if curve in names and curve not in members:
                raise ValueError(f"eval.bd_curves: curve {curve!r} is named like a system "
                                 "outside it")
        if self.bd_anchor is not None and self.bd_anchor not in names and \
                self.bd_anchor not in curves:
            raise ValueError(f"eval.bd_anchor: {self.bd_anchor!r} is not a system of this "
                             f"scenario nor a curve of eval.bd_curves; systems: {', '.join(names)}")
        if self.bd_anchor in seen and self.bd_anchor not in curves:
            raise ValueError(f"eval.bd_anchor: {self.bd_anchor!r} belongs to curve "
                             f"{seen[self.bd_anchor]!r}; name that curve")
        for curve in self.bd_envelope or []:
            if curve not in curves:
                raise ValueError(f"eval.bd_envelope: {curve!r} is not a curve of "
                                 f"eval.bd_curves; curves: {', '.join(curves) or 'none'}")
        if len(set(self.bd_envelope or [])) < len(self.bd_envelope or []):
            raise ValueError("eval.bd_envelope: a curve is listed twice")


def merge_train(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a ``train`` mapping) with the keys of ``change``; ``steps`` and
    ``epochs`` are alternative budgets, so a change naming one drops the other."""
    out = dict(base)
    for budget, other in (("steps", "epochs"), ("epochs", "steps")):
        if budget in change and other not in change:
            out.pop(other, None)
    out.update(change)
    return out


class SystemConfig(Strict):
    """One compared system: ``name`` (unique; a directory name), registered ``type``,
    its ``params`` (checked against the type's pydantic model), optional
    ``match_cr_of`` (another system's name: this one then receives that system's mean
    CR per SNR as ``target_cr``), ``train_snr_db`` (overrides ``snr.train_db``) and
    ``train`` (keys of the scenario's ``train`` section that differ for this system,
    e.g. ``{steps: 28000}`` for a network that needs more steps than the others; see
    :meth:`Scenario.train_for`)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    match_cr_of: str | None = None
    train_snr_db: tuple[SnrDb, SnrDb] | None = None
    train: dict[str, Any] | None = None

    @field_validator("train_snr_db")
    @classmethod
    def _train_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        return check_range(value)


class Scenario(Strict):
    """A resolved scenario (profile applied). See ``docs`` of each section model."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    description: Annotated[str, Field(min_length=1)]
    seed: Annotated[int, Field(ge=0)] = 0
    link: LinkConfig
    snr: SNRConfig = Field(default_factory=SNRConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    systems: Annotated[list[SystemConfig], Field(min_length=1)]
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(steps=100))
    eval: EvalConfig = Field(default_factory=EvalConfig)
    output_dir: str | None = None

    @model_validator(mode="after")
    def _systems_consistent(self) -> Scenario:
        names = [s.name for s in self.systems]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"systems: names must be unique, repeated: {', '.join(repeated)}")
        for i, entry in enumerate(self.systems):
            if entry.match_cr_of is None:
                continue
            if entry.match_cr_of == entry.name:
                raise ValueError(f"systems[{i}].match_cr_of: {entry.name!r} cannot match itself")
            if entry.match_cr_of not in names:
                raise ValueError(f"systems[{i}].match_cr_of: {entry.match_cr_of!r} is not a system "
                                 f"of this scenario; systems: {', '.join(names)}")
        evaluation_order(self.systems)
        for i, entry in enumerate(self.systems):
            if entry.train:
                try:
                    self.train_for(entry.name)
                except ValidationError as err:
                    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'train'}: "
                                         f"{e['msg']}" for e in err.errors())
                    raise ValueError(f"systems[{i}].train: {problems}") from None
        self.eval.check_bd(names)
        users = self.link.users
        if users > 1:
            # consecutive groups of `users` images share one multi-user channel use
            if self.eval.batch_size % users:
                raise ValueError(f"eval.batch_size: {self.eval.batch_size} is not a multiple of "
                                 f"link.users ({users})")
            if self.data.test_images is not None and self.data.test_images % users:
                raise ValueError(f"data.test_images: {self.data.test_images} is not a multiple "
                                 f"of link.users ({users})")
        return self

    def train_for(self, name: str) -> TrainConfig:
        """The ``train`` section that system ``name`` trains with: the scenario's, with
        the system's own ``train`` keys (:func:`merge_train`) over it."""
        entry = self.system(name)
        if not entry.train:
            return self.train
        return TrainConfig.model_validate(
            merge_train(self.train.model_dump(exclude_unset=True), entry.train))

    def system(self, name: str) -> SystemConfig:
        for entry in self.systems:
            if entry.name == name:
                return entry
        raise KeyError(f"no system named {name!r}; systems: "
                       f"{', '.join(s.name for s in self.systems)}")


def evaluation_order(systems: list[SystemConfig]) -> list[SystemConfig]:
    """Systems in scenario order, except that each comes after the one it matches.
    Raises ``ValueError`` on a ``match_cr_of`` cycle."""
    by_name = {s.name: s for s in systems}
    done: list[SystemConfig] = []
    placed: set[str] = set()

    def place(entry: SystemConfig, chain: tuple[str, ...]) -> None:
        if entry.name in placed:
            return
        if entry.name in chain:
            cycle = " -> ".join((*chain, entry.name))
            raise ValueError(f"systems: match_cr_of forms a cycle: {cycle}")
        target = by_name.get(entry.match_cr_of) if entry.match_cr_of else None
        if target is not None:
            place(target, (*chain, entry.name))
        placed.add(entry.name)
        done.append(entry)

    for entry in systems:
        place(entry, ())
    return done


class SystemOverride(Strict):
    """What a profile may change in one system: its params (merged key by key), its
    training SNR range, its ``match_cr_of`` and its own ``train`` keys (merged key by
    key over the system's, :func:`merge_train`)."""

    params: dict[str, Any] | None = None
    train_snr_db: list[Any] | None = None
    match_cr_of: str | None = None
    train: dict[str, Any] | None = None


class ProfileOverride(Strict):
    """A profile: partial sections merged over the scenario (mappings key by key,
    lists replaced). ``systems`` maps a system name to its overrides."""

    train: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    eval: dict[str, Any] | None = None
    snr: dict[str, Any] | None = None
    link: dict[str, Any] | None = None
    systems: dict[str, SystemOverride] | None = None


class ScenarioFileHeader(Strict):
    """The profile keys of a scenario file: ``profile`` (the one applied when the
    command line names none) and ``profiles`` (their overrides)."""

    profile: ProfileName | None = None
    profiles: dict[ProfileName, ProfileOverride] = Field(default_factory=dict)
