"""The ``scsc`` system: PPEN + the real standard chain (+ PCEN), trained through a proxy.

Training (:meth:`SCSCSystem.prepare`), in the order the method needs:

1. ``fallback``: the training set's mean color, shown for a lost image.
2. PCEN (``pcen: true``): ``pcen_steps`` steps on the symbol MSE of
   :class:`~semsim.systems.scsc.pcen.PCEN` (random QPSK streams, the link's channels).
3. Proxy (``ppen: true``): ``proxy_steps`` steps on the MSE of the proxy's image path
   against ``chain(x)`` over the delivered images plus the cross entropy of its delivery
   gate against the chain's ``failed`` flags (:mod:`semsim.systems.scsc.proxy`), for
   (QP, rate, SNR) drawn as PPEN will use them (all paper QPs with QA layers, the
   system's QP without), then frozen. Its PSNR against the chain is then measured per SNR
   on fresh batches (:attr:`SCSCSystem.proxy_report`, in the results as
   ``proxy_psnr_db``); below :data:`PROXY_MIN_PSNR_DB` a warning says the proxy does
   not track the chain.
4. PPEN (``ppen: true``): ``ppen_steps`` (default ``train.steps``) steps of

       L = D + lambda1 R + lambda2 L_PCEN + lambda3 L_pre,
       lambda2 = 0.5, lambda3 = 0.1 (the published weights), lambda1 = ``rate_weight``

   with ``D`` the MSE between ``x`` and ``straight_through(chain(PPEN(x)), decoded(PPEN(x)))``
   over the images the chain delivered (divided by the batch size; ``decoded`` the proxy's
   image path): a lost image's output, the fallback, does not depend on PPEN, so it sends
   no gradient (:meth:`SCSCSystem._ppen_loss`), ``R`` a rate
   surrogate (the mean absolute spatial gradient of ``PPEN(x)`` over that of ``x``: intra
   coding spends bits on detail), ``L_pre = MSE(x, PPEN(x))`` and ``L_PCEN`` the symbol
   MSE of step 2. How the paper defines its rate and third term was not available here;
   these are our reading, stated so it can be checked. The published ``lambda1 = 0.1``
   belongs to the paper's rate term: with this surrogate it cuts the CR at QP 34 from
   0.359 to 0.195 at a 2-11 dB quality cost, so ``rate_weight`` defaults to
   :data:`~semsim.systems.params.SCSC_RATE_WEIGHT` (measured there). PCEN's parameters do not reach
   ``D`` through a gradient (the chain is not differentiable and the proxy does not model
   PCEN), so minimizing ``lambda2 L_PCEN`` in its own stage is the same optimization.

   ``ppen_forward: proxy`` is the ProxyNet baseline: ``D = MSE(x, proxy(PPEN(x)))``, the
   proxy alone in the forward pass as well (no chain pass in this stage), evaluated, like
   SCSC, on the real chain. The difference between the two is what the straight-through
   training buys.

With validation images (``train.validation_images``, as the runner gives them), the PPEN
stage logs its validation PSNR through the real chain to ``<workdir>/ppen/history.csv``
(:class:`_PPENHistory`), from which the run reads its convergence trend like a Keras
system's. PCEN and the proxy have their own losses and log nothing.

Training SNRs are drawn from ``train.snr_range_db`` (the scenarios use the paper's
[2, 12] dB); the optimizer is AdamW with polynomial learning-rate decay (power 0.9) to
zero over each stage. The forward pass of every PPEN step runs the real chain eagerly.
``train.max_seconds`` bounds the whole of ``prepare``: every stage stops once it is spent
(the proxy check still runs).

Evaluation: ``PPEN(x)`` (when enabled) -> chain at the system's (QP, rate) with PCEN's
PEN/CEN hooks (when enabled). CR = ``2 cbr`` (real symbols entering the channel per
source value); extras ``cbr``, ``failed``, ``source_bits``.
Ablations: ``ppen: false`` (chain without pre-processing), ``pcen: false`` (plain SVD
precoding and combining), ``qa: false`` (PPEN without QA layers, trained at this system's
QP only: one PPEN per QP). ``ppen: false, pcen: false`` is the standard chain alone.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from semsim.atomic import write_text
from semsim.metrics import psnr_of_mean_mse
from semsim.phy.spec import LinkSpec
from semsim.systems.base import System, TrainReport, TrainSpec, TransmitResult, check_images
from semsim.systems.codec_common import fallback_mean
from semsim.systems.history import HISTORY, val_psnr_db
from semsim.systems.params import PROXY_MIN_PSNR_DB, SCSC_RATE_WEIGHT, SCSCParams
from semsim.systems.scsc.chain import QPS, RATES, StandardChain, check_qp_rate
from semsim.systems.scsc.pcen import PCEN
from semsim.systems.scsc.ppen import PPEN
from semsim.systems.scsc.proxy import ProxyNet
from semsim.systems.scsc.straight_through import straight_through

logger = logging.getLogger(__name__)

#: Sends of the validation images per ``ppen/history.csv`` row: a lost image costs
#: 15-20 dB of its PSNR, so one channel draw of about 60 images moved the logged value by
#: 0.4-0.8 dB between rows of one training (docs/scsc.md, "Convergence of the stages").
VALIDATION_DRAWS = 4

#: The trained stages' weights and ``{"steps_done", "steps_planned"}``, in the workdir.
_WEIGHTS, _STATE = "scsc.weights.npz", "scsc.state.json"

LAMBDA_PCEN, LAMBDA_PRE = 0.5, 0.1
#: Learning rate of the proxy's delivery gate (Adam, constant).
GATE_LEARNING_RATE = 1e-2
#: SNRs (dB) at which the proxy is checked against the chain after its training.
PROXY_CHECK_SNRS_DB = (2.0, 7.0, 12.0)
_PCEN_SYMBOLS = 64
#: Sub-directory of the workdir with the PPEN stage's ``history.csv`` (its name is the
#: stage's in reports).
PPEN_STAGE = "ppen"


def _optimizer(train: TrainSpec, steps: int) -> keras.optimizers.Optimizer:
    schedule = keras.optimizers.schedules.PolynomialDecay(
        train.learning_rate, max(1, steps), end_learning_rate=0.0, power=0.9)
    return keras.optimizers.AdamW(schedule, weight_decay=train.weight_decay,
                                  global_clipnorm=train.clip_norm)


def _images_of(batch) -> np.ndarray:
    images = batch[0] if isinstance(batch, tuple | list) else batch
    return np.asarray(images, np.float32)


def _mean_gradient(x: tf.Tensor) -> tf.Tensor:
    dy = tf.abs(x[:, 1:] - x[:, :-1])
    dx = tf.abs(x[:, :, 1:] - x[:, :, :-1])
    return tf.reduce_mean(dy) + tf.reduce_mean(dx)


class _PPENHistory:
    """The PPEN stage's ``history.csv`` (in ``<workdir>/ppen/``; :mod:`semsim.systems.history`
    reads it like a Keras system's): every ``train.steps_per_epoch`` steps and at the
    last one (also the last before ``train.max_seconds`` stops the stage), the step,
    the mean PPEN loss since the previous row and ``val_psnr_db``,
    the system's headline PSNR on the held-out validation images through the real chain
    at its (QP, rate) and the middle of the training SNR range, averaged over
    :data:`VALIDATION_DRAWS` seeded channel and noise draws, the same every time.
    Nothing is written without validation images.
    The stage always starts from scratch, so the file is started afresh."""

    def __init__(self, system: SCSCSystem, train: TrainSpec, directory: Path):
        images = train.validation_images
        self.system, self.every, self.seed = system, max(1, train.steps_per_epoch), train.seed
        self.images = None if images is None or not len(images) else np.asarray(images, np.float32)
        self.snr_range_db = train.snr_range_db
        self.path, self.losses = directory / HISTORY, []
        if self.images is not None:
            directory.mkdir(parents=True, exist_ok=True)
            write_text(self.path, "step,loss,val_psnr_db\n")

    def step(self, done: int, loss: float, last: bool) -> None:
        if self.images is None:
            return
        self.losses.append(loss)
        if done % self.every and not last:
            return
        value = val_psnr_db(self.system, self.images, self.snr_range_db, self.seed,
                            draws=VALIDATION_DRAWS)
        with self.path.open("a") as handle:
            handle.write(f"{done},{np.mean(self.losses):.6g},{value:.6f}\n")
        self.losses = []


class SCSCSystem(System):
    """See the module docstring. ``qp`` in :data:`~semsim.systems.scsc.chain.QPS`,
    ``rate`` ``"1/2"`` or ``"3/4"``."""

    type_name: ClassVar[str] = "scsc"
    #: The type learns (:func:`semsim.weights.manifest.learned_systems` reads this); an
    #: instance without PPEN and PCEN, the standard chain alone, does not.
    trainable = True

    def __init__(self, link: LinkSpec, qp: int = 34, rate: str = "1/2", ppen: bool = True,
                 pcen: bool = True, qa: bool = True, filters: int = 32, ppen_depth: int = 3,
                 admm_layers: int = 8, proxy_steps: int = 900, pcen_steps: int = 200,
                 ppen_steps: int | None = None, proxy_check_batches: int = 4,
                 ppen_forward: str = "chain", rate_weight: float = SCSC_RATE_WEIGHT):
        check_qp_rate(qp, rate)
        if ppen_forward not in ("chain", "proxy"):
            raise ValueError(f"ppen_forward must be 'chain' or 'proxy', got {ppen_forward!r}")
        if not rate_weight >= 0:
            raise ValueError(f"rate_weight must be >= 0, got {rate_weight!r}")
        self.ppen_forward, self.rate_weight = ppen_forward, float(rate_weight)
        self.link, self.qp, self.rate = link, qp, rate
        self.use_ppen, self.use_pcen, self.qa = ppen, pcen, qa
        self.chain = StandardChain(link)
        self.ppen = PPEN(filters, ppen_depth, qa=qa) if ppen else None
        self.proxy = ProxyNet(filters) if ppen else None
        self.pcen = PCEN(admm_layers) if pcen else None
        self.trainable = bool(ppen or pcen)  # the chain alone learns nothing
        self.proxy_steps, self.pcen_steps = int(proxy_steps), int(pcen_steps)
        self.ppen_steps = None if ppen_steps is None else int(ppen_steps)
        self.proxy_check_batches = int(proxy_check_batches)
        self.proxy_report: dict[float, float] = {}
        self._rng = np.random.default_rng(0)
        self._deadline: float | None = None

    def _out_of_time(self) -> bool:
        """``train.max_seconds`` spent (checked before every step of every stage)."""
        return self._deadline is not None and time.monotonic() > self._deadline

    # -- chain hooks --------------------------------------------------------------------
    def _hooks(self) -> dict:
        if self.pcen is None:
            return {}
        return {"precode": self.pcen.precode, "cen": self.pcen.cen}

    def _send(self, images, qp, rate, snr_db, h=None):
        return self.chain.send(images, qp, rate, snr_db, h, **self._hooks())

    def _fallback(self, images) -> np.ndarray:
        """The chain's image for a lost one, ``[H, W, 3]``, at the size of ``images``."""
        return self.chain.fallback_image(tuple(images.shape[1:3]))

    def _draw(self, batch: int, snr_range) -> tuple[int, str, np.ndarray]:
        qps = QPS if self.qa else (self.qp,)
        qp = int(self._rng.choice(qps))
        rate = str(self._rng.choice(list(RATES)))
        snr = self._rng.uniform(*snr_range, size=batch).astype(np.float32)
        return qp, rate, snr

    # -- training -----------------------------------------------------------------------
    def has_checkpoint(self, workdir: Path) -> bool:
        """The trained stages' weights and their step counts (written together at the end)."""
        return all((Path(workdir) / name).exists() for name in (_WEIGHTS, _STATE))

    def planned_steps(self, train: TrainSpec) -> int:
        """Optimizer steps of every stage together (PCEN, proxy, PPEN); 0 for the chain
        alone."""
        steps = self.pcen_steps if self.pcen is not None else 0
        if self.ppen is not None:
            steps += self.proxy_steps + (train.steps if self.ppen_steps is None else self.ppen_steps)
        return steps

    def prepare(self, train_data: Any, train: TrainSpec, workdir: Path,
                resume: bool) -> TrainReport | None:
        """Train PCEN, the proxy and PPEN (those the system has), in that order; returns
        the steps done and planned over the stages (``None`` for the chain alone). A
        stage that ``train.max_seconds`` stops leaves the system under-trained: a warning,
        and ``resume`` trains it again (the stages keep no intermediate state)."""
        self._rng = np.random.default_rng(train.seed)
        self._deadline = None if train.max_seconds is None else time.monotonic() + train.max_seconds
        batches = iter(train_data)
        first = _images_of(next(batches))
        shape = first.shape[1:3]
        mean = fallback_mean([first])
        self.chain.fallback = np.broadcast_to(mean, (*shape, 3)).astype(np.float32).copy()
        path, state = Path(workdir) / _WEIGHTS, Path(workdir) / _STATE
        self._build(first[:1])
        planned = self.planned_steps(train)
        if planned == 0:  # the standard chain alone: nothing to train
            return None
        if resume and path.exists() and state.exists():
            saved = TrainReport(**json.loads(state.read_text()))
            if saved.complete:
                self._load(path)
                return saved
        done = 0
        if self.pcen is not None:
            done += self._train_pcen(train)
        if self.ppen is not None:
            done += self._train_proxy(batches, train)
            self._check_proxy(batches, train)
            done += self._train_ppen(batches, train, workdir)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._save(path)
        report = TrainReport(done, planned)
        write_text(state, json.dumps({"steps_done": done, "steps_planned": planned}))
        if not report.complete:
            logger.warning("scsc: training stopped by the wall-clock budget (train.max_seconds = "
                           "%g) after %d of %d steps (PCEN, proxy and PPEN together): the "
                           "system is UNDER-TRAINED; raise train.max_seconds",
                           train.max_seconds or 0.0, done, planned)
        return report

    def _build(self, image: np.ndarray) -> None:
        h = self.chain.channel.sample_channel(1)
        qp, snr = tf.constant([float(self.qp)]), tf.constant([10.0])
        if self.ppen is not None:
            self.ppen(image, qp)
            self.proxy(image, qp, tf.constant([RATES[self.rate]]), snr, h)
        if self.pcen is not None:
            streams = tf.ones([1, self.chain.streams, 2], tf.complex64)
            self.pcen(streams, h, snr, channel=self.chain.channel)

    def _models(self) -> list[keras.Model]:
        return [m for m in (self.ppen, self.proxy, self.pcen) if m is not None]

    def _save(self, path: Path) -> None:
        arrays = {f"{i}_{j}": w for i, m in enumerate(self._models())
                  for j, w in enumerate(m.get_weights())}
        np.savez(path, **arrays)

    def _load(self, path: Path) -> None:
        with np.load(path) as data:
            for i, m in enumerate(self._models()):
                m.set_weights([data[f"{i}_{j}"] for j in range(len(m.get_weights()))])

    def _train_pcen(self, train: TrainSpec) -> int:
        opt = _optimizer(train, self.pcen_steps)
        s = self.chain.streams

        @tf.function(reduce_retracing=True)
        def step(streams, h, snr):
            with tf.GradientTape() as tape:
                loss = LAMBDA_PCEN * self.pcen(streams, h, snr, channel=self.chain.channel)
            grads = tape.gradient(loss, self.pcen.trainable_weights)
            opt.apply(grads, self.pcen.trainable_weights)

        done = 0
        for _ in range(self.pcen_steps):
            if self._out_of_time():
                break
            done += 1
            bits = self._rng.integers(0, 2, size=(train.batch_size, s, _PCEN_SYMBOLS, 2))
            streams = tf.constant(((2 * bits[..., 0] - 1) + 1j * (2 * bits[..., 1] - 1))
                                  / np.sqrt(2), tf.complex64)
            h = self.chain.channel.sample_channel(train.batch_size)
            snr = tf.constant(self._rng.uniform(*train.snr_range_db, size=train.batch_size),
                              tf.float32)
            step(streams, h, snr)
        return done

    def _train_proxy(self, batches, train: TrainSpec) -> int:
        """The image path on the delivered images' MSE (the stage's optimizer), the gate on
        the cross entropy of delivery (its own Adam at :data:`GATE_LEARNING_RATE`: a
        small classifier of a few inputs, it would lag far behind at an image model's
        learning rate)."""
        opt = _optimizer(train, self.proxy_steps)
        gate_opt = keras.optimizers.Adam(GATE_LEARNING_RATE)
        gate = self.proxy.gate.trainable_weights
        ids = {id(v) for v in gate}
        image_path = [v for v in self.proxy.trainable_weights if id(v) not in ids]

        @tf.function(reduce_retracing=True)
        def step(pre, qp, rate, snr, h, real, delivered):
            with tf.GradientTape(persistent=True) as tape:
                decoded, logit = self.proxy.parts(pre, qp, rate, snr, h)
                per_image = tf.reduce_mean((decoded - real) ** 2, axis=[1, 2, 3])
                mse = tf.math.divide_no_nan(tf.reduce_sum(delivered * per_image),
                                            tf.reduce_sum(delivered))
                bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(delivered, logit))
            opt.apply(tape.gradient(mse, image_path), image_path)
            gate_opt.apply(tape.gradient(bce, gate), gate)

        done = 0
        for _ in range(self.proxy_steps):
            if self._out_of_time():
                break
            done += 1
            images = _images_of(next(batches))
            pre = images if self.ppen is None else self.ppen(images, tf.constant(float(self.qp)))
            qp, rate, snr = self._draw(len(images), train.snr_range_db)
            h = self.chain.channel.sample_channel(len(images))
            out = self._send(np.asarray(pre), qp, rate, snr, h)
            step(tf.constant(pre), tf.constant(float(qp)), tf.constant(RATES[rate]),
                 tf.constant(snr), h, tf.constant(out.images_hat), tf.constant(1.0 - out.failed))
        self.proxy.trainable = False
        return done

    def _check_proxy(self, batches, train: TrainSpec) -> None:
        """Proxy-vs-chain PSNR per SNR, warning when it does not track. The PSNR of the
        mean MSE over the check images: a lost image that the proxy predicts is matched
        exactly (the fallback), and such exact matches would inflate a mean of per-image
        PSNRs toward the cap."""
        self.proxy_report = {}
        for snr_db in PROXY_CHECK_SNRS_DB:
            real, approx = [], []
            for _ in range(self.proxy_check_batches):
                images = _images_of(next(batches))
                qp, rate, _ = self._draw(len(images), train.snr_range_db)
                h = self.chain.channel.sample_channel(len(images))
                snr = np.full(len(images), snr_db, np.float32)
                real.append(self._send(images, qp, rate, snr, h).images_hat)
                approx.append(self.proxy(images, tf.constant(float(qp)), tf.constant(RATES[rate]),
                                         tf.constant(snr), h, fallback=self._fallback(images)).numpy())
            self.proxy_report[snr_db] = psnr_of_mean_mse(np.concatenate(real), np.concatenate(approx))
        bad = {s: round(p, 2) for s, p in self.proxy_report.items() if p < PROXY_MIN_PSNR_DB}
        if bad:
            warnings.warn(f"scsc: the proxy does not track the chain (PSNR proxy vs chain below "
                          f"{PROXY_MIN_PSNR_DB} dB at SNR {bad}); PPEN gradients are unreliable",
                          RuntimeWarning, stacklevel=2)

    def _ppen_loss(self, images: tf.Tensor, qp: int, rate: str, snr: np.ndarray,
                   h: tf.Tensor) -> tf.Tensor:
        """The PPEN stage's loss on one batch (scalar; call it inside a gradient tape):
        ``D + rate_weight R + LAMBDA_PRE L_pre`` (module docstring, step 4).

        ``images`` ``[B, H, W, 3]`` in [0, 1], ``snr`` ``[B]`` dB, ``h`` ``[B, Nr, Nt]``.
        With ``ppen_forward: chain``, ``D`` is the real chain's MSE over the images it
        delivered, summed and divided by ``B``, with the gradient of the proxy's image path
        (straight-through). A lost image's output is the fallback, which does not depend on
        PPEN's output: its term is a constant, left out, so it sends no gradient (through
        the full proxy it would send ``p (fallback - x)``, scaled by the gate's belief that
        it was delivered). With ``ppen_forward: proxy``, ``D`` is the MSE of the proxy's
        expected output ``p decoded + (1 - p) fallback`` over every image."""
        pre = self.ppen(images, tf.constant(float(qp)))
        args = (tf.constant(float(qp)), tf.constant(RATES[rate]), tf.constant(snr), h)
        if self.ppen_forward == "chain":
            decoded, _ = self.proxy.parts(pre, *args)
            sent = self._send(pre.numpy(), qp, rate, snr, h)
            out = straight_through(sent.images_hat, decoded)
            delivered = tf.constant(1.0 - sent.failed, tf.float32)
            distortion = tf.reduce_mean(delivered * tf.reduce_mean((out - images) ** 2, axis=[1, 2, 3]))
        else:
            out = self.proxy(pre, *args, fallback=self._fallback(images))
            distortion = tf.reduce_mean((out - images) ** 2)
        return (distortion
                + self.rate_weight * _mean_gradient(pre) / (_mean_gradient(images) + 1e-6)
                + LAMBDA_PRE * tf.reduce_mean((pre - images) ** 2))

    def _train_ppen(self, batches, train: TrainSpec, workdir: Path) -> int:
        steps = train.steps if self.ppen_steps is None else self.ppen_steps
        opt = _optimizer(train, steps)
        history = _PPENHistory(self, train, Path(workdir) / PPEN_STAGE)
        done = 0
        for _ in range(steps):
            if self._out_of_time():
                break
            done += 1
            images = tf.constant(_images_of(next(batches)))
            qp, rate, snr = self._draw(int(images.shape[0]), train.snr_range_db)
            h = self.chain.channel.sample_channel(int(images.shape[0]))
            with tf.GradientTape() as tape:
                loss = self._ppen_loss(images, qp, rate, snr, h)
            grads = tape.gradient(loss, self.ppen.trainable_weights)
            opt.apply(grads, self.ppen.trainable_weights)
            history.step(done, float(loss), last=done == steps or self._out_of_time())
        return done

    # -- evaluation ---------------------------------------------------------------------
    def transmit(self, images, snr_db, h=None, target_cr=None) -> TransmitResult:
        if target_cr is not None:
            raise ValueError("scsc does not match a target CR: its CR follows (qp, rate)")
        images = check_images(images)
        pre = images
        if self.ppen is not None:
            pre = self.ppen(images, tf.constant(float(self.qp))).numpy()
        out = self._send(pre, self.qp, self.rate, float(snr_db), h)
        extras = {"cbr": out.cbr, "failed": out.failed, "source_bits": out.source_bits}
        if self.proxy_report:
            extras["proxy_psnr_db"] = np.full(len(images), np.mean(list(self.proxy_report.values())),
                                              np.float32)
        return TransmitResult(out.images_hat, 2.0 * out.cbr, extras)


def build_scsc(params: SCSCParams, link: LinkSpec, image_size, seed: int):
    """SCSC: PPEN + HEVC/LDPC/QPSK/SVD chain + PCEN, trained through a proxy (Han et al.)."""
    return SCSCSystem(link, **params.model_dump())
