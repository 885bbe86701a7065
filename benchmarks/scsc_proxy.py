"""How well the SCSC proxy tracks the standard chain, against the number of proxy steps;
and what each learned SCSC stage does to the chain.

Usage::

    python benchmarks/scsc_proxy.py [--steps 300 900] [--batches 4] [--predictability 0]
                                    [--rate-weights W ...] [--ppen-steps 300]

For each step count a fresh ``scsc_q34`` system of ``scenarios/scsc_2x2.yaml``
(``standard`` profile: 16 filters, batch 8, learning rate 5e-4, 64x64 crops of the
embedded photographs, SNR drawn in [2, 12] dB) trains PCEN and then its proxy for that
many steps (the system's own stages); then, at 2, 7 and 12 dB, ``--batches`` fresh batches
with (QP, rate) drawn as in training go through the real chain and the proxy. Printed per
SNR: the proxy-vs-chain PSNR of the mean MSE (the ``proxy_psnr_db`` the runs report), the
same PSNR for the input image itself (what a proxy that ignored the channel would score), the chain's
loss rate and the delivery gate's accuracy.

``--predictability N`` first sends ``N`` batches of 16 images through the chain alone
(SNR uniform in [2, 12] dB, (QP, rate) drawn per batch) and prints the 5-fold
cross-validated accuracy of a logistic regression (scikit-learn) of the ``failed`` flags
on (QP, rate, SNR, per-stream effective SNR in dB, Gaussian capacity, payload bits), and
on (QP, rate, SNR) alone: how far a lost image is predictable from what the proxy is
given.

``--rate-weights W ...`` (with ``--steps`` empty to skip the proxy probes) trains PCEN and
the proxy of a fresh ``scsc_q34`` once, then PPEN from its initial weights for
``--ppen-steps`` steps once per rate weight (``rate_weight``, the ``lambda1`` of the loss),
and prints a table: mean per-image PSNR (dB) with the fraction of lost images in
parentheses at 2, 6, 10 and 14 dB, and CR, for the chain alone at QP 28, 34 and 41, the
chain with the trained PCEN, the chain with PEN's ADMM output alone (mixing weight 1), and
SCSC at QP 34 and 41 per rate weight; the 64 test tiles, the same channel and noise draws
in every row. Numbers on the 2-core machine are in ``docs/scsc.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

import semsim
from semsim.data.pipeline import load_data, train_dataset
from semsim.metrics import mean_psnr, psnr_of_mean_mse
from semsim.seeding import set_seed
from semsim.systems.codec_common import fallback_mean
from semsim.systems.registry import get_system_type
from semsim.systems.scsc.chain import RATES
from semsim.systems.scsc.system import PROXY_CHECK_SNRS_DB

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "scsc_2x2.yaml"


def _psnr(pairs) -> float:
    """PSNR of the mean MSE over the batches' ``(chain output, other)`` pairs."""
    return psnr_of_mean_mse(np.concatenate([a for a, _ in pairs]), np.concatenate([b for _, b in pairs]))


def _setup(**overrides):
    """A fresh ``scsc_q34`` system of the ``standard`` profile (``overrides`` on its
    params), its data, training spec and batch iterator, prepared as ``prepare`` starts."""
    scenario = semsim.load_scenario(SCENARIO, profile="standard").scenario
    data = load_data(scenario.data)
    stype = get_system_type("scsc")
    params = stype.params(**{**scenario.system("scsc_q34").params, **overrides})
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
    return system, data, train, batches


def probe(steps: int, check_batches: int) -> None:
    system, _, train, batches = _setup(proxy_steps=steps)
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


def predictability(batches: int) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from semsim.phy.precoding import SVDPrecoder
    from semsim.systems.scsc.chain import QPS, StandardChain

    scenario = semsim.load_scenario(SCENARIO, profile="standard").scenario
    set_seed(0)
    chain = StandardChain(scenario.link.to_spec())
    images = iter(train_dataset(load_data(scenario.data), 16, 0))
    rng = np.random.default_rng(0)
    features, lost = [], []
    for _ in range(batches):
        batch = np.asarray(next(images), np.float32)
        qp, rate = int(rng.choice(QPS)), str(rng.choice(list(RATES)))
        snr = rng.uniform(2.0, 12.0, size=len(batch)).astype(np.float32)
        h = chain.channel.sample_channel(len(batch))
        out = chain.send(batch, qp, rate, snr, h)
        precoder = SVDPrecoder(h, chain.noise_variance(snr))
        eff = precoder.stream_snr.numpy()
        for i in range(len(batch)):
            features.append([qp, RATES[rate], snr[i], *10 * np.log10(np.maximum(eff[i], 1e-3)),
                             np.log2(1 + eff[i]).sum(), out.source_bits[i] / 1000])
            lost.append(out.failed[i])
    x, y = np.asarray(features), np.asarray(lost)
    model = LogisticRegression(max_iter=2000)
    print(f"\nchain alone, {len(y)} images: loss rate {y.mean():.2f}; logistic regression "
          f"accuracy (5-fold): all features {cross_val_score(model, x, y, cv=5).mean():.2f}, "
          f"QP/rate/SNR only {cross_val_score(model, x[:, :3], y, cv=5).mean():.2f}")


