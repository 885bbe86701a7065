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
stream of training inputs is a pure function of the seed. After every epoch, and
where the wall-clock budget stops training mid-epoch, the weights, the optimizer state,
Sionna's random generator state, the Keras seed generators' states and the steps done
are written (as one set, published atomically) under ``workdir/backup``; an interrupted
run (Ctrl-C, crash, SIGKILL, wall-clock budget, non-finite loss) resumed with
``resume=True`` restores them, skips the batches already seen, finishes a cut epoch
with a short ``fit`` and continues with the same inputs it would have had (with the
learning rate of the resumed ``TrainSpec``, so a diverged run can continue with a
smaller one).
Only a run that did all its planned steps leaves ``workdir/final.weights.h5`` (and
``final.json`` with its step counts), which ``resume=True`` loads instead of training
again; a run stopped by the wall-clock budget ``max_seconds`` logs a warning, returns
``steps_done < steps_planned`` and is continued by the next ``resume=True``.

History: every epoch (and an epoch cut by the budget) appends a row to
``workdir/history.csv`` (Keras ``CSVLogger``, kept across resumes): the training metrics
over the epoch's batches, ``step`` (optimizer steps so far) and, when
``TrainSpec.validation_images`` is given, ``val_psnr_db``: the headline PSNR
(:func:`semsim.metrics.mean_psnr`, 8-bit) of those images at the middle of the training
SNR range, with channel and noise drawn from a fixed seed (the same draws every epoch;
training's random streams are left untouched). ``TrainSpec.tensorboard`` adds
TensorBoard logs in ``workdir/tensorboard``. :mod:`semsim.systems.history` reads it back
(the runner marks a system whose validation PSNR still rose over the second half of its
training NOT converged).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import sionna.phy
import tensorflow as tf

from semsim.atomic import atomic_path, write_text
from semsim.seeding import (
    restore_seed_generator_states,
    restore_sionna_rng_state,
    seed_generator_states,
    set_seed,
    sionna_rng_state,
)
from semsim.systems.base import System, TrainReport, TrainSpec, TransmitResult, check_images
from semsim.systems.distribute import (
    replica_loss,
    shard_by_data,
    skip_symbolic_build,
    step_outputs,
    worker_rank,
    worker_seed,
)
from semsim.systems.history import HISTORY, val_psnr_db
from semsim.systems.precision import wrap_optimizer

FINAL_WEIGHTS = "final.weights.h5"
FINAL_STATE = "final.json"
#: The per-epoch backup of an interrupted training, and the file that publishes it.
BACKUP_DIR, PROGRESS_FILE = "backup", "progress.json"
logger = logging.getLogger(__name__)


class NonFiniteTrainingError(RuntimeError):
    """Training produced a NaN or Inf loss or weights (the last good backup is kept)."""
#: Final learning rate of the ``cosine`` schedule, as a fraction of the initial one.
COSINE_FINAL_FRACTION = 0.01


def make_optimizer(train: TrainSpec) -> keras.optimizers.Optimizer:
    """Adam or AdamW with the scenario's learning rate (constant, or cosine decay to
    :data:`COSINE_FINAL_FRACTION` of it over ``train.steps``), weight decay and optional
    global gradient-norm clipping (``train.clip_norm``), in a loss-scale optimizer for
    ``train.precision: mixed_float16``."""
    return wrap_optimizer(_base_optimizer(train), train.precision)


def _base_optimizer(train: TrainSpec) -> keras.optimizers.Optimizer:
    rate = train.learning_rate
    if train.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            train.learning_rate, decay_steps=train.steps, alpha=COSINE_FINAL_FRACTION)
    elif train.lr_schedule != "constant":
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {train.lr_schedule!r}")
    if train.optimizer == "adam":
        return keras.optimizers.Adam(rate, global_clipnorm=train.clip_norm)
    if train.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=train.weight_decay,
                                      global_clipnorm=train.clip_norm)
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
    get the matching ``train_step`` and ``test_step``.

    The model itself keeps the ``float32`` dtype policy (its inputs, outputs and losses
    stay float32) whatever the global policy its learned layers are built under (see
    :mod:`semsim.systems.precision`); the loss is scaled by the optimizer (a no-op but for
    a :class:`keras.optimizers.LossScaleOptimizer`, whose ``apply`` unscales)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(*args, **kwargs)

    def _loss(self, data, training):
        raise NotImplementedError

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, metrics = self._loss(data, training=True)
            scaled = self.optimizer.scale_loss(replica_loss(loss))
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return step_outputs(metrics)

    def test_step(self, data):
        return step_outputs(self._loss(data, training=False)[1])


