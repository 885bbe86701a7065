"""Running a scenario: prepare its systems, evaluate them on shared channels, report.

Run directory layout (``RunOptions.out_dir``)::

    scenario.resolved.yaml      the resolved scenario (profile applied)
    run_state.json              what this directory holds (checked by --resume)
    checkpoints/<system>/       each system's ``prepare`` workdir
    eval/<system>/snr_XX.npz    per-image results of one (system, SNR) point
    eval/<system>/timing.json   seconds spent training
    eval/originals.npy          the test images shown in the sample grids
    results.json, results.csv, *.png, report.md

Reproducibility: before each system's ``prepare`` every global generator (Python,
numpy, TensorFlow/Keras, Sionna) is seeded with the scenario seed; channels are drawn
once per (SNR index, batch index) from a seed derived from the scenario seed and
handed to every system (``h``; block fading and ``none`` only: with fast fading the
channel shape depends on each system's symbol count, so systems draw their own);
before each ``transmit`` the generators are seeded from (SNR index, batch index), so
noise draws are common to all systems and identical on a rerun. Evaluation results
are saved per (system, SNR) point, so an interrupted run resumed with ``resume=True``
recomputes only unfinished points and gives the same ``results.json``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from semsim import __version__
from semsim.data.pipeline import ImageData, eval_batches, load_data, train_dataset
from semsim.metrics import psnr_per_image
from semsim.report.markdown import write_report
from semsim.report.plots import plot_results, plot_samples
from semsim.report.results import CORE_LISTS, ResultsFile, SystemResults, write_csv
from semsim.scenario.loader import ResolvedScenario
from semsim.scenario.schema import SystemConfig, evaluation_order
from semsim.seeding import set_seed
from semsim.systems.base import System, TransmitResult
from semsim.systems.registry import get_system_type

#: PSNR of a perfect reconstruction is capped here (MSE floored at 1e-10).
PSNR_CAP_DB = 100.0
STATE_FILE = "run_state.json"


class RunError(RuntimeError):
    """The run cannot start as requested (bad output directory, selection...)."""


@dataclasses.dataclass
class RunOptions:
    """``out_dir``: run directory. ``resume``: continue the run already there.
    ``systems``: run only these system names (scenario order kept). ``checkpoints``:
    evaluate checkpoints of an earlier run (``<dir>/<system>/`` per system) instead of
    training into ``out_dir/checkpoints``. ``progress``: show progress bars.
    ``on_event(kind, info)``: called after each evaluation batch (``kind ==
    "eval_batch"``, ``info`` with ``system``, ``snr_index``, ``batch``) and after each
    system's ``prepare`` (``"prepared"``); tests use it to interrupt a run."""

    out_dir: Path
    resume: bool = False
    systems: tuple[str, ...] | None = None
    checkpoints: Path | None = None
    progress: bool = True
    on_event: Callable[[str, dict[str, Any]], None] | None = None


