"""Convergence of a scenario's learned systems: validation PSNR vs training steps.

For each learned system and each budget ``b`` of ``--budgets`` (fractions of the
profile's planned steps ``N``, or of ``--steps``), the system is trained from scratch for
``b N`` steps exactly as ``semsim run`` trains it (its own learning-rate schedule over
those steps) and its validation PSNR is measured: the mean per-image PSNR of the first
``--val-images`` test images at the scenario's middle evaluation SNR, with the seeded
channel and noise of :mod:`semsim.weights.manifest`. Verdict (issue 16): converged when
doubling the steps from ``N`` to ``2N`` raises validation PSNR by less than 0.3 dB.
Writes ``convergence.csv`` and ``convergence.png`` under ``--out``.

    python benchmarks/convergence.py scenarios/mu_mimo_4users.yaml
    python benchmarks/convergence.py scenarios/siso_awgn.yaml --steps 200 --budgets 0.5,1,2
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
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from semsim.data.pipeline import load_data, train_dataset  # noqa: E402
from semsim.scenario.loader import load_scenario  # noqa: E402
from semsim.scenario.runner import RunOptions, _Run  # noqa: E402
from semsim.seeding import set_seed  # noqa: E402
from semsim.weights.manifest import learned_systems, validation_psnr, validation_setup  # noqa: E402

#: Doubling the steps must raise validation PSNR by less than this (dB) to count as converged.
CONVERGED_GAIN_DB = 0.3


def _planned_steps(scenario, data) -> int:
    cfg = scenario.train
    return cfg.to_spec(scenario.snr.train_db, scenario.seed,
                       max(1, data.num_train // cfg.batch_size)).steps


def train_and_validate(args, name: str, steps: int, images: np.ndarray) -> dict:
    """Train ``name`` from scratch for ``steps`` steps; its validation PSNR and timing."""
    import tempfile

    resolved = load_scenario(args.scenario, args.profile)
    scenario = resolved.scenario
    update = {"steps": steps, "epochs": None}
    if args.max_seconds is not None:
        update["max_seconds"] = args.max_seconds
    scenario.train = scenario.train.model_copy(update=update)
    with tempfile.TemporaryDirectory(prefix="semsim-convergence-") as tmp:
        run = _Run(resolved, RunOptions(out_dir=Path(tmp), retrain=True, progress=False))
        data = load_data(scenario.data)
        system = run._build(scenario.system(name), data)
        system.verbose = 0
        seconds = run._prepare(scenario.system(name), system, data)
    done = int(system.model.optimizer.iterations.numpy())
    psnr = validation_psnr(resolved, system, images=images)
    return {"system": name, "steps": steps, "steps_done": done, "train_seconds": seconds,
            "val_psnr_db": psnr}


def verdicts(rows: list[dict]) -> dict[str, str]:
    """Per system: the PSNR gain from the largest budget's half to it, and the verdict."""
    out = {}
    for name in dict.fromkeys(r["system"] for r in rows):
        by_steps = {r["steps"]: r["val_psnr_db"] for r in rows if r["system"] == name}
        top = max(by_steps)
        half = top // 2
        if half not in by_steps:
            out[name] = f"no verdict: needs budgets {half} and {top}"
            continue
        gain = by_steps[top] - by_steps[half]
        word = "converged" if gain < CONVERGED_GAIN_DB else "NOT converged"
        out[name] = (f"{word}: {half} -> {top} steps changes validation PSNR by {gain:+.2f} dB "
                     f"(threshold {CONVERGED_GAIN_DB} dB)")
    return out


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in dict.fromkeys(r["system"] for r in rows):
        mine = sorted((r["steps"], r["val_psnr_db"]) for r in rows if r["system"] == name)
        ax.plot(*zip(*mine, strict=True), marker="o", label=name)
    ax.set_xscale("log", base=2)
    ticks = sorted({r["steps"] for r in rows})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training steps (each point: its own run)")
    ax.set_ylabel("validation PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend()
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
    cfg = scenario.train
    cores = len(os.sched_getaffinity(0))
    print(f"{'system':<12} {'batch':>5} {'xla':>5} {'params':>9} {'compile_s':>9} "
          f"{'img/s':>8} {'img/s/' + str(cores) + 'cpu':>11}")
    for name in names:
        entry = scenario.system(name)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--systems", help="comma-separated learned systems (default: all)")
    parser.add_argument("--steps", type=int, help="N (default: the profile's planned steps)")
    parser.add_argument("--budgets", default="0.25,0.5,1,2",
                        help="fractions of N to train for, each its own run")
    parser.add_argument("--val-images", type=int, default=64,
                        help="validation images (a multiple of link.users)")
    parser.add_argument("--max-seconds", type=float, help="override train.max_seconds")
    parser.add_argument("--out", type=Path, default=Path("runs/convergence"))
    parser.add_argument("--throughput", action="store_true", help="measure images/s only")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--probe-steps", type=int, default=20)
    args = parser.parse_args()

    resolved = load_scenario(args.scenario, args.profile)
    learned = learned_systems(resolved)
    names = learned if args.systems is None else [n.strip() for n in args.systems.split(",")]
    unknown = sorted(set(names) - set(learned))
    if unknown:
        parser.error(f"--systems: {', '.join(unknown)} not learned systems of this scenario "
                     f"(learned: {', '.join(learned)})")
    if args.throughput:
        throughput(args, names)
        return
    data = load_data(resolved.scenario.data)
    total = args.steps or _planned_steps(resolved.scenario, data)
    budgets = sorted({max(1, round(float(b) * total)) for b in args.budgets.split(",")})
    users = resolved.scenario.link.users
    count = min(args.val_images, len(data.test)) // users * users
    images = data.test[:count].astype(np.float32) / 255.0
    snr = validation_setup(resolved)["snr_db"]
    print(f"{resolved.scenario.name} [{args.profile}]: N = {total}, budgets {budgets}, "
          f"{count} validation images at {snr:g} dB", flush=True)
    rows = []
    for name in names:
        for steps in budgets:
            row = train_and_validate(args, name, steps, images)
            rows.append(row)
            print(f"{name:<12} steps {steps:>7} (done {row['steps_done']:>7}) "
                  f"{row['train_seconds']:>8.1f} s  validation PSNR {row['val_psnr_db']:.2f} dB",
                  flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "convergence.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    title = f"{resolved.scenario.name} [{args.profile}], {snr:g} dB, {count} images"
    plot(rows, args.out / "convergence.png", title)
    for name, text in verdicts(rows).items():
        print(f"{name}: {text}")
    print(f"wrote {args.out / 'convergence.csv'} and {args.out / 'convergence.png'}")


if __name__ == "__main__":
    main()
