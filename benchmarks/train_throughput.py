"""Training throughput (images/s) of the full systems, XLA on and off, and of their bare
backbones (``--backbone-only``).

Reference system: paper sizes (C = 16, Swin encoder 96/128 with 2/4 blocks, decoder
mirrored), 32x32 images, 2x2 MIMO with LS CSI, training SNRs ~ U[0, 20] dB.
Multi-user system (``--system multiuser``): paper sizes (C = 16, filters 64/128/256,
policies of 256 units), 4 single-antenna users to 4 receive antennas with LS CSI, AdamW,
training SNRs ~ U[0, 25] dB.

``--backbone-only`` adds, for each system, its bare encoder and decoder (the same layers
and sizes, conditioned on the SNR as the full system is on its channel state) with an
AWGN channel in between (unit power per image, complex noise of variance
``10^(-snr/10)``), trained on the image MSE: no MIMO link, CSI, detection, entropy,
policies, masks or rate terms. Full system and backbone are built, compiled and warmed up
side by side, then timed alternately (``--repeats`` blocks of ``--steps`` steps each), so
a machine loaded by other jobs slows both alike; the table gives the median images/s of
the blocks with their range, and the ratio full / backbone: the median of the ratios of
the two blocks of each round (timed one after the other, so slow drifts of the load
cancel), with their range. It also gives the median images per CPU-second of the process
(training images over the CPU time the process used in a block) and that ratio: on a
machine whose wall-clock speed changes under the benchmark (other jobs, stalls), the CPU
time counts only the work of the step.

    python benchmarks/train_throughput.py --batch-sizes 64 128 --steps 5 --warmup 2
    python benchmarks/train_throughput.py --system reference multiuser --backbone-only \\
        --batch-sizes 64 --xla on --steps 3 --repeats 3
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
from semsim.semantic.channel_state import ChannelStateEncoder  # noqa: E402
from semsim.semantic.swin import SwinDecoder, SwinEncoder  # noqa: E402
from semsim.systems.keras_system import LossModel  # noqa: E402
from semsim.systems.multiuser import MultiUserParams, MultiUserSemCom  # noqa: E402
from semsim.systems.multiuser_layers import (  # noqa: E402
    AdaptiveEncoding,
    CNNEncoding,
    SemanticDecoder,
)
from semsim.systems.reference import ReferenceModel, ReferenceParams  # noqa: E402

SIZE = 32
REFERENCE_LINK = LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(mode="ls", pilots=2))
MULTIUSER_LINK = LinkSpec(num_rx_ant=4, users=4, antennas_per_user=1,
                          csi=CSISpec(mode="ls", pilots=4))


def awgn(z: tf.Tensor, snr_db: tf.Tensor) -> tf.Tensor:
    """Real latent ``[B, ...]`` (an even number of reals per image) as complex symbols at
    unit average power per image plus complex Gaussian noise of variance ``10^(-snr/10)``
    (``snr_db`` ``[B]``, dB); returns the noisy reals, shaped like ``z``."""
    shape = tf.shape(z)
    flat = tf.reshape(z, [shape[0], -1, 2])
    x = tf.complex(flat[..., 0], flat[..., 1])
    power = tf.reduce_mean(tf.abs(x) ** 2, axis=1, keepdims=True)
    x = x / tf.cast(tf.sqrt(power), tf.complex64)
    std = tf.sqrt(10.0 ** (-snr_db / 10.0) / 2.0)[:, None]
    noise = tf.complex(tf.random.normal(tf.shape(x)) * std, tf.random.normal(tf.shape(x)) * std)
    y = x + noise
    return tf.reshape(tf.stack([tf.math.real(y), tf.math.imag(y)], -1), shape)


class _MSEBackbone(LossModel):
    """Encoder -> AWGN -> decoder on the image MSE (subclasses define ``_reconstruct``)."""

    def _loss(self, data, training):
        mse = tf.reduce_mean(tf.square(data["image"] - self._reconstruct(data)))
        return mse, {"loss": mse}

    def call(self, inputs, training=False):
        return {"image_hat": self._reconstruct(inputs)}


class ReferenceBackbone(_MSEBackbone):
    """The reference system's Swin encoder and decoder (CCAM on ``c``) and its
    channel-state encoder, fed ``H = I`` and the SNR, with an AWGN channel."""

    def __init__(self, params: ReferenceParams, **kwargs):
        super().__init__(**kwargs)
        p = params
        swin = dict(window_size=p.window_size, patch_size=p.patch_size, mlp_ratio=p.mlp_ratio,
                    conditioned=True)
        self.state = ChannelStateEncoder(p.channel_embed_dim, p.hidden_units)
        self.encoder = SwinEncoder(p.num_maps, p.encoder_dims, p.encoder_depths,
                                   p.encoder_heads, **swin)
        self.decoder = SwinDecoder(p.decoder_dims, p.decoder_depths, p.decoder_heads, **swin)
        self.ant = REFERENCE_LINK.num_tx_ant

    def _reconstruct(self, data):
        image, snr_db = data["image"], data["snr_db"]
        eye = tf.eye(self.ant, batch_shape=tf.shape(snr_db)[:1], dtype=tf.complex64)
        c = self.state(eye, snr_db)
        return self.decoder(awgn(self.encoder(image, c), snr_db), c)


class MultiUserBackbone(_MSEBackbone):
    """The multi-user system's per-user CNN + channel-adaptive encoders and semantic
    decoders (conditioned on ``2M + 1`` reals, the SNR in every entry), each user's latent
    over its own AWGN channel; images grouped by ``K`` as in the full system."""

    def __init__(self, params: MultiUserParams, users: int, cond_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.users, self.cond_dim = users, cond_dim
        f = params.filters
        self.cnn = [CNNEncoding(f) for _ in range(users)]
        self.adaptive = [AdaptiveEncoding(f[2], params.num_maps, params.use_attention)
                         for _ in range(users)]
        self.decoders = [SemanticDecoder(f, params.num_heads, params.use_attention)
                         for _ in range(users)]

    def _reconstruct(self, data):
        image, snr_db = data["image"], data["snr_db"]
        k = self.users
        groups = tf.reshape(image, [-1, k, *image.shape[1:]])
        snr = tf.reshape(snr_db, [-1, k])[:, 0]
        cond = tf.tile(snr[:, None] / 10.0, [1, self.cond_dim])
        out = [self.decoders[u](awgn(self.adaptive[u](self.cnn[u](groups[:, u]), cond), snr), cond)
               for u in range(k)]
        return tf.reshape(tf.stack(out, axis=1), tf.shape(image))


def build(system: str, backbone: bool) -> tuple[keras.Model, keras.optimizers.Optimizer, float]:
    """A fresh model (full system or its backbone), its optimizer and its top training SNR."""
    set_seed(0)
    if system == "reference":
        params = ReferenceParams()
        model = ReferenceBackbone(params) if backbone else ReferenceModel(
            params, REFERENCE_LINK, (SIZE, SIZE), seed=0)
        return model, keras.optimizers.Adam(1e-4), 20.0
    params = MultiUserParams()
    link = MULTIUSER_LINK
    if backbone:
        model = MultiUserBackbone(params, link.users, 2 * link.num_rx_ant + 1)
    else:
        model = MultiUserSemCom(link, image_size=(SIZE, SIZE), seed=0, **params.model_dump(
            exclude={"train_snr_db", "eval_batch_size"}))
    return model, keras.optimizers.AdamW(1e-3, weight_decay=5e-4), 25.0


class Timed:
    """One model compiled for ``fit`` on a fixed batch; :meth:`run` times ``steps`` steps."""

    def __init__(self, system: str, backbone: bool, batch_size: int, jit: bool, warmup: int):
        self.model, optimizer, top_snr = build(system, backbone)
        rng = np.random.default_rng(0)
        inputs = {
            "image": tf.constant(rng.random((batch_size, SIZE, SIZE, 3), np.float32)),
            "snr_db": tf.constant(rng.uniform(0, top_snr, batch_size).astype(np.float32)),
        }
        self.model(inputs)
        self.model.compile(optimizer=optimizer, jit_compile=jit)
        self.data = tf.data.Dataset.from_tensors(inputs).repeat()
        self.batch_size = batch_size
        start = time.perf_counter()
        self.model.fit(self.data, steps_per_epoch=warmup, epochs=1, verbose=0)
        self.warmup_s = time.perf_counter() - start
        self.rates: list[float] = []
        self.cpu_rates: list[float] = []

    def run(self, steps: int) -> None:
        start, cpu = time.perf_counter(), time.process_time()
        self.model.fit(self.data, steps_per_epoch=steps, epochs=1, verbose=0)
        self.rates.append(self.batch_size * steps / (time.perf_counter() - start))
        self.cpu_rates.append(self.batch_size * steps / (time.process_time() - cpu))

    @property
    def images_per_s(self) -> float:
        return statistics.median(self.rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", nargs="+", choices=["reference", "multiuser"],
                        default=["reference"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per block")
    parser.add_argument("--repeats", type=int, default=1, help="timed blocks per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (incl. compile)")
    parser.add_argument("--xla", choices=["on", "off", "both"], default="both")
    parser.add_argument("--backbone-only", action="store_true",
                        help="also time each system's bare encoder+decoder with AWGN, side by "
                             "side, and print the ratio full / backbone")
    args = parser.parse_args()
    xla = {"on": [True], "off": [False], "both": [False, True]}[args.xla]
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}, "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}")
    print(f"{'system':>9} {'model':>8} {'batch':>5} {'XLA':>4} {'warm-up s':>10} "
          f"{'ms/step':>9} {'images/s':>9} {'range':>13} {'full/backbone (range)':>22} "
          f"{'images/CPU-s':>12} {'full/backbone, CPU':>19}")
    speedups = []
    for system in args.system:
        for batch in args.batch_sizes:
            by_jit = {}
            for jit in xla:
                kinds = ["full", "backbone"] if args.backbone_only else ["full"]
                timed = {kind: Timed(system, kind == "backbone", batch, jit, args.warmup)
                         for kind in kinds}
                for kind in kinds:  # one untimed round: a model warmed up before the
                    timed[kind].run(args.steps)  # other's warm-up ran its first block slower
                    timed[kind].rates.clear()
                    timed[kind].cpu_rates.clear()
                for _ in range(args.repeats):  # alternate: background load hits both alike
                    for kind in kinds:
                        timed[kind].run(args.steps)
                for kind in kinds:
                    t = timed[kind]
                    ratio, cpu_ratio = f"{'':>22}", ""
                    cpu_rate = statistics.median(t.cpu_rates)
                    if kind == "backbone":  # paired by round: full block i / backbone block i
                        pairs = [f / b for f, b in zip(timed["full"].rates, t.rates, strict=True)]
                        ratio = (f"{statistics.median(pairs):>10.2f} ({min(pairs):.2f}-"
                                 f"{max(pairs):.2f})")
                        cpu_ratio = f"{statistics.median(timed['full'].cpu_rates) / cpu_rate:>19.2f}"
                    spread = f"{min(t.rates):.1f}-{max(t.rates):.1f}"
                    print(f"{system:>9} {kind:>8} {batch:>5} {'on' if jit else 'off':>4} "
                          f"{t.warmup_s:>10.1f} {1e3 * batch / t.images_per_s:>9.0f} "
                          f"{t.images_per_s:>9.1f} {spread:>13} {ratio} {cpu_rate:>12.1f} "
                          f"{cpu_ratio}", flush=True)
                by_jit[jit] = timed["full"].images_per_s
            if len(by_jit) == 2:
                speedups.append(f"{system} batch {batch}: XLA speed-up "
                                f"x{by_jit[True] / by_jit[False]:.2f}")
    print("\n".join(speedups))


if __name__ == "__main__":
    main()