STAGE_SNRS_DB = (2.0, 6.0, 10.0, 14.0)


def stages(rate_weights: list[float], ppen_steps: int, ppen_seeds: int = 1) -> None:
    """PCEN and the proxy trained once (the profile's steps), then PPEN from its initial
    weights ``ppen_seeds`` times per rate weight (data order and draws seeded 5, 6, ...);
    every row sends the 64 test tiles over the same channel and noise draws per SNR (QP 34
    and 41, LDPC 1/2). Last column: HEVC bits per image (set by the codec, the same at every
    SNR)."""
    system, data, train, batches = _setup(ppen_steps=ppen_steps)
    start = time.perf_counter()
    system._train_pcen(train)
    system._train_proxy(batches, train)
    print(f"\nPCEN ({system.pcen_steps} steps, mixing weight {float(system.pcen.mix.numpy()):.3f}) "
          f"and proxy ({system.proxy_steps} steps): {time.perf_counter() - start:.0f} s")
    test = data.test.astype(np.float32) / 255.0
    set_seed(77)
    channels = {snr: [system.chain.channel.sample_channel(len(test[i:i + 16]))
                      for i in range(0, len(test), 16)] for snr in STAGE_SNRS_DB}

    def row(label: str, qp: int, ppen: bool, pcen: bool) -> None:
        cells = []
        for snr in STAGE_SNRS_DB:
            set_seed(1000 + int(snr))  # the same noise draws for every row
            outs, lost, cbr, bits = [], [], [], []
            for i, h in zip(range(0, len(test), 16), channels[snr], strict=True):
                x = test[i:i + 16]
                pre = system.ppen(x, tf.constant(float(qp))).numpy() if ppen else x
                out = system.chain.send(pre, qp, "1/2", snr, h, **(system._hooks() if pcen else {}))
                outs.append(out.images_hat)
                lost.append(out.failed)
                cbr.append(out.cbr)
                bits.append(out.source_bits)
            psnr = mean_psnr(test, np.concatenate(outs))
            cells.append(f"{psnr:5.2f} ({np.mean(np.concatenate(lost)):.2f})")
        print(f"| {label} | {' | '.join(cells)} | {2 * np.mean(np.concatenate(cbr)):.3f} | "
              f"{np.mean(np.concatenate(bits)):.0f} |", flush=True)

    print(f"| system | {' | '.join(f'{s:g} dB' for s in STAGE_SNRS_DB)} | CR | bits |")
    print("| --- |" + " ---: |" * (len(STAGE_SNRS_DB) + 2))
    for qp in (28, 34, 41):
        row(f"chain, QP {qp}", qp, ppen=False, pcen=False)
    row("chain + trained PCEN, QP 34", 34, ppen=False, pcen=True)
    mix = float(system.pcen.mix.numpy())
    system.pcen.mix.assign(1.0)
    row("chain + PEN's ADMM output alone (mixing weight 1), QP 34", 34, ppen=False, pcen=True)
    system.pcen.mix.assign(mix)
    initial = system.ppen.get_weights()
    for weight in rate_weights:
        for seed in range(5, 5 + ppen_seeds):
            system.ppen.set_weights(initial)
            system.rate_weight = weight
            system._rng = np.random.default_rng(seed)
            start = time.perf_counter()
            system._train_ppen(iter(train_dataset(data, train.batch_size, seed)), train)
            print(f"(PPEN, rate weight {weight:g}, seed {seed}: {ppen_steps} steps in "
                  f"{time.perf_counter() - start:.0f} s)")
            tag = f", seed {seed}" if ppen_seeds > 1 else ""
            for qp in (34, 41):
                row(f"SCSC, rate weight {weight:g}{tag}, QP {qp}", qp, ppen=True, pcen=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="*", default=[300, 900],
                        help="proxy step counts to probe (none: only --predictability)")
    parser.add_argument("--batches", type=int, default=4, help="check batches per SNR")
    parser.add_argument("--predictability", type=int, default=0, metavar="N",
                        help="first, N chain batches for the loss-predictability check")
    parser.add_argument("--rate-weights", type=float, nargs="*", default=[], metavar="W",
                        help="then the stages table: PPEN trained once per rate weight")
    parser.add_argument("--ppen-steps", type=int, default=300, help="PPEN steps per rate weight")
    parser.add_argument("--ppen-seeds", type=int, default=1,
                        help="PPEN trainings per rate weight (seeds 5, 6, ...): their spread")
    args = parser.parse_args()
    if args.predictability:
        predictability(args.predictability)
    if args.rate_weights:
        stages(args.rate_weights, args.ppen_steps, args.ppen_seeds)
    for steps in args.steps:
        probe(steps, args.batches)


if __name__ == "__main__":
    main()