def derive_seed(seed: int, *keys: int) -> int:
    """A 31-bit seed derived from ``seed`` and integer ``keys`` (stable across runs)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0] % (2**31 - 1))


def psnr_db(images: np.ndarray, images_hat: np.ndarray) -> np.ndarray:
    """Per-image PSNR (dB, MAX = 255) of ``[B, H, W, 3]`` images in ``[0, 1]``: ``[B]``
    float64, capped at :data:`PSNR_CAP_DB` (a perfectly decoded flat patch would be inf)."""
    return np.minimum(psnr_per_image(images, images_hat), PSNR_CAP_DB)


def psnr_of_mean_mse_db(psnr: np.ndarray) -> float:
    """PSNR (dB) of the MSE averaged over images, from per-image PSNRs (dB)."""
    return float(-10.0 * np.log10(np.mean(10.0 ** (-np.asarray(psnr, np.float64) / 10.0))))


class SharedChannels:
    """Channel realizations drawn once per (SNR index, batch index) and shared by all
    systems: ``[b, Nr, Nt]`` complex64, or ``None`` with fast fading."""

    def __init__(self, link, seed: int):
        from semsim.phy.channel import MultiUserUplinkChannel, RayleighMIMOChannel

        self._seed = seed
        self._cache: dict[tuple[int, int], np.ndarray | None] = {}
        self._fast = link.fading == "fast"
        if link.users > 1:
            self._channel = MultiUserUplinkChannel(
                link.users, link.nr, link.antennas_per_user, fading=link.fading,
                rx_correlation=link.rx_correlation)
        else:
            self._channel = RayleighMIMOChannel(
                link.nr, link.nt, fading=link.fading, rx_correlation=link.rx_correlation,
                tx_correlation=link.tx_correlation, model=link.model,
                delay_spread_ns=link.delay_spread_ns)

    def get(self, snr_index: int, batch_index: int, batch_size: int) -> np.ndarray | None:
        if self._fast:
            return None
        key = (snr_index, batch_index)
        if key not in self._cache:
            set_seed(derive_seed(self._seed, 1, snr_index, batch_index))
            self._cache[key] = np.asarray(self._channel.sample_channel(batch_size))
        return self._cache[key]


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


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
        if key in CORE_LISTS or key in ("type", "target_cr", "train_seconds", "eval_seconds"):
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
        if state_path.exists():
            if not self.options.resume:
                raise RunError(f"{self.out} already holds a run; pass --resume to continue it "
                               "or choose another --out")
            previous = json.loads(state_path.read_text(encoding="utf-8"))
            if previous != json.loads(json.dumps(state)):
                changed = sorted(k for k in set(previous["scenario"]) | set(state["scenario"])
                                 if previous["scenario"].get(k) != state["scenario"].get(k))
                if previous.get("profile") != state["profile"]:
                    changed.append("profile")
                raise RunError(f"--resume: the run in {self.out} was made with a different "
                               f"scenario (changed: {', '.join(changed)}); use another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "scenario.resolved.yaml").write_text(self.resolved.to_yaml(), encoding="utf-8")
        state_path.write_text(json.dumps(state, indent=2), encoding="utf-8")

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
        return stype.factory(self.resolved.params[entry.name], self.scenario.link.to_spec(),
                             size, self.scenario.seed)

    def _prepare(self, entry: SystemConfig, system: System, data: ImageData) -> float:
        cfg = self.scenario.train
        train_spec = cfg.to_spec(entry.train_snr_db or self.scenario.snr.train_db,
                                 self.scenario.seed,
                                 max(1, data.num_train // cfg.batch_size))
        stream = train_dataset(data, cfg.batch_size, self.scenario.seed,
                               augment=self.scenario.data.augment,
                               labels=self.scenario.data.labels)
        workdir = self._workdir(entry.name, system.trainable)
        workdir.mkdir(parents=True, exist_ok=True)
        resume = self.options.resume or self.options.checkpoints is not None
        set_seed(self.scenario.seed)
        start = time.perf_counter()
        system.prepare(stream, train_spec, workdir, resume)
        return time.perf_counter() - start

    def _evaluate_point(self, entry: SystemConfig, system: System, snr_index: int,
                        batches: list[np.ndarray], channels: SharedChannels,
                        target_cr: float | None, bar) -> dict[str, np.ndarray]:
        snr = float(self.scenario.snr.eval_db[snr_index])
        psnr, cr, extras, samples = [], [], {}, []
        n_samples = min(self.scenario.eval.samples, sum(len(b) for b in batches))
        for b, images in enumerate(batches):
            h = channels.get(snr_index, b, len(images))
            set_seed(derive_seed(self.scenario.seed, 2, snr_index, b))
            result = system.transmit(images, snr, h=h, target_cr=target_cr)
            _check_result(entry.name, result, images)
            images_hat = np.asarray(result.images_hat, np.float32)
            psnr.append(psnr_db(images, images_hat))
            cr.append(np.asarray(result.cr, np.float64))
            for key, value in result.extras.items():
                extras.setdefault(key, []).append(np.asarray(value, np.float64))
            if sum(len(s) for s in samples) < n_samples:
                samples.append(np.round(np.clip(images_hat, 0, 1) * 255).astype(np.uint8))
            bar.update(1)
            if self.options.on_event:
                self.options.on_event("eval_batch", {"system": entry.name,
                                                     "snr_index": snr_index, "batch": b})
        point = {"snr_db": np.float64(snr), "psnr": np.concatenate(psnr),
                 "cr": np.concatenate(cr),
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

    def _run_system(self, entry: SystemConfig, data: ImageData, batches, channels,
                    points: dict[str, list[dict]]) -> SystemResults:
        eval_dir = self.out / "eval" / entry.name
        eval_dir.mkdir(parents=True, exist_ok=True)
        snrs = self.scenario.snr.eval_db
        files = [eval_dir / f"snr_{i:02d}.npz" for i in range(len(snrs))]
        timing_file = eval_dir / "timing.json"
        timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
        loaded = [dict(np.load(f)) if f.exists() else None for f in files]
        eval_start = time.perf_counter()
        if any(p is None for p in loaded):
            system = self._build(entry, data)
            print(f"preparing {entry.name} ({entry.type})", flush=True)
            timing["train_seconds"] = timing.get("train_seconds", 0.0) + \
                self._prepare(entry, system, data)
            timing_file.write_text(json.dumps(timing))
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
        timing_file.write_text(json.dumps(timing))
        points[entry.name] = loaded
        return _system_results(entry.type, loaded, timing)

    # ---- whole run -------------------------------------------------------------------
    def run(self) -> ResultsFile:
        self._prepare_directory()
        data = load_data(self.scenario.data)
        users = self.scenario.link.users
        if len(data.test) % users:
            raise RunError(f"the test set has {len(data.test)} images, not a multiple of "
                           f"link.users ({users}); set data.test_images")
        batches = eval_batches(data, self.scenario.eval.batch_size)
        originals = data.test[: self.scenario.eval.samples]
        (self.out / "eval").mkdir(exist_ok=True)
        np.save(self.out / "eval" / "originals.npy", originals)
        channels = SharedChannels(self.scenario.link, self.scenario.seed)
        points: dict[str, list[dict]] = {}
        systems = {}
        for entry in self.selected:
            systems[entry.name] = self._run_system(entry, data, batches, channels, points)
        results = ResultsFile(
            semsim_version=__version__,
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            profile=self.resolved.profile, data=data.description,
            scenario=self.resolved.to_dict(),
            systems={e.name: systems[e.name] for e in self.scenario.systems if e.name in systems},
        )
        write_outputs(results, self.out)
        return results


def _system_results(type_name: str, points: list[dict], timing: dict) -> SystemResults:
    values: dict[str, Any] = {
        "type": type_name,
        "snr_db": [float(p["snr_db"]) for p in points],
        "psnr_db": [float(np.mean(p["psnr"])) for p in points],
        "psnr_std_db": [float(np.std(p["psnr"])) for p in points],
        "psnr_of_mean_mse_db": [psnr_of_mean_mse_db(p["psnr"]) for p in points],
        "cr": [float(np.mean(p["cr"])) for p in points],
        "n_images": [int(len(p["psnr"])) for p in points],
        "train_seconds": timing.get("train_seconds"),
        "eval_seconds": timing.get("eval_seconds"),
    }
    if "target_cr" in points[0]:
        values["target_cr"] = [float(p["target_cr"]) for p in points]
    for key in sorted(k for k in points[0] if k.startswith("extra__")):
        values[key.removeprefix("extra__")] = [float(np.mean(p[key])) for p in points]
    return SystemResults(**values)


def sample_grids(run_dir: Path, results: ResultsFile, out_dir: Path) -> list[Path]:
    """Original-vs-reconstruction grids (one per system, at the lowest, middle and
    highest SNR) from the evaluation state of ``run_dir``, written to ``out_dir``; none
    when that state is absent."""
    originals_file = run_dir / "eval" / "originals.npy"
    if not originals_file.exists():
        return []
    originals = np.load(originals_file)
    paths = []
    for name, system in results.systems.items():
        n = len(system.snr_db)
        picks = sorted({0, n // 2, n - 1})
        files = [run_dir / "eval" / name / f"snr_{i:02d}.npz" for i in picks]
        if not all(f.exists() for f in files):
            continue
        recons = {system.snr_db[i]: np.load(f)["samples"] for i, f in zip(picks, files, strict=True)}
        paths.append(plot_samples(name, originals[: len(next(iter(recons.values())))], recons,
                                  Path(out_dir) / f"samples_{name}.png"))
    return paths


def write_outputs(results: ResultsFile, run_dir: Path) -> list[Path]:
    """results.json, results.csv, figures and report.md into ``run_dir``."""
    run_dir = Path(run_dir)
    results.write(run_dir / "results.json")
    write_csv(results, run_dir / "results.csv")
    figures = plot_results(results, run_dir) + sample_grids(run_dir, results, run_dir)
    report = write_report(results, figures, run_dir / "report.md")
    return [run_dir / "results.json", run_dir / "results.csv", *figures, report]


def run_scenario(resolved: ResolvedScenario, options: RunOptions) -> ResultsFile:
    """Prepare (train or load) and evaluate the selected systems; write the outputs.

    Raises :class:`RunError` when the run cannot start as requested;
    ``KeyboardInterrupt`` leaves a directory that ``resume=True`` continues."""
    return _Run(resolved, options).run()
