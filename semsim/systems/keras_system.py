"""Adapter turning a learned ``keras.Model`` into a :class:`~semsim.systems.base.System`.

Model convention (every learned system follows it)
--------------------------------------------------
* ``call(inputs, training=False)``: ``inputs`` is a dict with ``"image"``
  ``[B, H, W, 3]`` float32 in ``[0, 1]``, ``"snr_db"`` ``[B]`` float32, optionally
  ``"h"`` (a channel realization to reuse) and ``"target_cr"`` ``[B]`` (rate-conditioned
  systems). It returns a dict with ``"image_hat"`` ``[B, H, W, 3]``, ``"cr"`` ``[B]``
  and any per-image ``[B]`` extras (``"kept_maps"``, ...).
* ``train_step(data)`` / ``test_step(data)`` take that inputs dict (the image is its
  own target) and return metrics including ``"loss"``.
* optional ``training_callbacks(steps_per_epoch) -> list[keras.callbacks.Callback]``
  (temperature annealing, staged schedules).

Training (``prepare``)
----------------------
The batched image data set gets a training SNR per image, drawn from
``U[snr_range_db]`` with a stateless generator keyed on the global batch index, so the
stream of training inputs is a pure function of the seed. After every epoch the
weights, the optimizer state and Sionna's random generator state are written under
``workdir/backup``; an interrupted run (Ctrl-C, crash, wall-clock budget) resumed with
``resume=True`` restores them, skips the batches already seen and continues with the
same inputs it would have had. A finished run leaves ``workdir/final.weights.h5``,
which ``resume=True`` loads instead of training again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from semsim.seeding import restore_sionna_rng_state, set_seed, sionna_rng_state
from semsim.systems.base import System, TrainSpec, TransmitResult

FINAL_WEIGHTS = "final.weights.h5"
#: Final learning rate of the ``cosine`` schedule, as a fraction of the initial one.
COSINE_FINAL_FRACTION = 0.01


def make_optimizer(train: TrainSpec) -> keras.optimizers.Optimizer:
    """Adam or AdamW with the scenario's learning rate (constant, or cosine decay to
    :data:`COSINE_FINAL_FRACTION` of it over ``train.steps``) and weight decay."""
    rate = train.learning_rate
    if train.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            train.learning_rate, decay_steps=train.steps, alpha=COSINE_FINAL_FRACTION)
    elif train.lr_schedule != "constant":
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {train.lr_schedule!r}")
    if train.optimizer == "adam":
        return keras.optimizers.Adam(rate)
    if train.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=train.weight_decay)
    raise ValueError(f"optimizer must be 'adam' or 'adamw', got {train.optimizer!r}")


def training_inputs(
    images: tf.data.Dataset, snr_range_db: tuple[float, float], seed: int
) -> tf.data.Dataset:
    """Endless data set of ``{"image", "snr_db"}`` dicts from a batched image data set
    (of images or ``(images, labels)``); SNRs ~ ``U[lo, hi]`` dB, stateless per batch."""
    lo, hi = (float(v) for v in snr_range_db)
    if hi < lo:
        raise ValueError(f"snr range must be (low, high) with low <= high, got {snr_range_db}")

    def to_inputs(index, batch):
        image = batch[0] if isinstance(batch, tuple) else batch
        snr = tf.random.stateless_uniform(
            tf.shape(image)[:1], seed=tf.stack([tf.cast(seed, tf.int64), index]), minval=lo, maxval=hi
        )
        return {"image": tf.cast(image, tf.float32), "snr_db": snr}

    return images.repeat().enumerate().map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE)


class LossModel(keras.Model):
    """Base of learned models whose training is "minimize ``_loss``": subclasses define
    ``_loss(data, training) -> (loss, metrics)`` on the inputs dict of this module, and
    get the matching ``train_step`` and ``test_step``."""

    def _loss(self, data, training):
        raise NotImplementedError

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, metrics = self._loss(data, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return metrics

    def test_step(self, data):
        return self._loss(data, training=False)[1]


class _EpochBackup(keras.callbacks.Callback):
    """Writes weights + optimizer state, Sionna's RNG state and the epoch after each
    epoch, so that a resumed run continues exactly."""

    def __init__(self, backup_dir: Path):
        super().__init__()
        self.backup_dir = backup_dir

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(self.backup_dir / "state.weights.h5", overwrite=True)
        np.save(self.backup_dir / "sionna_rng.npy", sionna_rng_state())
        (self.backup_dir / "progress.json").write_text(json.dumps({"epochs_done": epoch + 1}))


class _WallClockBudget(keras.callbacks.Callback):
    """Stops training cleanly once ``max_seconds`` have passed (checked per batch)."""

    def __init__(self, max_seconds: float):
        super().__init__()
        self.max_seconds = max_seconds
        self.start = 0.0
        self.exhausted = False

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.start > self.max_seconds:
            self.exhausted = True
            self.model.stop_training = True


class KerasSystem(System):
    """A learned system: a ``keras.Model`` following the module's convention.

    Parameters
    ----------
    model : keras.Model
    type_name : str
        The registry name (a scenario's ``type:``).
    snr_range_db : (float, float) | None
        Training SNR range; ``None`` uses the scenario's (``TrainSpec.snr_range_db``).
        A fixed training SNR is ``(s, s)``.
    eval_batch_size : int
        Images per forward pass in :meth:`transmit`.
    callbacks : list | None
        Extra Keras callbacks for ``fit`` (tests use them to interrupt a run).
    verbose : int
        Keras ``fit`` verbosity (1: progress bar).
    summarize : callable | None
        ``extras -> {name: value}``, see :meth:`System.summarize`.
    """

    trainable = True

    def __init__(
        self,
        model: keras.Model,
        type_name: str,
        snr_range_db: tuple[float, float] | None = None,
        eval_batch_size: int = 64,
        callbacks: list | None = None,
        verbose: int = 1,
        summarize: Callable[[dict[str, np.ndarray]], dict[str, float]] | None = None,
    ):
        self.model = model
        self.type_name = type_name
        self.snr_range_db = snr_range_db
        self.eval_batch_size = int(eval_batch_size)
        self.callbacks = list(callbacks or [])
        self.verbose = verbose
        self._summarize = summarize
        self._forward = None

    def summarize(self, extras: dict[str, np.ndarray]) -> dict[str, float]:
        return self._summarize(extras) if self._summarize else {}

    def _build(self, example: dict) -> None:
        if not self.model.built:
            self.model({k: v[:1] for k, v in example.items()}, training=False)

    def prepare(self, train_data, train: TrainSpec, workdir: Path, resume: bool) -> None:
        workdir = Path(workdir)
        set_seed(train.seed)
        data = training_inputs(train_data, self.snr_range_db or train.snr_range_db, train.seed)
        example = next(iter(data.take(1)))
        self._build(example)
        final = workdir / FINAL_WEIGHTS
        if resume and final.exists():
            self.model.load_weights(final)
            return
        self.model.compile(optimizer=make_optimizer(train), jit_compile=train.jit_compile)
        backup = workdir / "backup"
        initial_epoch = 0
        if resume and (backup / "progress.json").exists():
            self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(backup / "state.weights.h5")
            restore_sionna_rng_state(np.load(backup / "sionna_rng.npy"))
            initial_epoch = json.loads((backup / "progress.json").read_text())["epochs_done"]
        data = data.skip(initial_epoch * train.steps_per_epoch).prefetch(tf.data.AUTOTUNE)
        callbacks = [_EpochBackup(backup)]
        if hasattr(self.model, "training_callbacks"):
            callbacks += list(self.model.training_callbacks(train.steps_per_epoch))
        budget = _WallClockBudget(train.max_seconds) if train.max_seconds else None
        if budget:
            callbacks.append(budget)
        if initial_epoch < train.epochs:
            self.model.fit(
                data,
                epochs=train.epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=train.steps_per_epoch,
                callbacks=callbacks + self.callbacks,
                verbose=self.verbose,
            )
        workdir.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(final, overwrite=True)

    def _forward_fn(self):
        if self._forward is None:
            self._forward = tf.function(
                lambda inputs: self.model(inputs, training=False), reduce_retracing=True
            )
        return self._forward

    def transmit(self, images, snr_db, h=None, target_cr=None) -> TransmitResult:
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be [batch, H, W, 3], got shape {images.shape}")
        outputs: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(images), self.eval_batch_size):
            stop = start + self.eval_batch_size
            batch = images[start:stop]
            inputs = {
                "image": tf.constant(batch),
                "snr_db": tf.fill([len(batch)], tf.constant(float(snr_db), tf.float32)),
            }
            if h is not None:
                inputs["h"] = tf.constant(np.asarray(h)[start:stop], tf.complex64)
            if target_cr is not None:
                inputs["target_cr"] = tf.fill([len(batch)], tf.constant(float(target_cr), tf.float32))
            self._build(inputs)
            for key, value in self._forward_fn()(inputs).items():
                outputs.setdefault(key, []).append(np.asarray(value))
        merged = {key: np.concatenate(values) for key, values in outputs.items()}
        images_hat = merged.pop("image_hat")
        cr = merged.pop("cr")
        return TransmitResult(images_hat=np.clip(images_hat, 0.0, 1.0), cr=cr, extras=merged)
