"""Cost of the receiver's ViT compensation module: parameters and time per image.

Configurations (random weights, nothing is loaded or downloaded):

* ``internvit-300m + LoRA``: InternViT-300M sizes, first 12 of 24 blocks, LoRA rank 16
  (alpha 32) on qkv/proj/fc1/fc2, the paper setting;
* ``internvit-300m full``: the same blocks fully trainable, for comparison;
* ``vit-small``: the small random ViT (192 wide, 4 blocks) used for CPU runs.

All run on an ``8 x 8`` token grid with ``C = 16`` latent channels and a 32-long
condition vector. Each step is one ``tf.function`` (no XLA unless ``--jit``): forward
only (inference mode) and forward + backward + Adam update on the trainable weights
(training mode). Times are medians over ``--steps`` steps after two warm-up steps,
divided by the batch size.

    python benchmarks/compensation_cost.py [--batch 4] [--steps 5] [--jit] [--only NAME]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from semsim.seeding import set_seed  # noqa: E402
from semsim.semantic.compensation import ViTCompensation, build_compensation  # noqa: E402
from semsim.semantic.internvit import count_parameters  # noqa: E402
from semsim.semantic.internvit.presets import INTERNVIT_300M  # noqa: E402

GRID, CHANNELS, COND = (8, 8), 16, 32


def _internvit(lora_rank: int) -> ViTCompensation:
    layer = ViTCompensation(
        CHANNELS,
        COND,
        GRID,
        INTERNVIT_300M,
        num_layers_to_keep=12,
        lora_rank=lora_rank,
        lora_alpha=2 * lora_rank or None,
    )
    layer.build((None, *GRID, CHANNELS), (None, COND))
    return layer


CONFIGS = {
    "internvit-300m + LoRA": lambda: _internvit(16),
    "internvit-300m full": lambda: _internvit(0),
    "vit-small": lambda: build_compensation("vit-small", CHANNELS, COND, GRID),
}


def _median_seconds(fn, steps: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, batch: int, steps: int, jit: bool) -> dict:
    layer = CONFIGS[name]()
    counts = count_parameters(layer)
    rng = np.random.default_rng(0)
    z = tf.constant(rng.normal(size=(batch, *GRID, CHANNELS)).astype("float32"))
    c = tf.constant(rng.normal(size=(batch, COND)).astype("float32"))
    target = tf.constant(rng.normal(size=(batch, *GRID, CHANNELS)).astype("float32"))
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(layer.trainable_weights)

    @tf.function(jit_compile=jit)
    def forward():
        return layer(z, c, training=False)

    @tf.function(jit_compile=jit)
    def train_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(z, c, training=True) - target))
        grads = tape.gradient(loss, layer.trainable_weights)
        optimizer.apply_gradients(zip(grads, layer.trainable_weights, strict=True))
        return loss

    return {
        "name": name,
        "total": counts.total,
        "trainable": counts.trainable,
        "fwd_ms": 1e3 * _median_seconds(lambda: forward().numpy(), steps) / batch,
        "train_ms": 1e3 * _median_seconds(lambda: train_step().numpy(), steps) / batch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--jit", action="store_true", help="compile with XLA")
    parser.add_argument("--only", choices=sorted(CONFIGS), help="measure one configuration")
    args = parser.parse_args()
    set_seed(0)
    names = [args.only] if args.only else list(CONFIGS)
    print(
        f"grid {GRID[0]}x{GRID[1]}, C={CHANNELS}, cond={COND}, batch {args.batch}, "
        f"median of {args.steps} steps, jit={args.jit}, {os.cpu_count()} CPU cores, "
        f"devices: {[d.device_type for d in tf.config.list_logical_devices()]}"
    )
    rows = [measure(name, args.batch, args.steps, args.jit) for name in names]
    header = f"{'configuration':24s} {'total params':>14s} {'trainable':>12s} {'train %':>8s} "
    header += f"{'fwd ms/img':>11s} {'fwd+bwd ms/img':>15s}"
    print(header)
    for r in rows:
        print(
            f"{r['name']:24s} {r['total']:14,d} {r['trainable']:12,d} "
            f"{100 * r['trainable'] / r['total']:7.2f}% {r['fwd_ms']:11.1f} {r['train_ms']:15.1f}"
        )
    by_name = {r["name"]: r for r in rows}
    if {"internvit-300m + LoRA", "vit-small"} <= set(by_name):
        big, small = by_name["internvit-300m + LoRA"], by_name["vit-small"]
        print(
            f"ratio internvit-300m+LoRA / vit-small: fwd+bwd time "
            f"{big['train_ms'] / small['train_ms']:.1f}x, total params "
            f"{big['total'] / small['total']:.1f}x"
        )


if __name__ == "__main__":
    main()
