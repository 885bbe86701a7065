"""How well the SCSC proxy tracks the standard chain, against the number of proxy steps.

Usage::

    python benchmarks/scsc_proxy.py [--steps 300 900] [--batches 4]

For each step count a fresh ``scsc_q34`` system of ``scenarios/scsc_2x2.yaml``
(``standard`` profile: 16 filters, batch 8, learning rate 5e-4, 64x64 crops of the
embedded photographs, SNR drawn in [2, 12] dB) trains PCEN and then its proxy for that
many steps (the system's own stages); then, at 2, 7 and 12 dB, ``--batches`` fresh batches
with (QP, rate) drawn as in training go through the real chain and the proxy. Printed per
SNR: the proxy-vs-chain PSNR of the mean MSE (the ``proxy_psnr_db`` the runs report), the
same PSNR for the input image itself (what a proxy that ignored the channel would score), the chain's
loss rate and the delivery gate's accuracy. Numbers on the 2-core machine are in
``docs/scsc.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

import semsim
from semsim.data.pipeline import load_data, train_dataset
from semsim.metrics import psnr_of_mean_mse
from semsim.seeding import set_seed
from semsim.systems.registry import get_system_type
from semsim.systems.scsc.chain import RATES
from semsim.systems.scsc.system import PROXY_CHECK_SNRS_DB
from semsim.systems.separation import fallback_mean

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "scsc_2x2.yaml"


def _psnr(pairs) -> float:
    """PSNR of the mean MSE over the batches' ``(chain output, other)`` pairs."""
    return psnr_of_mean_mse(np.concatenate([a for a, _ in pairs]), np.concatenate([b for _, b in pairs]))


def probe(steps: int, check_batches: int) -> None:
    scenario = semsim.load_scenario(SCENARIO, profile="standard").scenario
    data = load_data(scenario.data)
    stype = get_system_type("scsc")
    entry = scenario.system("scsc_q34")
    params = stype.params(**{**entry.params, "proxy_steps": steps})
    set_seed(0)
    size = scenario.data.image_size
    system = stype.factory(params, scenario.link.to_spec(), (size, size), 0)
    train = scenario.train.to_spec(scenario.snr.train_db, 0,
                                   max(1, data.num_train // scenario.train.batch_size))
    batches = iter(train_dataset(data, scenario.train.batch_size, 0))
    first = np.asarray(next(batches), np.float32)
    system.chain.fallback = np.broadcast_to(fallback_mean([first]), (size, size, 3)).astype(np.float32).copy()
    system._rng = np.random.default_rng(0)
    system._build(first[:1])
    start = time.perf_counter()
    system._train_pcen(train)
    system._train_proxy(batches, train)
    print(f"\n{steps} proxy steps (PCEN and proxy: {time.perf_counter() - start:.0f} s)")
    print("SNR dB | proxy vs chain dB | input vs chain dB | chain loss rate | gate accuracy")
    for snr_db in PROXY_CHECK_SNRS_DB:
        proxy, identity, lost, gate = [], [], [], []
        for _ in range(check_batches):
            images = np.asarray(next(batches), np.float32)
            qp, rate, _ = system._draw(len(images), train.snr_range_db)
            h = system.chain.channel.sample_channel(len(images))
            snr = tf.constant(np.full(len(images), snr_db, np.float32))
            out = system._send(images, qp, rate, snr.numpy(), h)
            args = (images, tf.constant(float(qp)), tf.constant(RATES[rate]), snr, h)
            approx = system.proxy(*args, fallback=system._fallback(images)).numpy()
            _, logit = system.proxy.parts(*args)
            proxy.append((out.images_hat, approx))
            identity.append((out.images_hat, images))
            lost.append(out.failed)
            gate.append((logit.numpy() > 0) == (out.failed == 0))
        print(f"{snr_db:6.1f} | {_psnr(proxy):17.2f} | {_psnr(identity):17.2f} | "
              f"{np.mean(np.concatenate(lost)):15.2f} | {np.mean(np.concatenate(gate)):13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 900])
    parser.add_argument("--batches", type=int, default=4, help="check batches per SNR")
    args = parser.parse_args()
    for steps in args.steps:
        probe(steps, args.batches)


if __name__ == "__main__":
    main()
