"""The semi-supervised classification head shared by MIJSCC and its baselines.

A 3-layer fully connected classifier (``hidden`` ReLU, ``hidden // 2`` ReLU,
``num_classes`` logits) is trained with labels on *frozen* features: the received noisy
representation of a frozen MIJSCC / Deep JSCC encoder, or the flattened decoded images
of a separation chain. It is never trained jointly with the encoder.

:func:`train_classifier` runs the supervised loop (Adam, sparse cross-entropy) on
batches ``(features, labels)`` produced by a caller-supplied function, so that every
batch sees fresh channel noise at an SNR drawn from the training range.
:func:`accuracy_extra` turns logits and labels into the per-image extra ``accuracy``
(1.0 correct, 0.0 wrong) whose per-SNR mean the runner reports as the accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

CLASSIFIER_WEIGHTS = "classifier.weights.h5"


def build_classifier(num_features: int, num_classes: int, hidden: int = 256) -> keras.Sequential:
    """``[B, num_features]`` -> logits ``[B, num_classes]``: three dense layers."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    model = keras.Sequential([
        keras.layers.Dense(hidden, activation="relu"),
        keras.layers.Dense(max(2, hidden // 2), activation="relu"),
        keras.layers.Dense(num_classes),
    ])
    model.build((None, num_features))
    return model


def train_classifier(classifier: keras.Sequential,
                     batches: Iterator[tuple[tf.Tensor, tf.Tensor]],
                     steps: int, learning_rate: float = 1e-3) -> float:
    """Train ``classifier`` for ``steps`` batches of ``(features [B, d], int labels [B])``;
    returns the mean training accuracy over the last quarter of the steps."""
    optimizer = keras.optimizers.Adam(learning_rate)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True)
    def step(features, labels):
        with tf.GradientTape() as tape:
            logits = classifier(features, training=True)
            loss = loss_fn(labels, logits)
        grads = tape.gradient(loss, classifier.trainable_variables)
        optimizer.apply(grads, classifier.trainable_variables)
        return tf.reduce_mean(tf.cast(tf.argmax(logits, -1) == tf.cast(labels, tf.int64),
                                      tf.float32))

    tail = []
    for i in range(steps):
        features, labels = next(batches)
        acc = float(step(features, labels))
        if i >= steps - max(1, steps // 4):
            tail.append(acc)
    return float(np.mean(tail))


def load_or_train(classifier: keras.Sequential, workdir: Path, resume: bool,
                  train: Callable[[], object]) -> None:
    """Load ``workdir/classifier.weights.h5`` when resuming a finished run, else call
    ``train()`` and save the weights there."""
    path = Path(workdir) / CLASSIFIER_WEIGHTS
    if resume and path.exists():
        classifier.load_weights(path)
        return
    train()
    Path(workdir).mkdir(parents=True, exist_ok=True)
    classifier.save_weights(path, overwrite=True)


def accuracy_extra(logits: np.ndarray, labels) -> np.ndarray:
    """Per-image 1.0 (correct) / 0.0 (wrong): ``[B]`` float64."""
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(logits):
        raise ValueError(f"got {len(labels)} labels for {len(logits)} images")
    return (np.argmax(logits, axis=-1) == labels).astype(np.float64)


def labelled_batches(train_data) -> Iterator[tuple[tf.Tensor, tf.Tensor]]:
    """Endless ``(images, labels)`` batches of a training stream; a clear error when the
    stream carries no labels."""
    spec = train_data.element_spec
    if not isinstance(spec, tuple):
        raise ValueError("this system trains a classifier and needs labels: set data.labels: "
                         "true with a labelled source (digits or cifar10)")
    return iter(train_data.repeat())
