"""Separation baselines that also classify: any image system + a classifier on its output.

System type ``classified``: wraps another registered system (``system``: e.g.
``separation`` for HEVC + LDPC + QAM, ``capacity_bound`` for HEVC at the
capacity-limited rate, eq. (24) of the MIJSCC paper) and adds the 3-layer fully
connected classifier of :mod:`semsim.systems.mijscc_classifier`, trained on *decoded*
images (flattened, ``3HW`` features):

``prepare``: the wrapped system's ``prepare``; then ``classifier_train_images``
training images are sent through the wrapped system in batches of ``batch`` images
(fresh channels, one SNR per batch drawn from ``U[snr range]`` with a generator
seeded from the scenario seed, at CR ``classifier_cr``, or at the wrapped system's own
rate when it is not given), and the classifier is trained for ``classifier_steps`` steps
on random mini-batches of those decoded images. It returns the wrapped system's training
report (steps done and planned), so a learned system inside (``scsc``, ``deepjscc``) is
reported under-trained when its budget cut it.

``transmit`` passes everything to the wrapped system (``h``, ``target_cr`` included,
so ``match_cr_of`` works as usual) and adds the per-image extra ``accuracy`` of the
classifier on the reconstructions.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import tensorflow as tf

from semsim.phy.spec import LinkSpec
from semsim.systems.base import System, TrainReport, TrainSpec, TransmitResult
from semsim.systems.mijscc_classifier import (
    accuracy_extra,
    build_classifier,
    labelled_batches,
    load_or_train,
    train_classifier,
)
from semsim.systems.params import ClassifiedParams
from semsim.systems.registry import get_system_type

TYPE_NAME = "classified"


class ClassifiedSystem(System):
    """``inner`` system + a classifier trained on its decoded training images."""

    type_name = TYPE_NAME
    uses_labels = True

    def __init__(self, inner: System, params: ClassifiedParams, image_size, seed: int):
        self.inner = inner
        self.trainable = inner.trainable
        self.params = params
        self.seed = int(seed)
        height, width = image_size
        self.classifier = build_classifier(3 * height * width, params.num_classes,
                                           params.classifier_hidden)

    def _decoded_training_set(self, batches, train: TrainSpec):
        p = self.params
        rng = np.random.default_rng([self.seed, 11])
        lo, hi = train.snr_range_db
        images, labels = [], []
        count = 0
        for batch_images, batch_labels in itertools.islice(batches, 10**6):
            batch_images = np.asarray(batch_images, np.float32)
            for start in range(0, len(batch_images), p.batch):
                part = batch_images[start: start + p.batch]
                snr = float(rng.uniform(lo, hi))
                decoded = self.inner.transmit(part, snr, target_cr=p.classifier_cr).images_hat
                images.append(np.asarray(decoded, np.float32))
                labels.append(np.asarray(batch_labels)[start: start + p.batch])
                count += len(part)
            if count >= p.classifier_train_images:
                break
        images = np.concatenate(images)[: p.classifier_train_images]
        labels = np.concatenate(labels)[: p.classifier_train_images]
        return images.reshape(len(images), -1), labels.astype(np.int64)

    def prepare(self, train_data, train: TrainSpec, workdir: Path,
                resume: bool) -> TrainReport | None:
        batches = labelled_batches(train_data)
        report = self.inner.prepare(train_data, train, workdir, resume)

        def fit():
            features, labels = self._decoded_training_set(batches, train)
            rng = np.random.default_rng([self.seed, 12])

            def minibatches():
                while True:
                    pick = rng.integers(0, len(features), size=min(train.batch_size, len(features)))
                    yield tf.constant(features[pick]), tf.constant(labels[pick])

            train_classifier(self.classifier, minibatches(), self.params.classifier_steps,
                             self.params.classifier_learning_rate)

        load_or_train(self.classifier, workdir, resume, fit)
        return report

    def transmit(self, images, snr_db, h=None, target_cr=None, labels=None) -> TransmitResult:
        result = self.inner.transmit(images, snr_db, h=h, target_cr=target_cr)
        if labels is not None:
            decoded = np.asarray(result.images_hat, np.float32).reshape(len(images), -1)
            logits = self.classifier.predict_on_batch(decoded)
            result.extras["accuracy"] = accuracy_extra(np.asarray(logits), labels)
        return result

    def summarize(self, extras):
        return self.inner.summarize(extras)

    def planned_steps(self, train: TrainSpec) -> int:
        return self.inner.planned_steps(train)

    def has_checkpoint(self, workdir: Path) -> bool:
        return self.inner.has_checkpoint(workdir)


def build_classified(params: ClassifiedParams, link: LinkSpec, image_size, seed: int):
    """Another system (e.g. HEVC + LDPC + QAM separation, or HEVC at capacity) with a
    3-layer FC classifier trained on its decoded images, reporting ``accuracy``."""
    stype = get_system_type(params.system)
    inner = stype.factory(stype.params.model_validate(params.params), link, image_size, seed)
    return ClassifiedSystem(inner, params, image_size, seed)
