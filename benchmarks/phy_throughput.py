"""Throughput of semsim.phy.DigitalLink against the same chain written with raw Sionna calls.

Chain: LDPC5G(k=512, n=1024) -> 16-QAM -> 4x4 spatial multiplexing, block Rayleigh fading,
AWGN at a per-receive-antenna SNR (average calibration), perfect CSI -> LMMSE -> APP demapper
-> 20 BP iterations. Both are compiled with ``tf.function(jit_compile=True)`` and warmed up;
then each decodes ``--codewords`` codewords in total, in ``--rounds`` alternating rounds in one
process, and the script prints information-bit throughputs and the ratio semsim / raw
(target >= 0.95).

    python benchmarks/phy_throughput.py [--codewords 10000] [--batch 500] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from sionna.phy.channel import AWGN, GenerateFlatFadingChannel  # noqa: E402
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder  # noqa: E402
from sionna.phy.mapping import Demapper, Mapper  # noqa: E402
from sionna.phy.mimo import lmmse_equalizer  # noqa: E402

from semsim.phy import DigitalLink  # noqa: E402
from semsim.seeding import set_seed  # noqa: E402

K, N, BITS_PER_SYMBOL, NT, NR, NUM_ITER, SNR_DB = 512, 1024, 4, 4, 4, 20, 12.0


def raw_sionna_chain():
    """The chain from Sionna blocks and functions only; returns ``f(bits, snr_db)``."""
    encoder = LDPC5GEncoder(K, N)
    decoder = LDPC5GDecoder(encoder, num_iter=NUM_ITER, hard_out=True)
    mapper = Mapper("qam", BITS_PER_SYMBOL)
    demapper = Demapper("app", "qam", BITS_PER_SYMBOL)
    channel = GenerateFlatFadingChannel(NT, NR)
    awgn = AWGN()
    length = N // BITS_PER_SYMBOL // NT  # channel uses per codeword

    def run(bits, snr_db):
        batch = tf.shape(bits)[0]
        x = tf.reshape(mapper(encoder(bits)), [batch, length, NT])  # [B, L, Nt]
        h = channel(batch)  # [B, Nr, Nt]
        # average calibration: mean received power per antenna ||X||^2 / L over snr
        no = tf.reduce_sum(tf.abs(x) ** 2, axis=[1, 2]) / length / 10 ** (snr_db / 10)
        y = awgn(tf.linalg.matvec(h[:, tf.newaxis], x), no[:, tf.newaxis, tf.newaxis])
        s = tf.cast(no, tf.complex64)[:, tf.newaxis, tf.newaxis, tf.newaxis] * tf.eye(
            NR, dtype=tf.complex64)
        x_hat, no_eff = lmmse_equalizer(y, h[:, tf.newaxis], s)  # filter once per block
        no_eff = tf.broadcast_to(no_eff, tf.shape(x_hat))  # [B, 1, Nt] -> [B, L, Nt]
        llr = demapper(tf.reshape(x_hat, [batch, -1]), tf.reshape(no_eff, [batch, -1]))
        return decoder(llr)

    return run


def semsim_chain():
    """The same chain as one :class:`semsim.phy.DigitalLink`."""
    return DigitalLink("16qam", "ldpc5g", k=K, n=N, num_rx_ant=NR, num_tx_ant=NT,
                       fading="block", csi="perfect", detector="lmmse", num_iter=NUM_ITER)


def timed(step, batches, batch):
    """Run ``batches`` compiled steps; returns (seconds, bit errors, information bits)."""
    gen = tf.random.Generator.from_seed(0)
    errors = 0
    start = time.perf_counter()
    for _ in range(batches):
        bits = tf.cast(gen.uniform([batch, K], 0, 2, tf.int32), tf.float32)
        errors += int(step(bits))
    return time.perf_counter() - start, errors, batches * batch * K


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codewords", type=int, default=10_000, help="per chain, all rounds")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    set_seed(0)
    snr = tf.constant(SNR_DB, tf.float32)
    steps = {}
    for name, chain in (("raw", raw_sionna_chain()), ("semsim", semsim_chain())):
        def step(bits, chain=chain):
            return tf.reduce_sum(tf.cast(tf.not_equal(chain(bits, snr), bits), tf.int32))
        steps[name] = tf.function(step, jit_compile=True)
    batches = max(1, args.codewords // (args.batch * args.rounds))  # per round
    for name, step in steps.items():  # compile and warm up outside the timed region
        start = time.perf_counter()
        timed(step, 1, args.batch)
        print(f"{name:>7}: compile + first batch {time.perf_counter() - start:.1f} s")
    totals = {name: [0.0, 0, 0] for name in steps}
    for r in range(args.rounds):
        for name, step in steps.items():
            sec, err, bits = timed(step, batches, args.batch)
            totals[name][0] += sec
            totals[name][1] += err
            totals[name][2] += bits
            print(f"round {r}: {name:>7} {bits / sec / 1e6:7.3f} Mbit/s  BER {err / bits:.2e}")
    rate = {name: bits / sec for name, (sec, _, bits) in totals.items()}
    for name, (sec, err, bits) in totals.items():
        print(f"{name:>7}: {bits / sec / 1e6:.3f} Mbit/s info ({bits} bits in {sec:.1f} s, "
              f"BER {err / bits:.2e})")
    print(f"ratio semsim/raw: {rate['semsim'] / rate['raw']:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
