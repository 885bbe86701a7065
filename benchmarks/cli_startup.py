"""Start-up time of the ``semsim`` command: wall-clock seconds of ``semsim --help``,
``semsim run --help``, ``semsim validate FILE`` and ``semsim list`` in fresh interpreters
(median of ``--repeats`` runs each), with the heavy packages each one leaves imported.
Target: ``--help`` and ``validate`` under 1 s (TensorFlow, Keras, Sionna and TensorFlow
Probability are imported only by the commands that compute).

    python benchmarks/cli_startup.py [--repeats 5] [--ref GIT_REF]

``--ref`` also times the same commands on another commit (exported with ``git archive``
into a temporary directory) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "semsim --help": ["--help"],
    "semsim run --help": ["run", "--help"],
    "semsim validate scenarios/siso_awgn.yaml": ["validate", "scenarios/siso_awgn.yaml"],
    "semsim validate scenarios/mu_mimo_4users.yaml": ["validate",
                                                      "scenarios/mu_mimo_4users.yaml"],
    "semsim list": ["list"],
}
PROBE = ("import runpy, sys\nsys.argv = ['semsim', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('semsim', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
         "{'tensorflow', 'keras', 'sionna', 'tensorflow_probability', 'matplotlib'})\n"
         "print('HEAVY', ','.join(heavy) or '-', file=sys.stderr)\n")


def time_command(tree: Path, argv: list[str], repeats: int) -> tuple[float, str]:
    """Median wall-clock seconds of ``semsim ARGV`` run from ``tree``, and the heavy
    packages it imported."""
    env = {"PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"}
    times, heavy = [], "?"
    for _ in range(repeats):
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=tree, env=env,
                             capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        heavy = next((line.split(" ", 1)[1] for line in run.stderr.splitlines()
                      if line.startswith("HEAVY ")), "?")
    return statistics.median(times), heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ref", help="git ref to compare with (e.g. main)")
    args = parser.parse_args()
    trees = {"this tree": ROOT}
    with tempfile.TemporaryDirectory() as scratch:
        if args.ref:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.ref],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", scratch], input=archive, check=True)
            trees[args.ref] = Path(scratch)
        print(f"{'command':47} {'tree':>12} {'median s':>9}  heavy imports")
        for label, argv in COMMANDS.items():
            for name, tree in trees.items():
                seconds, heavy = time_command(tree, argv, args.repeats)
                print(f"{label:47} {name:>12} {seconds:9.2f}  {heavy}")


if __name__ == "__main__":
    main()