class _Progress(keras.callbacks.Callback):
    """Counts optimizer steps (``steps``, over resumes), stops training once
    ``max_seconds`` have passed (checked per batch) and adds ``step`` to the epoch logs."""

    def __init__(self, steps_done: int, steps_per_epoch: int, max_seconds: float | None):
        super().__init__()
        self.steps = steps_done
        self.steps_per_epoch = steps_per_epoch
        self.max_seconds = max_seconds
        self.start = 0.0
        self.budget_hit = False

    def on_train_begin(self, logs=None):
        if not self.start:  # one budget over the fits of one ``prepare``
            self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.max_seconds and time.monotonic() - self.start > self.max_seconds:
            self.budget_hit = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["step"] = self.steps


class _FiniteCheck(keras.callbacks.Callback):
    """Raises :class:`NonFiniteTrainingError` on a NaN/Inf loss (every batch) or NaN/Inf
    weights (every epoch end, before the backup is written)."""

    def __init__(self, progress: _Progress, learning_rate: float, backup_dir: Path):
        super().__init__()
        self.progress = progress
        self.learning_rate = learning_rate
        self.backup_dir = backup_dir

    def _fail(self, what: str):
        progress_file = self.backup_dir / PROGRESS_FILE
        kept = (f"the last good checkpoint ({self.backup_dir}, after epoch "
                f"{json.loads(progress_file.read_text())['epochs_done']}) is kept"
                if progress_file.exists() else "no checkpoint was written yet")
        raise NonFiniteTrainingError(
            f"training diverged at step {self.progress.steps}: {what}; likely cause: a "
            f"learning rate too high for this model (train.learning_rate = "
            f"{self.learning_rate:g}) or exploding gradients; {kept}: continue with --resume "
            f"and a smaller rate, e.g. --set train.learning_rate={self.learning_rate / 10:g}")

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(np.asarray(loss))):
            self._fail(f"the loss is {float(np.asarray(loss))}")

    def on_epoch_end(self, epoch, logs=None):
        finite = all(bool(tf.reduce_all(tf.math.is_finite(w))) for w in self.model.weights
                     if tf.as_dtype(w.dtype).is_floating)
        if not finite:
            self._fail("the weights are not finite (a NaN or Inf gradient)")


class _ValidationPSNR(keras.callbacks.Callback):
    """Adds ``val_psnr_db`` (:func:`~semsim.systems.history.val_psnr_db` of held-out
    images at the middle of ``snr_range_db``) to the epoch logs."""

    def __init__(self, system: KerasSystem, images: np.ndarray,
                 snr_range_db: tuple[float, float], seed: int):
        super().__init__()
        self.system, self.images, self.snr_range_db, self.seed = system, images, snr_range_db, seed

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_psnr_db"] = val_psnr_db(self.system, self.images, self.snr_range_db,
                                                  self.seed)


