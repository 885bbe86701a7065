"""Training throughput of the reference system (images/s), XLA on and off.

Paper sizes (C = 16, encoder 96/128 with 2/4 blocks, decoder mirrored), 32x32 images,
2x2 MIMO with LS CSI, training SNRs ~ U[0, 20] dB. For each (batch size, XLA) setting the
script builds a fresh model, runs ``--warmup`` optimizer steps (tracing/compilation
included), then times ``--steps`` steps and prints one table row.

    python benchmarks/train_throughput.py --batch-sizes 64 128 --steps 5 --warmup 2
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from semsim.phy import LinkSpec  # noqa: E402
from semsim.seeding import set_seed  # noqa: E402
from semsim.systems.reference import ReferenceModel, ReferenceParams  # noqa: E402


def measure(batch_size: int, jit: bool, steps: int, warmup: int) -> dict[str, float]:
    """Warm-up and timed steps of ``model.train_step`` as ``fit`` compiles it."""
    set_seed(0)
    model = ReferenceModel(ReferenceParams(), LinkSpec(), (32, 32), seed=0)
    rng = np.random.default_rng(0)
    inputs = {
        "image": tf.constant(rng.random((batch_size, 32, 32, 3), np.float32)),
        "snr_db": tf.constant(rng.uniform(0, 20, batch_size).astype(np.float32)),
    }
    model(inputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit)
    data = tf.data.Dataset.from_tensors(inputs).repeat()
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    return {
        "warmup_s": warm,
        "step_ms": 1e3 * elapsed / steps,
        "images_per_s": batch_size * steps / elapsed,
        "params": model.count_params(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (incl. compile)")
    parser.add_argument("--xla", choices=["on", "off", "both"], default="both")
    args = parser.parse_args()
    xla = {"on": [True], "off": [False], "both": [False, True]}[args.xla]
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"{os.cpu_count()} CPU cores, GPUs: {len(tf.config.list_physical_devices('GPU'))}"
    )
    print(f"{'batch':>5} {'XLA':>4} {'warm-up s':>10} {'ms/step':>9} {'images/s':>9}")
    rows = []
    for batch in args.batch_sizes:
        for jit in xla:
            r = measure(batch, jit, args.steps, args.warmup)
            rows.append((batch, jit, r))
            print(
                f"{batch:>5} {'on' if jit else 'off':>4} {r['warmup_s']:>10.1f} "
                f"{r['step_ms']:>9.0f} {r['images_per_s']:>9.1f}",
                flush=True,
            )
    print(f"parameters: {rows[0][2]['params']:,}")
    for batch in args.batch_sizes:
        by_jit = {jit: r["images_per_s"] for b, jit, r in rows if b == batch}
        if len(by_jit) == 2:
            print(f"batch {batch}: XLA speed-up x{by_jit[True] / by_jit[False]:.2f}")


if __name__ == "__main__":
    main()
