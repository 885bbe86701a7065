"""Convergence of a scenario's learned systems: validation PSNR vs training steps.

For each learned system and each budget ``b`` of ``--budgets`` (fractions of the
profile's planned steps ``N``, or of ``--steps``), the system is trained from scratch for
``b N`` steps exactly as ``semsim run`` trains it (the training images less the held-out
validation images, its own learning-rate schedule over those steps) and its validation
PSNR is measured: the mean per-image PSNR of at most ``--val-images`` held-out validation
images (:func:`semsim.scenario.evaluation.validation_split`, never the test set) at the
scenario's middle evaluation SNR, each sent ``--val-draws`` times (default 8) over seeded
channel and noise draws (draw 0 is the one of :mod:`semsim.weights.manifest`): with one
draw, the few channel realizations of 64 images (16 on a 4-user link) made two trainings
of the same budget differ by 0.5 dB. ``--weights STEPS=FILE ...`` judges existing weights
files instead of training, and ``--weights STEPS=RUN_DIR ...`` the system as earlier
``semsim run`` directories trained it (any type, e.g. SCSC's stages, whose steps a run
doubles with ``--set``). ``--from-shipped`` adds a cheaper series: the shipped
checkpoint (``N`` steps), then ``N`` more steps from it with the profile's recipe run
again (fresh optimizer, schedule, warm-up and annealing), so ``2N`` in all: a warm
restart, not a ``2N`` run from scratch, and labelled so; ``--record`` then writes its
verdict into the shipped manifest's ``convergence`` entry. Verdict (issue 16): converged
when doubling the steps from ``N`` to ``2N`` raises validation PSNR by less than 0.3 dB.
Trainings of one budget can differ by more than that, so ``--seeds 1,2`` trains every
budget once per seed (validation unchanged), and rows of several trainings per budget
(several seeds, or CSV files read together with ``--from-csv``) also get a pooled
verdict: the gain of the means with its 95 % interval (Welch's t), converged only when
the whole interval lies below 0.3 dB, undecided when it contains 0.3 dB.
Writes ``convergence.csv`` (after every run) and ``convergence.png`` under ``--out``.

    python benchmarks/convergence.py scenarios/mu_mimo_4users.yaml
    python benchmarks/convergence.py scenarios/mimo_2x2.yaml --from-shipped --record
    python benchmarks/convergence.py scenarios/siso_awgn.yaml --steps 200 --budgets 0.5,1,2
    python benchmarks/convergence.py scenarios/siso_awgn.yaml --steps 200 --budgets 0.5,1 \
        --seeds 0,1,2
    python benchmarks/convergence.py scenarios/mimo_2x2.yaml --throughput --probe-steps 20

``--throughput`` instead measures training images/s of each learned system at the
profile's size (``--warmup`` untimed steps incl. compilation, then ``--probe-steps``
timed ones): wall-clock images/s, and images per CPU-second of this process times the
usable cores (what the process would reach with the cores to itself, if it scales; less
sensitive to other load on a shared machine, yet still noisy there).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from semsim.data.pipeline import load_data, train_dataset  # noqa: E402
from semsim.scenario.loader import load_scenario  # noqa: E402
from semsim.scenario.runner import RunOptions, _Run  # noqa: E402
from semsim.seeding import set_seed  # noqa: E402
from semsim.weights.convergence import (  # noqa: E402
    is_warm_restart,
    pooled_verdicts,
    record,
    series,
    series_name,
    trainings,
    verdicts,
)
from semsim.weights.manifest import (  # noqa: E402
    learned_systems,
    validation_setup,
    validation_transmit,
)


def _planned_steps(scenario, name: str, data) -> int:
    cfg = scenario.train_for(name)
    return cfg.to_spec(scenario.snr.train_db, scenario.seed,
                       max(1, data.num_train // cfg.batch_size)).steps


def train_and_validate(args, name: str, steps: int, warm: bool = False,
                       seed: int | None = None) -> dict:
    """Train ``name`` for ``steps`` steps as ``semsim run`` does (its training images less
    the held-out validation images, its schedule over those steps) and measure its
    validation PSNR. ``warm``: start from the shipped checkpoint (a fresh optimizer, the
    profile's whole recipe run again: schedule, warm-up, annealing), so that ``steps``
    more steps than the checkpoint's ``N`` are done in all; ``steps = 0`` measures the
    shipped checkpoint itself. ``seed``: train with this scenario seed instead of the
    file's (initial weights, crops, training channels and noise); the validation images
    and their channel draws stay those of the file's seed, so seeds are comparable."""
    from semsim.scenario.evaluation import validation_split
    from semsim.weights.shipped import find_shipped

    as_filed = load_scenario(args.scenario, args.profile)  # validation: the file's seed
    resolved = as_filed if seed is None else \
        load_scenario(args.scenario, args.profile, {"seed": seed})
    scenario = resolved.scenario
    entry = scenario.system(name)
    tag = f"{'-warm' if warm else ''}-{steps}" + ("" if seed is None else f"-seed{seed}")
    workdir = args.out / f"{name}{tag}"  # checkpoints, history.csv
    if workdir.exists():
        shutil.rmtree(workdir)
    run = _Run(resolved, RunOptions(out_dir=workdir, retrain=True, progress=False))
    data, validation = validation_split(load_data(scenario.data), scenario.link.users)
    system = run._build(entry, data)
    system.verbose = 0
    done, seconds, start, complete = 0, 0.0, "scratch", True
    if warm:
        manifest = find_shipped(resolved, name, system)  # hash of the profile's config
        if manifest is None:
            raise SystemExit(f"--from-shipped: no shipped checkpoint for {name!r} "
                             f"({scenario.name}, {args.profile})")
        system.model.load_weights(manifest["_weights_path"])
        done, start = int(manifest["steps_done"]), manifest["id"]
    if steps:
        # no wall-clock cut unless asked: a cut run is not a budget point
        entry.train = {**(entry.train or {}), "steps": steps, "max_seconds": args.max_seconds}
        if warm:  # the runner's own log line below says "from scratch": it is not
            print(f"{name}: warm restart from {start} for {steps} more steps", flush=True)
        seconds, report = run._prepare(entry, system, data, validation)
        done += report.steps_done
        complete = report.steps_done >= steps
        if not complete:
            print(f"{name}: WARNING: cut after {report.steps_done} of {steps} steps "
                  "(--max-seconds): this row is no budget point", flush=True)
    return {"system": name, "series": series_name(name, warm, seed), "start": start, "steps": done,
            "train_seconds": round(seconds, 1), "complete": complete,
            "seed": scenario.seed,
            **validate(args, as_filed, system, validation)}


def validate(args, resolved, system, validation: np.ndarray) -> dict:
    """Validation PSNR of a prepared system: at most ``--val-images`` held-out images,
    each sent ``--val-draws`` times over seeded channel and noise draws (draw 0 is the
    manifests' draw); the mean of every per-image PSNR, and the mean CR."""
    from semsim.metrics import psnr_per_image

    users = resolved.scenario.link.users
    images = validation[:args.val_images // users * users]
    psnr, cr = [], []
    for draw in range(args.val_draws):
        sent, result = validation_transmit(resolved, system, images=images, draw=draw)
        psnr.append(psnr_per_image(sent, np.asarray(result.images_hat, np.float32)))
        cr.append(np.asarray(result.cr, np.float64))
    return {"val_images": len(images), "val_draws": args.val_draws,
            "val_psnr_db": float(np.mean(np.concatenate(psnr))),
            "val_cr": float(np.mean(np.concatenate(cr)))}


def from_run_dir(resolved, run_dir: Path, name: str, steps: int):
    """System ``name`` as an earlier ``semsim run`` into ``run_dir`` trained it (any
    system type, e.g. SCSC's stages: the run's own scenario and checkpoints), after
    checking that the run used the validation's data and seed and finished ``steps``
    steps (a cut training is no budget point; nothing is trained here)."""
    from semsim.scenario.evaluation import validation_split

    spec, results = run_dir / "scenario.resolved.yaml", run_dir / "results.json"
    if not spec.exists() or not results.exists():
        raise SystemExit(f"--weights: {run_dir} holds no finished run (scenario.resolved.yaml "
                         "and results.json)")
    earlier = load_scenario(spec)
    if (earlier.scenario.data, earlier.scenario.seed) != \
            (resolved.scenario.data, resolved.scenario.seed):
        raise SystemExit(f"--weights: {run_dir} used other data or another seed than "
                         f"{resolved.scenario.name}: its validation images differ")
    record = json.loads(results.read_text())["systems"].get(name) or {}
    done, planned = record.get("steps_done"), record.get("steps_planned")
    if done is None or done != planned or done != steps:
        raise SystemExit(f"--weights: {name!r} in {run_dir} did {done} of {planned} planned "
                         f"steps, not {steps}: only a finished training of STEPS steps counts")
    data, validation = validation_split(load_data(earlier.scenario.data),
                                        earlier.scenario.link.users)
    with tempfile.TemporaryDirectory() as tmp:
        run = _Run(earlier, RunOptions(out_dir=Path(tmp), checkpoints=run_dir / "checkpoints",
                                       progress=False))
        entry = earlier.scenario.system(name)
        system = run._build(entry, data)
        run._prepare(entry, system, data, validation)
    return system


def evaluate_checkpoints(args, name: str) -> list[dict]:
    """``--weights``: validation PSNR of existing weights of system ``name``, one row each,
    as series ``"<name>, checkpoints"``: a weights file (a Keras system of the profile's
    architecture) or the directory of an earlier ``semsim run`` (:func:`from_run_dir`)."""
    from semsim.scenario.evaluation import validation_split

    resolved = load_scenario(args.scenario, args.profile)
    scenario = resolved.scenario
    run = _Run(resolved, RunOptions(out_dir=args.out / "unused", progress=False))
    data, validation = validation_split(load_data(scenario.data), scenario.link.users)
    rows = []
    for item in args.weights:
        steps, _, path = item.partition("=")
        if not steps.isdigit() or not path:
            raise SystemExit(f"--weights: expected STEPS=FILE or STEPS=RUN_DIR, got {item!r}")
        set_seed(scenario.seed)
        if Path(path).is_dir():
            system = from_run_dir(resolved, Path(path), name, int(steps))
        else:
            system = run._build(scenario.system(name), data)
            if getattr(system, "model", None) is None:
                raise SystemExit(f"--weights: {name!r} ({scenario.system(name).type}) is not "
                                 "one Keras model: give the directory of a run that trained it")
            system.model.load_weights(path)
        rows.append({"system": name, "series": f"{name}, checkpoints", "start": path,
                     "steps": int(steps), "train_seconds": 0.0, "complete": True,
                     **validate(args, resolved, system, validation)})
    return rows


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name in dict.fromkeys(series(r) for r in rows):
        mine = sorted((r["steps"], r["val_psnr_db"]) for r in rows
                      if series(r) == name and r.get("complete", True))
        steps = sorted({s for s, _ in mine})
        means = [float(np.mean([v for s, v in mine if s == n])) for n in steps]
        style = "--" if is_warm_restart(name) else "-"
        (line,) = ax.plot(steps, means, style, label=name)  # several trainings: their mean
        ax.plot(*zip(*mine, strict=True), "s" if is_warm_restart(name) else "o",
                color=line.get_color())
        cut = [(r["steps"], r["val_psnr_db"]) for r in rows
               if series(r) == name and not r.get("complete", True)]
        if cut:  # a run the wall clock stopped: shown, not joined, no budget point
            ax.plot(*zip(*cut, strict=True), "x", color=line.get_color(), label=f"{name} (cut)")
    for system in dict.fromkeys(r["system"] for r in rows):  # several trainings per budget
        by_steps = trainings(rows, system)
        steps = sorted(n for n, v in by_steps.items() if len(v) >= 2)
        if len(steps) >= 2:
            values = [by_steps[n] for n in steps]
            ax.errorbar(steps, [np.mean(v) for v in values],
                        yerr=[np.std(v, ddof=1) for v in values], fmt="-D", color="black",
                        capsize=4, label=f"{system}, mean of all trainings (± 1 s.d.)")
    ax.set_xscale("log", base=2)
    ticks = sorted({r["steps"] for r in rows if r.get("complete", True)})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training steps\n(solid: each point its own run from scratch; dashed: the "
                  "shipped checkpoint, then trained again)", fontsize=7)
    ax.set_ylabel("validation PSNR (dB)")
    ax.set_title(title, fontsize=8, wrap=True)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def throughput(args, names: list[str]) -> None:
    """Training images/s of each learned system at the profile's size."""
    from semsim.systems.keras_system import make_optimizer, training_inputs

    resolved = load_scenario(args.scenario, args.profile)
    scenario = resolved.scenario
    data = load_data(scenario.data)
    run = _Run(resolved, RunOptions(out_dir=Path("."), progress=False))
    cores = len(os.sched_getaffinity(0))
    print(f"{'system':<12} {'batch':>5} {'xla':>5} {'params':>9} {'compile_s':>9} "
          f"{'img/s':>8} {'img/s/' + str(cores) + 'cpu':>11}")
    for name in names:
        entry = scenario.system(name)
        cfg = scenario.train_for(name)
        set_seed(scenario.seed)
        system = run._build(entry, data)
        spec = cfg.to_spec(entry.train_snr_db or scenario.snr.train_db, scenario.seed,
                           max(1, data.num_train // cfg.batch_size))
        stream = train_dataset(data, cfg.batch_size, scenario.seed)
        inputs = training_inputs(stream, system.snr_range_db or spec.snr_range_db, spec.seed)
        model = system.model
        model.compile(optimizer=make_optimizer(spec), jit_compile=spec.jit_compile)
        start = time.perf_counter()
        model.fit(inputs, steps_per_epoch=args.warmup, epochs=1, verbose=0)
        warm = time.perf_counter() - start
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(inputs, steps_per_epoch=args.probe_steps, epochs=1, verbose=0)
        images = cfg.batch_size * args.probe_steps
        rate = images / (time.perf_counter() - start)
        cpu_rate = images * cores / (time.process_time() - cpu)
        params = sum(int(np.prod(v.shape)) for v in model.weights)
        print(f"{name:<12} {cfg.batch_size:>5} {str(spec.jit_compile):>5} "
              f"{params:>9} {warm:>9.1f} {rate:>8.0f} {cpu_rate:>11.0f}",
              flush=True)


def write_rows(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_rows(path: Path) -> list[dict]:
    """The rows of a ``convergence.csv``, typed (files without ``complete`` count as complete)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["steps"] = int(row["steps"])
        row["val_psnr_db"] = float(row["val_psnr_db"])
        row["complete"] = row.get("complete", "True") == "True"
        row["val_draws"] = int(row.get("val_draws") or 1)  # files before --val-draws: one
    return rows


def replot(args, resolved) -> None:
    """``--from-csv``: one plot and the verdicts for the rows of several CSV files."""
    rows = [row for path in args.from_csv for row in read_rows(path)]
    args.out.mkdir(parents=True, exist_ok=True)
    conclude(args, resolved, rows)


def conclude(args, resolved, rows: list[dict]) -> None:
    """Plot ``rows`` into ``--out`` and print each series' verdict."""
    snr = validation_setup(resolved)["snr_db"]
    draws = sorted({int(r.get("val_draws", 1)) for r in rows})
    title = f"{resolved.scenario.name} [{args.profile}], {snr:g} dB:\n{rows[0]['val_images']} " \
            f"held-out validation images x {'/'.join(map(str, draws))} channel draws"
    plot(rows, args.out / "convergence.png", title)
    for name, text in {**verdicts(rows), **pooled_verdicts(rows)}.items():
        print(f"{name}: {text}")
    print(f"wrote {args.out / 'convergence.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--systems", help="comma-separated learned systems (default: all)")
    parser.add_argument("--steps", type=int, help="N (default: the profile's planned steps)")
    parser.add_argument("--budgets", help="fractions of N to train for from scratch, each its "
                        "own run (default 0.25,0.5,1,2; none with --from-shipped)")
    parser.add_argument("--from-shipped", action="store_true",
                        help="also measure the shipped checkpoint (N steps) and train it for N "
                        "more steps (2N in all) with the profile's recipe run again")
    parser.add_argument("--from-csv", type=Path, nargs="+",
                        help="train nothing: plot and judge the rows of these convergence.csv "
                        "files together (e.g. one per system) into --out")
    parser.add_argument("--val-images", type=int, default=64,
                        help="at most this many held-out validation images")
    parser.add_argument("--val-draws", type=int, default=8,
                        help="send the validation images this many times, each over its own "
                        "seeded channel and noise draw (1: the manifests' single draw)")
    parser.add_argument("--weights", nargs="+", metavar="STEPS=FILE|RUN_DIR",
                        help="train nothing: judge these weights of the one system of "
                        "--systems, trained for STEPS steps each: weights files, or the "
                        "directories of earlier `semsim run`s that trained it (any system "
                        "type; e.g. runs with the steps doubled by --set)")
    parser.add_argument("--seeds", help="comma-separated training seeds: each budget is "
                        "trained once per seed (default: the scenario's seed); validation "
                        "stays that of the scenario's seed, and several seeds add a pooled "
                        "verdict with a 95 %% interval")
    parser.add_argument("--record", action="store_true",
                        help="with --from-shipped: write each system's warm-restart verdict "
                        "into its shipped manifest's convergence entry (runs and tables "
                        "then show it; regenerate docs/scenarios.md)")
    parser.add_argument("--max-seconds", type=float,
                        help="cut each training after this many seconds (default: never; the "
                        "profile's train.max_seconds does not apply; a cut run gets no verdict)")
    parser.add_argument("--out", type=Path, default=Path("runs/convergence"))
    parser.add_argument("--throughput", action="store_true", help="measure images/s only")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--probe-steps", type=int, default=20)
    args = parser.parse_args()

    resolved = load_scenario(args.scenario, args.profile)
    learned = learned_systems(resolved)
    names = learned if args.systems is None else [n.strip() for n in args.systems.split(",")]
    # --weights judges what runs trained: any system (one Keras model or not)
    known = [e.name for e in resolved.scenario.systems] if args.weights else learned
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"--systems: {', '.join(unknown)} not learned systems of this scenario "
                     f"(learned: {', '.join(known)})")
    if args.throughput:
        throughput(args, names)
        return
    if args.from_csv:
        replot(args, resolved)
        return
    if args.val_draws < 1:
        parser.error("--val-draws must be at least 1")
    if args.record and not args.from_shipped:
        parser.error("--record needs --from-shipped: a manifest records the verdict of its "
                     "own checkpoint's warm restart")
    if args.record and (args.seeds or args.max_seconds or args.budgets):
        parser.error("--record takes no --seeds, --max-seconds or --budgets: it records one "
                     "complete warm restart of the shipped checkpoint")
    if args.weights:
        if len(names) != 1:
            parser.error("--weights needs exactly one system in --systems")
        args.out.mkdir(parents=True, exist_ok=True)
        rows = evaluate_checkpoints(args, names[0])
        for row in rows:
            print(f"{row['series']:<24} steps {row['steps']:>7}  validation PSNR "
                  f"{row['val_psnr_db']:.2f} dB ({row['val_images']} images x "
                  f"{row['val_draws']} draws)", flush=True)
        write_rows(args.out / "convergence.csv", rows)
        conclude(args, resolved, rows)
        return
    data = load_data(resolved.scenario.data)
    totals = {name: args.steps or _planned_steps(resolved.scenario, name, data)
              for name in names}
    fractions = args.budgets if args.budgets is not None else \
        ("" if args.from_shipped else "0.25,0.5,1,2")
    try:
        seeds = [None] if args.seeds is None else [int(x) for x in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    plan = []
    for name, total in totals.items():
        budgets = sorted({max(1, round(float(b) * total)) for b in fractions.split(",") if b})
        plan += [(name, steps, False, seed) for seed in seeds for steps in budgets]
        if args.from_shipped:  # the shipped checkpoint (N), then N more steps from it (2N)
            plan += [(name, steps, True, None) for steps in (0, total)]
    snr = validation_setup(resolved)["snr_db"]
    print(f"{resolved.scenario.name} [{args.profile}]: N = "
          f"{', '.join(f'{n} {t}' for n, t in totals.items())}; runs (system, steps, from "
          f"shipped, seed): {plan}; validation at {snr:g} dB", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, steps, warm, seed in plan:
        row = train_and_validate(args, name, steps, warm, seed)
        rows.append(row)
        print(f"{row['series']:<24} steps {row['steps']:>7} {row['train_seconds']:>8.1f} s  "
              f"validation PSNR {row['val_psnr_db']:.2f} dB ({row['val_images']} images x "
              f"{row['val_draws']} draws)",
              flush=True)
        write_rows(args.out / "convergence.csv", rows)  # after each run
    conclude(args, resolved, rows)
    print(f"wrote {args.out / 'convergence.csv'}")
    if args.record:
        command = shlex.join(["python", *sys.argv])
        for path in record(resolved, rows, command):
            print(f"recorded the verdict in {path}")

if __name__ == "__main__":
    main()