class _EpochBackup(keras.callbacks.Callback):
    """Writes weights + optimizer state, Sionna's RNG state, the Keras seed generators'
    states and the steps done after each epoch (also one cut by the budget), as one set
    published atomically, so that a resumed run continues exactly."""

    def __init__(self, backup_dir: Path, progress: _Progress):
        super().__init__()
        self.backup_dir = backup_dir
        self.progress = progress

    def on_epoch_end(self, epoch, logs=None):
        # One directory per backup (weights + optimizer state, Sionna's generator and the
        # Keras seed generators, which save_weights leaves out), published by the atomic
        # write of progress.json: a kill at any moment leaves a consistent backup.
        steps = self.progress.steps
        directory = self.backup_dir / f"step_{steps:09d}"
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(directory / "state.weights.h5", overwrite=True)
        np.save(directory / "sionna_rng.npy", sionna_rng_state())
        np.save(directory / "seed_generators.npy", seed_generator_states(self.model))
        write_text(self.backup_dir / PROGRESS_FILE, json.dumps(
            {"epochs_done": steps // self.progress.steps_per_epoch, "steps_done": steps,
             "dir": directory.name}))
        for old in self.backup_dir.glob("step_*"):
            if old != directory:
                shutil.rmtree(old, ignore_errors=True)


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

    def planned_steps(self, train: TrainSpec) -> int:
        """Whole epochs: ``train.steps`` rounded up to ``train.steps_per_epoch``."""
        return train.epoch_steps

    def has_checkpoint(self, workdir: Path) -> bool:
        """The finished weights, or the backup of an interrupted training."""
        workdir = Path(workdir)
        return (workdir / FINAL_WEIGHTS).exists() or (workdir / BACKUP_DIR / PROGRESS_FILE).exists()

    def _build(self, example: dict) -> None:
        if not self.model.built:
            self.model({k: v[:1] for k, v in example.items()}, training=False)

    def prepare(self, train_data, train: TrainSpec, workdir: Path, resume: bool) -> TrainReport:
        workdir = Path(workdir)
        set_seed(train.seed)
        strategy = tf.distribute.get_strategy()
        if worker_rank(strategy):  # several workers: each its own channel and noise draws
            sionna.phy.config.seed = worker_seed(train.seed, strategy)
        data = training_inputs(train_data, self.snr_range_db or train.snr_range_db, train.seed)
        example = next(iter(data.take(1)))
        self._build(example)
        planned = train.epoch_steps
        final = workdir / FINAL_WEIGHTS
        if resume and final.exists():
            self.model.load_weights(final)
            state = workdir / FINAL_STATE
            if state.exists():
                return TrainReport(**json.loads(state.read_text()))
            return TrainReport(planned, planned)
        self.model.compile(optimizer=make_optimizer(train), jit_compile=train.jit_compile)
        backup = workdir / BACKUP_DIR
        steps_done = 0
        if resume and (backup / PROGRESS_FILE).exists():
            saved = json.loads((backup / PROGRESS_FILE).read_text())
            state_dir = backup / saved["dir"]
            self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(state_dir / "state.weights.h5")
            # The weights file holds the old learning rate; the resumed spec's wins (a
            # schedule is rebuilt from the spec by make_optimizer and holds no variable).
            if train.lr_schedule == "constant":
                self.model.optimizer.learning_rate.assign(train.learning_rate)
            restore_sionna_rng_state(np.load(state_dir / "sionna_rng.npy"))
            restore_seed_generator_states(self.model, np.load(state_dir / "seed_generators.npy"))
            steps_done = saved["steps_done"]
        skip_symbolic_build(self.model)
        progress = self._fit(shard_by_data(data), train, workdir, steps_done)
        report = TrainReport(progress.steps, planned)
        if report.complete:
            with atomic_path(final) as tmp:
                self.model.save_weights(tmp)
            write_text(workdir / FINAL_STATE, json.dumps(dataclasses.asdict(report)))
        else:
            logger.warning(
                "%s: training stopped by the wall-clock budget (train.max_seconds = %g) after "
                "%d of %d steps: the system is UNDER-TRAINED; raise train.max_seconds or "
                "continue with --resume", self.type_name, train.max_seconds or 0.0,
                report.steps_done, report.steps_planned)
        return report

    def _callbacks(self, train: TrainSpec, workdir: Path, progress: _Progress) -> list:
        backup = workdir / BACKUP_DIR
        callbacks = [progress, _FiniteCheck(progress, train.learning_rate, backup)]
        if train.validation_images is not None and len(train.validation_images):
            callbacks.append(_ValidationPSNR(self, np.asarray(train.validation_images, np.float32),
                                             self.snr_range_db or train.snr_range_db, train.seed))
        callbacks += [_EpochBackup(backup, progress),
                      keras.callbacks.CSVLogger(str(workdir / HISTORY), append=True)]
        if train.tensorboard:
            try:
                import tensorboard  # noqa: F401
            except ImportError as err:
                raise RuntimeError("TensorBoard logs need the tensorboard package: pip install "
                                   "'semsim[tensorboard]'") from err
            callbacks.append(keras.callbacks.TensorBoard(str(workdir / "tensorboard")))
        if hasattr(self.model, "training_callbacks"):
            callbacks += list(self.model.training_callbacks(train.steps_per_epoch))
        return callbacks + self.callbacks

    def _fit(self, data, train: TrainSpec, workdir: Path, steps_done: int) -> _Progress:
        """Train from optimizer step ``steps_done`` to the end (or the budget): first the
        rest of a cut epoch, then whole epochs; returns the step counter."""
        workdir.mkdir(parents=True, exist_ok=True)
        per_epoch = train.steps_per_epoch
        progress = _Progress(steps_done, per_epoch, train.max_seconds)
        callbacks = self._callbacks(train, workdir, progress)
        epoch, cut = divmod(steps_done, per_epoch)
        # (first epoch, steps in each epoch of this fit): a cut epoch is finished alone
        plan = [(epoch, per_epoch - cut)] if cut else []
        plan.append((epoch + 1 if cut else epoch, per_epoch))
        for first, steps in plan:
            if first >= train.epochs or progress.budget_hit:
                break
            start = first * per_epoch + (per_epoch - steps)
            self.model.fit(
                data.skip(start).prefetch(tf.data.AUTOTUNE),
                epochs=first + 1 if steps < per_epoch else train.epochs,
                initial_epoch=first,
                steps_per_epoch=steps,
                callbacks=callbacks,
                verbose=self.verbose,
            )
        return progress

    def _forward_fn(self):
        if self._forward is None:
            self._forward = tf.function(
                lambda inputs: self.model(inputs, training=False), reduce_retracing=True
            )
        return self._forward

    def transmit(self, images, snr_db, h=None, target_cr=None) -> TransmitResult:
        images = check_images(images)
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
