"""``semsim run FILE``: train (or resume) the systems of a scenario, evaluate, report.

``--set KEY=VALUE`` (repeatable) changes one field after the profile is applied, without
editing the file: ``--set train.steps=2000 --set link.nr=8``; values are read as YAML
(``8``, ``1e-3``, ``[0, 25]``), validated like the file, and errors name the key.
``systems.<name>.params.<field>`` reaches a system's parameters. ``--seed N`` is
``--set seed=N``.

Exit codes: 0 done, 1 run-time failure, 2 invalid scenario or arguments,
130 interrupted (the run directory is left resumable: rerun with ``--resume``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from semsim.cli.argtypes import non_negative_int

EXIT_OK, EXIT_USAGE = 0, 2
log = logging.getLogger("semsim")


def system_names(text: str) -> tuple[str, ...]:
    """``--systems a,b`` -> ``("a", "b")``."""
    names = tuple(n.strip() for n in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated system names, got {text!r}")
    return names


def override(text: str) -> tuple[str, object]:
    """``--set train.steps=2000`` -> ``("train.steps", 2000)``."""
    from semsim.scenario.loader import parse_override

    try:
        return parse_override(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def shard_of(text: str):
    """``--shard 1/4`` -> ``Shard(1, 4)``."""
    from semsim.scenario.shard import Shard

    try:
        return Shard.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="FILE", type=Path, help="scenario YAML file")
    parser.add_argument("--profile", metavar="NAME",
                        help="profile to apply, any name the file defines (shipped: quick, "
                             "standard, paper; default: the file's `profile:` key)")
    parser.add_argument("--set", dest="overrides", type=override, action="append", default=[],
                        metavar="KEY=VALUE",
                        help="set a scenario field after the profile, e.g. train.steps=2000 "
                             "or systems.NAME.params.C=8 (repeatable; value read as YAML)")
    parser.add_argument("--seed", type=non_negative_int, metavar="N",
                        help="the scenario seed (same as --set seed=N)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="run directory (default: the scenario's output_dir, "
                             "else runs/<name>[-<profile>])")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="continue the interrupted run in the run directory")
    existing.add_argument("--overwrite", action="store_true",
                          help="delete the run already in the run directory and start afresh")
    parser.add_argument("--systems", type=system_names, metavar="A,B",
                        help="run only these systems of the scenario")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide progress bars (semsim's and Keras's)")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write TensorBoard logs (checkpoints/<system>/tensorboard)")
    parser.add_argument("--distribute", choices=("none", "mirrored", "multi_worker"),
                        help="train on several devices (same as --set train.distribute=...): "
                             "mirrored = all local GPUs; multi_worker = several nodes, each "
                             "with its own TF_CONFIG (docs/scaling.md)")
    parser.add_argument("--precision", choices=("float32", "mixed_float16", "mixed_bfloat16"),
                        help="dtype policy of the learned blocks (same as --set "
                             "train.precision=...); the physical layer stays float32")
    parser.add_argument("--shard", type=shard_of, metavar="I/N",
                        help="run only shard I of N (0 <= I < N) of the (system, SNR point) "
                             "pairs; assemble the N run directories with `semsim merge`")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="train and evaluate the systems of a scenario",
        description="Train (or reuse the checkpoints of) the systems a scenario names, evaluate "
                    "them over its SNR grid on shared channel realizations and write "
                    "results.json, results.csv, figures and report.md. Exit codes: 0 ok, "
                    "1 failure, 2 invalid input, 130 interrupted (resume with --resume).")
    add_common_arguments(parser)
    parser.add_argument("--retrain", action="store_true",
                        help="train learned systems from scratch, ignoring shipped weights")
    parser.set_defaults(func=run_command, needs_tensorflow=True)


def default_out_dir(resolved, suffix: str = "") -> Path:
    """The run directory of a :class:`~semsim.scenario.loader.ResolvedScenario`."""
    if resolved.scenario.output_dir:
        return Path(resolved.scenario.output_dir + suffix)
    profile = f"-{resolved.profile}" if resolved.profile else ""
    return Path("runs") / f"{resolved.scenario.name}{profile}{suffix}"


def summary_table(results):
    """Headline PSNR (dB, mean of 8-bit per-image PSNR) ± its 95 % half-width and CR per
    system and SNR of a results file, as a rich table; under-trained systems are marked."""
    from rich.table import Table

    snrs = sorted({s for system in results.systems.values() for s in system.snr_db})
    table = Table(title=f"{results.scenario.get('name')}: PSNR dB (CR)")
    table.add_column("system")
    table.add_column("type")
    for snr in snrs:
        table.add_column(f"{snr:g} dB", justify="right")
    for name, system in results.systems.items():
        cells = []
        for snr in snrs:
            i = system.snr_db.index(snr) if snr in system.snr_db else None
            cells.append("" if i is None else f"{system.psnr_db[i]:.2f}±{system.psnr_ci95_db[i]:.2f}"
                                              f" ({system.cr[i]:.3f})")
        mark = (f" (UNDER-TRAINED: {system.steps_done}/{system.steps_planned} steps)"
                if system.under_trained else " (NOT converged)" if system.not_converged else "")
        mark += " (proxy FAILED)" if system.proxy_failed else ""
        table.add_row(name + mark, system.type, *cells)
    return table


def overrides_of(args: argparse.Namespace) -> dict[str, object]:
    """``--set`` and ``--seed`` as one mapping of dotted keys (the last one of a key wins)."""
    values = dict(args.overrides)
    if args.seed is not None:
        values["seed"] = args.seed
    if getattr(args, "distribute", None):
        values["train.distribute"] = args.distribute
    if getattr(args, "precision", None):
        values["train.precision"] = args.precision
    return values


@contextlib.contextmanager
def keras_progress_bars(show: bool):
    """Keras's own progress bars (``fit(verbose=1)``) on or off inside the block; the
    previous setting is restored after it."""
    import keras

    before = keras.utils.is_interactive_logging_enabled()
    if show:
        keras.utils.enable_interactive_logging()
    else:
        keras.utils.disable_interactive_logging()
    try:
        yield
    finally:
        if before:
            keras.utils.enable_interactive_logging()
        else:
            keras.utils.disable_interactive_logging()


def execute(args: argparse.Namespace, checkpoints: Path | None, out_suffix: str) -> int:
    """Shared by ``run`` and ``eval``."""
    from rich.console import Console

    from semsim.scenario.loader import ScenarioError, load_scenario
    from semsim.scenario.runner import RunError, RunFailure, RunOptions, run_scenario

    try:
        resolved = load_scenario(args.scenario, args.profile, overrides_of(args))
    except ScenarioError as err:
        print("\n".join(err.lines()), file=sys.stderr)
        return EXIT_USAGE
    shard = getattr(args, "shard", None)
    if shard is not None:
        out_suffix += f"-shard{shard.index}of{shard.count}"
    out = args.out or default_out_dir(resolved, out_suffix)
    options = RunOptions(out_dir=out, resume=args.resume, overwrite=args.overwrite,
                         systems=args.systems, checkpoints=checkpoints,
                         progress=not args.no_progress,
                         tensorboard=getattr(args, "tensorboard", False),
                         retrain=getattr(args, "retrain", False), shard=shard)
    try:
        with keras_progress_bars(not args.no_progress):
            results = run_scenario(resolved, options)
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1 if isinstance(err, RunFailure) else EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\nrun left resumable in {out}; continue with: semsim {args.command} "
              f"{args.scenario} --out {out} --resume", file=sys.stderr)
        raise
    if results is None:
        log.info("shard %s done in %s; assemble all shards with: semsim merge DIR... --out DIR",
                 shard, out)
        return EXIT_OK
    Console().print(summary_table(results))
    log.info("results in %s (report.md, results.json, results.csv)", out)
    return EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    return execute(args, checkpoints=None, out_suffix="")
