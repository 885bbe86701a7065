"""Where a training step of the reference system spends its time, block by block.

Each block of :meth:`semsim.systems.reference.ReferenceModel.forward_with_latents` (and
the loss) runs alone, forward and backward (the gradient of a random projection of its
outputs with respect to its weights and float inputs), in its own ``tf.function`` (XLA
on or off), on the tensors the previous blocks produce for one batch; the script prints
the median milliseconds per block over ``--runs`` calls and the full ``train_step`` for
comparison (the blocks' sum differs from it: XLA fuses across blocks in the full step).

    python benchmarks/train_overhead.py --batch-size 64 --runs 5 --xla on
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

from semsim.phy import CSISpec, LinkSpec  # noqa: E402
from semsim.seeding import set_seed  # noqa: E402
from semsim.semantic.entropy import entropy_2d  # noqa: E402
from semsim.systems.reference import ReferenceModel, ReferenceParams  # noqa: E402

SIZE = 32


def timed(fn, args, runs: int, xla: bool) -> float:
    """Median milliseconds of ``fn(*args)`` (compiled once, untimed) over ``runs`` calls."""
    compiled = tf.function(fn, jit_compile=xla)
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, compiled(*args))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, compiled(*args))
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def with_gradient(block, variables):
    """``block(*inputs) -> outputs`` as forward + backward: the gradient of a fixed random
    projection of the float outputs w.r.t. ``variables`` and the float inputs."""
    def run(*inputs):
        floats = [t for t in inputs if t.dtype == tf.float32]
        with tf.GradientTape() as tape:
            tape.watch(floats)
            outputs = [o for o in tf.nest.flatten(block(*inputs)) if o.dtype == tf.float32]
            loss = tf.add_n([tf.reduce_sum(o * tf.random.stateless_normal(tf.shape(o), [1, i]))
                             for i, o in enumerate(outputs)])
        return tape.gradient(loss, [*variables, *floats])
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--xla", choices=["on", "off"], default="on")
    parser.add_argument("--skip", nargs="*", default=[], metavar="WORD",
                        help="skip the blocks whose name contains WORD (e.g. Swin: their XLA "
                             "compilation takes minutes on a loaded machine)")
    parser.add_argument("--no-full-step", action="store_true",
                        help="do not time the full train_step")
    args = parser.parse_args()
    xla, batch = args.xla == "on", args.batch_size
    set_seed(0)
    link = LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(mode="ls", pilots=2))
    model = ReferenceModel(ReferenceParams(), link, (SIZE, SIZE), seed=0)
    rng = np.random.default_rng(0)
    inputs = {"image": tf.constant(rng.random((batch, SIZE, SIZE, 3), np.float32)),
              "snr_db": tf.constant(rng.uniform(0, 20, batch).astype(np.float32))}
    model(inputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=xla)
    p = model.params
    c_maps, n_sym = p.num_maps, model.num_symbols
    image, snr_db = inputs["image"], inputs["snr_db"]

    # the intermediate tensors of one forward pass
    state = model.analog.observe(batch, snr_db)
    c = model.channel_encoder(state.h_hat, state.snr_hat_db)
    z0 = model.encoder(image, c)
    maps = tf.reshape(tf.transpose(z0, [0, 3, 1, 2]), [-1, c_maps, n_sym])
    e = model.entropy_mlp[1](model.entropy_mlp[0](
        tf.concat([entropy_2d(z0, p.entropy_levels), c], -1)))
    m1, _ = model.map_policy(tf.reduce_mean(maps, 2), e, temperature=model.temperature,
                             training=True)
    m2, _ = model.symbol_policy(tf.reduce_mean(maps * m1[:, :, None], 1), e,
                                temperature=model.temperature, training=True)
    mask = m1[:, :, None] * m2[:, None, :]
    out = model.forward_with_latents(inputs, training=True)

    def observe(snr):
        s = model.analog.observe(batch, snr)
        return model.channel_encoder(s.h_hat, s.snr_hat_db)

    def entropy(z, cond):
        return model.entropy_mlp[1](model.entropy_mlp[0](
            tf.concat([entropy_2d(z, p.entropy_levels), cond], -1)))

    def policies(mp, emb):
        a, _ = model.map_policy(tf.reduce_mean(mp, 2), emb, temperature=model.temperature,
                                training=True)
        b, _ = model.symbol_policy(tf.reduce_mean(mp * a[:, :, None], 1), emb,
                                   temperature=model.temperature, training=True)
        return a[:, :, None] * b[:, None, :]

    def link_block(mp, msk, snr):
        return model.through_link(mp, msk, state, snr)[0]

    def loss(o_image, o_cr, o_z0, o_ref):
        return model.loss_terms(inputs, {"image_hat": o_image, "cr": o_cr, "z0": o_z0,
                                         "z_refined": o_ref})["loss"]

    blocks = [
        ("observe (LS CSI) + channel-state MLP", observe, model.channel_encoder.trainable_variables,
         (snr_db,)),
        ("Swin encoder", lambda x, cond: model.encoder(x, cond),
         model.encoder.trainable_variables, (image, c)),
        ("2D entropy + MLP", entropy, [v for d in model.entropy_mlp for v in d.trainable_variables],
         (z0, c)),
        ("policies", policies, model.map_policy.trainable_variables
         + model.symbol_policy.trainable_variables, (maps, e)),
        ("pack + link + detect + unpack + probe", link_block, [], (maps, mask, snr_db)),
        ("Swin decoder", lambda z, cond: model.decoder(z, cond),
         model.decoder.trainable_variables, (out["z_refined"], c)),
        ("loss terms", loss, [], (out["image_hat"], out["cr"], out["z0"], out["z_refined"])),
    ]
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f}; batch {batch}, XLA {args.xla}, median of {args.runs}")
    total = 0.0
    for name, block, variables, block_args in blocks:
        if any(word in name for word in args.skip):
            continue
        ms = timed(with_gradient(block, variables), block_args, args.runs, xla)
        total += ms
        print(f"{name:>40}: {ms:8.1f} ms", flush=True)
    print(f"{'sum of the blocks':>40}: {total:8.1f} ms")
    if args.no_full_step:
        return
    model.make_train_function()
    step = model.train_function
    data = iter(tf.data.Dataset.from_tensors(inputs).repeat())
    step(data)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), step(data))
        times.append(1e3 * (time.perf_counter() - start))
    print(f"{'full train_step':>40}: {statistics.median(times):8.1f} ms")


if __name__ == "__main__":
    main()
