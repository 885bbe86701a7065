"""MIJSCC and A-MIJSCC: one transmission for reconstruction and classification.

After "Multi-Task Semantic Communication: A Mutual Information-Aided Semi-Supervised
Approach" (Wang, Yi, Han, Xu, Zhang, Nallanathan). System type ``mijscc``:

1. **Encoder/decoder** (:class:`semsim.systems.mijscc_model.MIJSCCModel`) trained
   label-free on ``MSE - lambda (mu1 I_global + mu2 I_local)`` (Deep InfoMax JS
   estimates); ``mi_weight: 0`` (lambda = 0) is the Deep JSCC baseline with the same
   encoder and decoder. ``bits: 4 | 8`` quantizes the sent representation onto a square
   QAM grid (straight-through gradient), ``bits: null`` sends it analog.
2. **A-MIJSCC** (``adaptive: true``): after the first ``1 - finetune_fraction`` of the
   steps (the 8-bit model), the noise encoder, consecutive mask and attention are
   switched on and the whole model is fine-tuned for the rest. The extra
   ``active_ratio`` (kept symbols / n) is reported per SNR.
3. **Classifier** (semi-supervised): the encoder is frozen and a 3-layer fully connected
   classifier (:mod:`semsim.systems.mijscc_classifier`) is trained with labels on the
   received (noisy, dequantized) representation, each batch at SNRs drawn from the
   training range, for ``classifier_steps`` steps. Never trained jointly.

At evaluation the runner hands the test labels (``uses_labels``); the per-image extra
``accuracy`` (1 correct / 0 wrong) averages to the accuracy per SNR. ``side_info_bits``
(:meth:`MIJSCCSystem.summarize`, assumed delivered error-free, not counted in the CR) is
the quantizer statistics at their fixed length plus the entropy of the mask's end index
(extra ``kept_symbols``) over the test set, the toolkit's one definition.

The link is the scenario's (any semsim link: SISO with the paper's equalization by the
known gain is ``nr: 1, nt: 1, csi: perfect, detector: zf``; its LS-estimated variant
``csi: ls``; MIMO and multi-user links through the shared
:class:`semsim.phy.AnalogLink`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf

from semsim.phy import reals_to_complex
from semsim.phy.spec import LinkSpec
from semsim.semantic.quantize import SIDE_INFO_BITS
from semsim.systems.base import TrainReport, TrainSpec, TransmitResult, side_info_bits
from semsim.systems.deepjscc import build_for_users
from semsim.systems.keras_system import KerasSystem
from semsim.systems.mijscc_classifier import (
    accuracy_extra,
    build_classifier,
    labelled_batches,
    load_or_train,
    train_classifier,
)
from semsim.systems.mijscc_model import DOWNSAMPLING, MIJSCCModel
from semsim.systems.params import MIJSCCParams

TYPE_NAME = "mijscc"


def channels_for_cr(cr: float) -> int:
    """Representation channels ``c`` whose CR ``c / 192`` is nearest to ``cr`` (>= 1).

    ``c`` channels at ``H/8 x W/8`` are ``HWc/64`` reals, i.e. CR ``c / (3 * 64)``.
    """
    if not 0 < cr <= 1:
        raise ValueError(f"cr must lie in (0, 1]; got {cr!r}")
    return max(1, round(cr * 3 * DOWNSAMPLING**2))


def _budget(train: TrainSpec, steps: int, share: float) -> TrainSpec:
    """``train`` cut to ``steps`` steps and ``share`` of its wall-clock budget."""
    return dataclasses.replace(
        train, steps=steps, steps_per_epoch=min(train.steps_per_epoch, steps),
        max_seconds=None if train.max_seconds is None else train.max_seconds * share)


class MIJSCCSystem(KerasSystem):
    """MIJSCC / A-MIJSCC / Deep JSCC (lambda = 0) with its frozen-encoder classifier."""

    uses_labels = True

    def __init__(self, model: MIJSCCModel, params: MIJSCCParams, **kwargs):
        snr_range = None if params.train_snr_db is None else (params.train_snr_db,) * 2
        super().__init__(model, TYPE_NAME, snr_range_db=snr_range,
                         eval_batch_size=params.eval_batch_size, **kwargs)
        self.params = params
        self.classifier = build_classifier(model.num_reals, params.num_classes,
                                           params.classifier_hidden)
        self._receive = tf.function(
            lambda inputs: model.transmit_representation(inputs, training=False)["rep_hat"],
            reduce_retracing=True)

    def _stages(self, train: TrainSpec) -> tuple[TrainSpec, TrainSpec]:
        """A-MIJSCC's two trainings: the base model and the adaptive fine-tune
        (``finetune_fraction`` of the steps and of the wall-clock budget)."""
        share = self.params.finetune_fraction
        tune = max(1, round(train.steps * share))
        return (_budget(train, max(1, train.steps - tune), 1 - share),
                _budget(train, tune, share))

    def planned_steps(self, train: TrainSpec) -> int:
        if not self.model.adaptive:
            return super().planned_steps(train)
        return sum(stage.epoch_steps for stage in self._stages(train))

    def has_checkpoint(self, workdir: Path) -> bool:
        """A-MIJSCC: the base training's state (the fine-tune follows it)."""
        return super().has_checkpoint(Path(workdir) / "base" if self.model.adaptive else workdir)

    def prepare(self, train_data, train: TrainSpec, workdir: Path, resume: bool) -> TrainReport:
        """Train the encoder/decoder (A-MIJSCC: the base model, then the adaptive fine-tune),
        then the classifier head on the frozen encoder; returns the encoder/decoder steps
        done and planned (both stages together; the head's are not counted)."""
        batches = labelled_batches(train_data)
        workdir = Path(workdir)
        model = self.model
        if model.adaptive:
            base, tune = self._stages(train)
            first = super().prepare(train_data, base, workdir / "base", resume)
            model.enable_adaptive()
            second = super().prepare(train_data, tune, workdir / "adaptive", resume)
            report = TrainReport(first.steps_done + second.steps_done,
                                 first.steps_planned + second.steps_planned)
        else:
            report = super().prepare(train_data, train, workdir, resume)
        self._forward = None
        load_or_train(self.classifier, workdir, resume,
                      lambda: self.train_classifier_head(batches, train))
        return report

    def summarize(self, extras: dict[str, np.ndarray]) -> dict[str, float]:
        """``side_info_bits``: the quantizer's scale, zero point and RMS level at their
        fixed length (:data:`~semsim.semantic.quantize.SIDE_INFO_BITS`) plus, for A-MIJSCC,
        the entropy of the mask's end index over the test set (the one definition of
        :func:`~semsim.systems.base.side_info_bits`); nothing for the analog system."""
        keys = ("kept_symbols",) if self.model.adaptive_active else ()
        fixed = SIDE_INFO_BITS if self.model.bits else 0
        if not keys and not fixed:
            return {}
        return {"side_info_bits": side_info_bits(extras, keys, fixed)}

    def train_classifier_head(self, batches, train: TrainSpec) -> float:
        """Train the classifier on the frozen encoder's received representation:
        ``batches`` yields ``(images, labels)``; each batch is sent at SNRs drawn per image
        from the training range. Returns the final training accuracy."""
        lo, hi = self.snr_range_db or train.snr_range_db
        rng = np.random.default_rng([train.seed, 7])

        def features():
            for images, labels in batches:
                snr = tf.constant(rng.uniform(lo, hi, size=int(images.shape[0])), tf.float32)
                yield self._receive({"image": images, "snr_db": snr}), labels

        return train_classifier(self.classifier, features(), self.params.classifier_steps,
                                self.params.classifier_learning_rate)

    def transmit(self, images, snr_db, h=None, target_cr=None, labels=None) -> TransmitResult:
        result = super().transmit(images, snr_db, h=h, target_cr=target_cr)
        extras = result.extras
        rep_hat = extras.pop("rep_hat")
        ratio = extras.pop("active_ratio")
        for key in ("sent_rep", "features"):
            extras.pop(key)
        if self.model.adaptive_active:
            extras["active_ratio"] = ratio
        if self.model.adaptive_active:
            # The mask's end index: the number of kept complex symbols.
            extras["kept_symbols"] = np.rint(ratio * self.model.num_symbols)
        if labels is not None:
            logits = self.classifier.predict_on_batch(rep_hat)
            extras["accuracy"] = accuracy_extra(np.asarray(logits), labels)
        return result

    def sent_symbols(self, images, snr_db: float) -> np.ndarray:
        """The complex symbols each image puts on the channel, with unit mean energy per
        sent symbol: ``[B, n]`` complex64 (zero where the mask drops a symbol). For the
        constellation plot; the channel is not applied."""
        inputs = {"image": tf.constant(np.asarray(images, np.float32)),
                  "snr_db": tf.fill([len(images)], float(snr_db))}
        out = self.model.transmit_representation(inputs, training=False)
        symbols = reals_to_complex(out["symbols"]).numpy()
        kept = reals_to_complex(out["mask"]).numpy().real > 0
        energy = np.sum(np.abs(symbols) ** 2, axis=1) / np.maximum(kept.sum(axis=1), 1)
        return (symbols / np.sqrt(energy)[:, None]).astype(np.complex64)


def build_model(params: MIJSCCParams, link: LinkSpec, image_size) -> MIJSCCModel:
    """The (built) Keras model of ``params`` on ``link`` for ``image_size`` images."""
    model = MIJSCCModel(
        link, image_size, latent_channels=channels_for_cr(params.cr), filters=params.filters,
        bits=params.bits, mi_weight=params.mi_weight, mu_global=params.mu_global,
        mu_local=params.mu_local, adaptive=params.adaptive, eta=params.eta,
        rate_weight=params.rate_weight)
    build_for_users(model, link, image_size)
    return model


def build_mijscc(params: MIJSCCParams, link: LinkSpec, image_size, seed: int) -> MIJSCCSystem:
    """MIJSCC (InfoMax-aided JSCC, optional q-bit constellation), A-MIJSCC
    (``adaptive``), or Deep JSCC with the same networks (``mi_weight: 0``), each with a
    frozen-encoder classifier reporting ``accuracy``."""
    if params.eval_batch_size % link.users:
        raise ValueError(f"eval_batch_size ({params.eval_batch_size}) must be a multiple of "
                         f"link.users ({link.users})")
    return MIJSCCSystem(build_model(params, link, image_size), params)
