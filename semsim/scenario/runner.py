"""Running a scenario: prepare its systems, evaluate them on shared channels, report.

Run directory layout (``RunOptions.out_dir``)::

    scenario.resolved.yaml      the resolved scenario (profile applied)
    run_state.json              what this directory holds (checked by --resume)
    checkpoints/<system>/       each system's ``prepare`` workdir (learned systems:
                                backup/, final.weights.h5, history.csv, tensorboard/,
                                and model.keras: the evaluated Keras model, see
                                :mod:`semsim.systems.keras_export`)
    eval/<system>/snr_XX.npz    per-image results of one (system, SNR) point
    eval/<system>/timing.json   seconds spent training and evaluating, steps done/planned
    eval/originals.npy          the test images shown in the sample grids
    results.json, results.csv, *.png, report.md

Every file is written atomically (temporary file in the same directory, then
``os.replace``): a failed write (disk full, permissions) stops the run with a one-line
:class:`RunFailure` and leaves the previous file intact.

Reproducibility: before each system's ``prepare`` every global generator (Python,
numpy, TensorFlow/Keras, Sionna) is seeded with the scenario seed; channels are drawn
once per (SNR index, batch index) from a seed derived from the scenario seed and
handed to every system (``h``; block fading and ``none`` only: with fast fading the
channel shape depends on each system's symbol count, so systems draw their own);
before each ``transmit`` the generators are seeded from (SNR index, batch index), so
noise draws are common to all systems and identical on a rerun. Evaluation results
are saved per (system, SNR) point, so an interrupted run resumed with ``resume=True``
recomputes only unfinished points and gives the same ``results.json``.

Training honesty: a learned system whose training the wall-clock budget cut short is
evaluated as it is and marked under-trained (``steps_done < steps_planned`` in the
results); ``resume=True`` continues its training and evaluates it again (with the
systems matching its CR). A non-finite loss stops the run with a :class:`RunFailure`
naming the system and the step; its last good checkpoint stays, and the run can be
resumed with a smaller ``train.learning_rate`` (the one scenario change, with
``train.max_seconds``, that ``resume`` accepts).

Validation: :func:`~semsim.scenario.evaluation.validation_split` holds out training
images (never test images) on which learned systems log their PSNR every epoch.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from semsim import __version__
from semsim.atomic import atomic_path, write_text
from semsim.data.pipeline import ImageData, eval_batches, load_data, train_dataset
from semsim.report.bd import section_of_run
from semsim.report.results import CORE_LISTS, ResultsFile, SystemResults
from semsim.scenario.channels import SharedChannels, derive_seed
from semsim.scenario.evaluation import (
    image_quality,
    metrics_description,
    system_results,
    validation_split,
)
from semsim.scenario.loader import ResolvedScenario
from semsim.scenario.outputs import write_outputs
from semsim.scenario.schema import Scenario, SystemConfig, evaluation_order
from semsim.scenario.shard import SHARD_FILE, Shard, assignment
from semsim.seeding import set_seed
from semsim.systems.base import System, TrainReport, TransmitResult
from semsim.systems.distribute import (
    check_batch,
    strategy_for,
    worker_suffix,
    xla_under,
)
from semsim.systems.keras_export import export_model
from semsim.systems.keras_system import NonFiniteTrainingError
from semsim.systems.precision import check_precision, dtype_policy
from semsim.systems.registry import get_system_type
from semsim.weights.shipped import prepare_weights, weights_record

STATE_FILE = "run_state.json"
#: Scenario keys a resumed run may change (``train`` section): a diverged run continues
#: with a smaller learning rate, an under-trained one with another budget.
RESUME_MAY_CHANGE = ("learning_rate", "max_seconds")


class RunError(RuntimeError):
    """The run cannot start as requested (bad output directory, selection...)."""


class RunFailure(RunError):
    """The run started but failed (training diverged, a file could not be written);
    the run directory stays resumable."""


@dataclasses.dataclass
class RunOptions:
    """``out_dir``: run directory. ``resume``: continue the run already there.
    ``systems``: run only these system names (scenario order kept). ``checkpoints``:
    evaluate checkpoints of an earlier run (``<dir>/<system>/`` per system) instead of
    training into ``out_dir/checkpoints``. ``progress``: show progress bars.
    ``on_event(kind, info)``: called after each evaluation batch (``kind ==
    "eval_batch"``, ``info`` with ``system``, ``snr_index``, ``batch``) and after each
    system's ``prepare`` (``"prepared"``); tests use it to interrupt a run.
    ``tensorboard``: learned systems also write TensorBoard logs in their checkpoint
    directory. ``retrain``: train learned systems from scratch instead of using shipped
    weights (:mod:`semsim.weights.shipped`)."""

    out_dir: Path
    resume: bool = False
    overwrite: bool = False
    systems: tuple[str, ...] | None = None
    checkpoints: Path | None = None
    progress: bool = True
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    tensorboard: bool = False
    retrain: bool = False
    #: Evaluate only this shard's (system, SNR point) pairs (:mod:`semsim.scenario.shard`);
    #: the run directory then holds shard.json instead of results.json.
    shard: Shard | None = None


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, array)


def _without_resumable(scenario: dict) -> dict:
    """The resolved scenario as a resume compares it: re-validated, so that a run made
    before a schema field existed compares equal when the field is at its default, and
    without the keys a resume may change."""
    try:
        scenario = Scenario.model_validate(scenario).model_dump(mode="json")
    except ValueError:  # pydantic's ValidationError: compared as written
        pass
    def resumable(train: dict | None) -> dict | None:
        return train if not isinstance(train, dict) else \
            {k: v for k, v in train.items() if k not in RESUME_MAY_CHANGE}

    systems = scenario.get("systems")
    if isinstance(systems, list):
        systems = [{**s, "train": resumable(s.get("train"))} if isinstance(s, dict) else s
                   for s in systems]
    return {**scenario, "train": resumable(scenario.get("train", {})), "systems": systems}


def _check_result(name: str, result: TransmitResult, images: np.ndarray) -> None:
    if not isinstance(result, TransmitResult):
        raise TypeError(f"system {name!r}: transmit returned {type(result).__name__}, "
                        "expected TransmitResult")
    shape = np.shape(result.images_hat)
    if shape != images.shape:
        raise ValueError(f"system {name!r}: images_hat has shape {shape}, expected {images.shape}")
    if np.shape(result.cr) != (len(images),):
        raise ValueError(f"system {name!r}: cr has shape {np.shape(result.cr)}, "
                         f"expected ({len(images)},)")
    for key, value in result.extras.items():
        if key in CORE_LISTS or key in ("type", "target_cr", "train_seconds", "eval_seconds",
                                        "steps_done", "steps_planned"):
            raise ValueError(f"system {name!r}: extras key {key!r} clashes with a results field")
        if np.shape(value) != (len(images),):
            raise ValueError(f"system {name!r}: extras[{key!r}] has shape {np.shape(value)}, "
                             f"expected ({len(images)},) (one value per image)")


class _Run:
    def __init__(self, resolved: ResolvedScenario, options: RunOptions):
        self.resolved = resolved
        self.scenario = resolved.scenario
        self.options = options
        self.out = Path(options.out_dir)
        self.selected = self._selection()
        #: systems (re)trained or (re)evaluated in this process
        self.redone: set[str] = set()

    # ---- set-up -------------------------------------------------------------------
    def _selection(self) -> list[SystemConfig]:
        order = evaluation_order(self.scenario.systems)
        if self.options.systems is None:
            return order
        names = [s.name for s in self.scenario.systems]
        unknown = [n for n in self.options.systems if n not in names]
        if unknown:
            raise RunError(f"--systems: {', '.join(unknown)} not in this scenario "
                           f"(systems: {', '.join(names)})")
        chosen = [s for s in order if s.name in self.options.systems]
        for entry in chosen:
            if entry.match_cr_of and entry.match_cr_of not in self.options.systems:
                raise RunError(f"--systems: {entry.name!r} matches the CR of "
                               f"{entry.match_cr_of!r}; select it too")
        return chosen

    def _prepare_directory(self) -> None:
        state_path = self.out / STATE_FILE
        state = {"scenario": self.resolved.to_dict(), "profile": self.resolved.profile}
        if state_path.exists() and self.options.overwrite:
            shutil.rmtree(self.out)
        if state_path.exists():
            if not self.options.resume:
                raise RunError(f"{self.out} already holds a run; pass --resume to continue it, "
                               "--overwrite to replace it, or choose another --out")
            previous = json.loads(state_path.read_text(encoding="utf-8"))
            current = json.loads(json.dumps(state))
            old, new = (_without_resumable(s["scenario"]) for s in (previous, current))
            if old != new or previous.get("profile") != current["profile"]:
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                if previous.get("profile") != state["profile"]:
                    changed.append("profile")
                raise RunError(f"--resume: the run in {self.out} was made with a different "
                               f"scenario (changed: {', '.join(changed)}); use another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        write_text(self.out / "scenario.resolved.yaml", self.resolved.to_yaml())
        write_text(state_path, json.dumps(state, indent=2))

    def _workdir(self, name: str, trainable: bool) -> Path:
        if self.options.checkpoints is None:
            return self.out / "checkpoints" / name
        workdir = Path(self.options.checkpoints) / name
        if trainable and not (workdir.is_dir() and any(workdir.iterdir())):
            raise RunError(f"--checkpoint: no checkpoint for system {name!r} in {workdir}")
        return workdir

    # ---- one system -------------------------------------------------------------------
    def _build(self, entry: SystemConfig, data: ImageData) -> System:
        stype = get_system_type(entry.type)
        size = (data.image_size, data.image_size)
        set_seed(self.scenario.seed)
        train = self.scenario.train_for(entry.name)
        precision = train.precision
        try:
            strategy = strategy_for(train.distribute)
            check_precision(entry.type, precision, stype.factory)
        except ValueError as err:
            raise RunError(f"system {entry.name!r}: {err}") from err
        # variables of learned systems mirrored over the replicas; learned layers built
        # under the precision's dtype policy (restored afterwards)
        with strategy.scope(), dtype_policy(precision):
            system = stype.factory(self.resolved.params[entry.name],
                                   self.scenario.link.to_spec(), size, self.scenario.seed)
        if hasattr(system, "model"):
            try:
                check_batch(train.batch_size, self.scenario.link.users, strategy)
            except ValueError as err:
                raise RunError(f"system {entry.name!r}: {err}") from err
        return system

    def _prepare(self, entry: SystemConfig, system: System, data: ImageData,
                 validation: np.ndarray) -> tuple[float, TrainReport | None]:
        """Train (or load) one system: seconds spent and its :class:`TrainReport`."""
        cfg = self.scenario.train_for(entry.name)
        train_spec = dataclasses.replace(
            cfg.to_spec(entry.train_snr_db or self.scenario.snr.train_db, self.scenario.seed,
                        max(1, data.num_train // cfg.batch_size)),
            validation_images=validation, tensorboard=self.options.tensorboard,
            jit_compile=xla_under(cfg.jit_compile, strategy_for(cfg.distribute), entry.name))
        stream = train_dataset(data, cfg.batch_size, self.scenario.seed,
                               augment=self.scenario.data.augment,
                               labels=self.scenario.data.labels)
        workdir = self._workdir(entry.name, system.trainable)
        workdir.mkdir(parents=True, exist_ok=True)
        resume = self.options.resume or self.options.checkpoints is not None
        budget = f", wall-clock budget {cfg.max_seconds:,.0f} s" if cfg.max_seconds else ""
        resume = prepare_weights(self.resolved, entry.name, system, workdir, resume,
                                 self.options.retrain,
                                 f"{system.planned_steps(train_spec):,} steps of batch "
                                 f"{cfg.batch_size}{budget}")
        set_seed(self.scenario.seed)
        start = time.perf_counter()
        try:
            with strategy_for(cfg.distribute).scope():  # compile and fit on the replicas
                report = system.prepare(stream, train_spec, workdir, resume)
        except NonFiniteTrainingError as err:
            raise RunFailure(f"system {entry.name!r}: {err}") from err
        seconds = time.perf_counter() - start
        if self.options.checkpoints is None:  # never write into an earlier run's checkpoints
            export_model(entry.name, system, workdir)
        return seconds, report if isinstance(report, TrainReport) else None

    def _evaluate_point(self, entry: SystemConfig, system: System, snr_index: int,
                        batches: list[np.ndarray], channels: SharedChannels,
                        target_cr: float | None, bar) -> dict[str, np.ndarray]:
        snr = float(self.scenario.snr.eval_db[snr_index])
        quality, cr, extras, samples = {}, [], {}, []
        n_samples = min(self.scenario.eval.samples, sum(len(b) for b in batches))
        for b, images in enumerate(batches):
            h = channels.get(snr_index, b, len(images))
            set_seed(derive_seed(self.scenario.seed, 2, snr_index, b))
            labelled = {}
            if getattr(system, "uses_labels", False):  # systems that report accuracy
                if self.label_batches is None:
                    raise RunError(f"system {entry.name!r} ({entry.type}) needs labels: set "
                                   "data.labels: true with a labelled source (digits, cifar10)")
                labelled["labels"] = self.label_batches[b]
            result = system.transmit(images, snr, h=h, target_cr=target_cr, **labelled)
            _check_result(entry.name, result, images)
            images_hat = np.asarray(result.images_hat, np.float32)
            for key, value in image_quality(images, images_hat).items():
                quality.setdefault(key, []).append(value)
            cr.append(np.asarray(result.cr, np.float64))
            for key, value in result.extras.items():
                extras.setdefault(key, []).append(np.asarray(value, np.float64))
            if sum(len(s) for s in samples) < n_samples:
                samples.append(np.round(np.clip(images_hat, 0, 1) * 255).astype(np.uint8))
            bar.update(1)
            if self.options.on_event:
                self.options.on_event("eval_batch", {"system": entry.name,
                                                     "snr_index": snr_index, "batch": b})
        point = {"snr_db": np.float64(snr), "cr": np.concatenate(cr),
                 "image_size": np.asarray(batches[0].shape[1:], np.int64),
                 **{key: np.concatenate(values) for key, values in quality.items()},
                 "samples": np.concatenate(samples)[:n_samples]}
        if target_cr is not None:
            point["target_cr"] = np.float64(target_cr)
        for key, values in extras.items():
            point[f"extra__{key}"] = np.concatenate(values)
        merged = {key: point[f"extra__{key}"] for key in extras}
        for key, value in system.summarize(merged).items():
            # A test-set figure (e.g. entropy-coded side information per image) is
            # reported like the per-image extras: constant over the SNR point's images.
            point[f"extra__{key}"] = np.full(len(point["psnr"]), float(value))
        return point

    def _run_system(self, entry: SystemConfig, data: ImageData, validation: np.ndarray,
                    batches, channels, points: dict[str, list[dict]],
                    wanted: set[int] | None = None) -> SystemResults | None:
        """Prepare and evaluate one system at the SNR points ``wanted`` (all when
        ``None``); its results, or ``None`` when only some points were wanted (a shard)."""
        eval_dir = self.out / "eval" / entry.name
        eval_dir.mkdir(parents=True, exist_ok=True)
        snrs = self.scenario.snr.eval_db
        files = [eval_dir / f"snr_{i:02d}.npz" for i in range(len(snrs))]
        timing_file = eval_dir / "timing.json"
        timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
        loaded = [dict(np.load(f)) if f.exists() else None for f in files]
        if timing.get("steps_done", 0) < timing.get("steps_planned", 0) or \
                entry.match_cr_of in self.redone:
            # under-trained (budget) or matching a system evaluated again: not finished
            loaded = [None] * len(files)
        if wanted is not None:
            loaded = [p if i in wanted else False for i, p in enumerate(loaded)]
        eval_start = time.perf_counter()
        if any(p is None for p in loaded):
            self.redone.add(entry.name)
            system = self._build(entry, data)
            print(f"preparing {entry.name} ({entry.type})", flush=True)
            seconds, report = self._prepare(entry, system, data, validation)
            timing["train_seconds"] = timing.get("train_seconds", 0.0) + seconds
            if report is not None:
                timing.update(steps_done=report.steps_done, steps_planned=report.steps_planned)
            write_text(timing_file, json.dumps(timing))
            if self.options.on_event:
                self.options.on_event("prepared", {"system": entry.name})
            todo = sum(p is None for p in loaded) * len(batches)
            eval_start = time.perf_counter()
            with tqdm(total=todo, desc=f"eval {entry.name}", unit="batch",
                      disable=not self.options.progress) as bar:
                for i, file in enumerate(files):
                    if loaded[i] is not None:
                        continue
                    target = None
                    if entry.match_cr_of is not None:
                        target = float(np.mean(points[entry.match_cr_of][i]["cr"]))
                    loaded[i] = self._evaluate_point(entry, system, i, batches, channels,
                                                     target, bar)
                    _atomic_save_npz(file, **loaded[i])
        timing["eval_seconds"] = timing.get("eval_seconds", 0.0) + time.perf_counter() - eval_start
        write_text(timing_file, json.dumps(timing))
        points[entry.name] = loaded
        if wanted is not None:
            return None
        return system_results(entry.type, loaded, timing,
                              weights_record(self._workdir(entry.name, False)))

    # ---- whole run -------------------------------------------------------------------
    def run(self) -> ResultsFile:
        try:
            return self._run()
        except OSError as err:
            what = f" {err.filename}" if err.filename else ""
            raise RunFailure(f"cannot write or read{what}: {err.strerror or err} (the files "
                             f"already in {self.out} are left as they were)") from err

    def _run(self) -> ResultsFile:
        if any(self.scenario.train_for(s.name).distribute == "multi_worker"
               for s in self.selected):
            try:  # before any other TensorFlow operation, or TensorFlow refuses it
                strategy = strategy_for("multi_worker")
            except ValueError as err:
                raise RunError(str(err)) from err
            # the chief writes the run directory, worker r its own <out>-worker<r>
            self.out = self.out.with_name(self.out.name + worker_suffix(strategy))
        try:  # before the run directory exists, so a data error never blocks a retry
            data = load_data(self.scenario.data)
        except (OSError, ValueError) as err:
            raise RunError(f"data: {err}") from err
        users = self.scenario.link.users
        if len(data.test) % users:
            raise RunError(f"the test set has {len(data.test)} images, not a multiple of "
                           f"link.users ({users}); set data.test_images")
        if len(data.test) < 2:
            raise RunError(f"the test set has {len(data.test)} image; at least 2 are needed "
                           "for confidence intervals")
        self._prepare_directory()
        data, validation = validation_split(data, users)
        batches = eval_batches(data, self.scenario.eval.batch_size)
        self.label_batches = None
        if self.scenario.data.labels:
            size = self.scenario.eval.batch_size
            self.label_batches = [data.test_labels[i: i + size]
                                  for i in range(0, len(data.test_labels), size)]
        originals = data.test[: self.scenario.eval.samples]
        (self.out / "eval").mkdir(exist_ok=True)
        _atomic_save_npy(self.out / "eval" / "originals.npy", originals)
        channels = SharedChannels(self.scenario.link, self.scenario.seed)
        points: dict[str, list[dict]] = {}
        systems = {}
        if self.options.shard is not None:
            return self._run_shard(data, validation, batches, channels, points)
        for entry in self.selected:
            systems[entry.name] = self._run_system(entry, data, validation, batches, channels,
                                                   points)
        systems = {e.name: systems[e.name] for e in self.scenario.systems if e.name in systems}
        scenario = self.resolved.to_dict()
        results = ResultsFile(
            semsim_version=__version__,
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            profile=self.resolved.profile, data=data.description,
            metrics=metrics_description(*data.test_shape),
            scenario=scenario, systems=systems, bd=section_of_run(scenario, systems),
        )
        write_outputs(results, self.out)
        return results

    def _run_shard(self, data: ImageData, validation: np.ndarray, batches, channels,
                   points: dict[str, list[dict]]) -> None:
        """Evaluate this shard's points and write shard.json (no results.json). A
        system's trainability is read from a freshly built instance (nothing trains
        when evaluating checkpoints)."""
        shard = self.options.shard

        def trainable(entry: SystemConfig) -> bool:
            return self.options.checkpoints is None and bool(self._build(entry, data).trainable)

        owned = assignment(self.selected, len(self.scenario.snr.eval_db), trainable, shard)
        for entry in self.selected:
            if entry.name in owned:
                self._run_system(entry, data, validation, batches, channels, points,
                                 wanted=owned[entry.name])
        record = {"shard": [shard.index, shard.count], "data": data.description,
                  "metrics": metrics_description(*data.test_shape),
                  "points": {name: sorted(owned[name]) for name in owned}}
        write_text(self.out / SHARD_FILE, json.dumps(record, indent=2))
        return None


def run_scenario(resolved: ResolvedScenario, options: RunOptions) -> ResultsFile | None:
    """Prepare (train or load) and evaluate the selected systems; write the outputs
    (``None`` and shard.json only with ``options.shard``: see :mod:`semsim.cli.merge`).

    Raises :class:`RunError` when the run cannot start as requested;
    ``KeyboardInterrupt`` leaves a directory that ``resume=True`` continues."""
    return _Run(resolved, options).run()
