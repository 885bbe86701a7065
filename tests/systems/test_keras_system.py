"""The KerasSystem adapter: training inputs, exact resume, final weights, transmit,
budget stops, history and validation PSNR, non-finite training, failing writes."""

import json
import logging

import numpy as np
import pytest
import sionna.phy
import tensorflow as tf

from semsim.metrics import mean_psnr
from semsim.seeding import restore_sionna_rng_state, set_seed, sionna_rng_state
from semsim.systems.base import TrainReport, TrainSpec
from semsim.systems.keras_system import KerasSystem, NonFiniteTrainingError, training_inputs

from .toy import ToyJSCC, toy_link


def _images(n=16, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(size=(n, 1, 1, 3)).astype(np.float32)
    return np.broadcast_to(base, (n, 8, 8, 3)).copy()


def _dataset(batch=4):
    return tf.data.Dataset.from_tensor_slices(_images()).batch(batch)


def test_training_inputs_are_a_pure_function_of_the_seed():
    a = [b["snr_db"].numpy() for b in training_inputs(_dataset(), (0.0, 20.0), 7).take(5)]
    b = [b["snr_db"].numpy() for b in training_inputs(_dataset(), (0.0, 20.0), 7).take(5)]
    c = [b["snr_db"].numpy() for b in training_inputs(_dataset(), (0.0, 20.0), 8).take(5)]
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))
    snrs = np.concatenate(a)
    assert snrs.min() >= 0.0 and snrs.max() <= 20.0 and snrs.std() > 1.0


def test_fixed_training_snr():
    snrs = [b["snr_db"].numpy() for b in training_inputs(_dataset(), (25.0, 25.0), 0).take(3)]
    np.testing.assert_array_equal(np.concatenate(snrs), 25.0)



def _train(workdir, steps, resume=False, callbacks=None):
    set_seed(3)  # as the runner does before building a system: initializers draw seeds here
    system = KerasSystem(ToyJSCC(toy_link()), "toy", callbacks=callbacks, verbose=0)
    spec = TrainSpec(steps=steps, steps_per_epoch=3, batch_size=4, jit_compile=False, seed=3)
    system.prepare(_dataset(), spec, workdir, resume)
    return system


@pytest.mark.slow
def test_resume_after_interruption_is_exact(tmp_path):
    import keras

    class StopAfterEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    full = _train(tmp_path / "full", steps=12)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "cut", steps=12, callbacks=[StopAfterEpochs()])
    assert not (tmp_path / "cut" / "final.weights.h5").exists()
    resumed = _train(tmp_path / "cut", steps=12, resume=True)
    for a, b in zip(full.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # A finished run is loaded, not retrained.
    again = _train(tmp_path / "cut", steps=12, resume=True)
    for a, b in zip(again.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_transmit_shapes_cr_and_shared_channel(tmp_path):
    system = _train(tmp_path, steps=3)
    images = _images(10)
    h = system.model.link.channel.sample_channel(10).numpy()
    out = system.transmit(images, 10.0, h=h)
    assert out.images_hat.shape == images.shape
    np.testing.assert_allclose(out.cr, 1 / 3, rtol=1e-6)
    assert out.images_hat.min() >= 0 and out.images_hat.max() <= 1
    with pytest.raises(ValueError, match="images must be"):
        system.transmit(images[..., 0], 10.0)


def _spec(steps=12, **kwargs):
    return TrainSpec(steps=steps, steps_per_epoch=3, batch_size=4, jit_compile=False, seed=3,
                     **kwargs)


def _system(callbacks=None):
    set_seed(3)
    return KerasSystem(ToyJSCC(toy_link()), "toy", callbacks=callbacks, verbose=0)


def _history(workdir):
    import csv

    return list(csv.DictReader((workdir / "history.csv").open()))


@pytest.mark.slow
def test_budget_stop_is_reported_and_resumed_not_loaded(tmp_path, caplog):
    full = _system()
    assert full.prepare(_dataset(), _spec(), tmp_path / "full", False) == TrainReport(12, 12)
    cut = _system()
    with caplog.at_level(logging.WARNING, logger="semsim.systems.keras_system"):
        report = cut.prepare(_dataset(), _spec(max_seconds=1e-6), tmp_path / "cut", False)
    assert report == TrainReport(1, 12) and not report.complete  # stopped after one batch
    assert "after 1 of 12 steps: the system is UNDER-TRAINED" in caplog.text
    assert not (tmp_path / "cut" / "final.weights.h5").exists()
    progress = json.loads((tmp_path / "cut" / "backup" / "progress.json").read_text())
    assert (progress["epochs_done"], progress["steps_done"]) == (0, 1)  # cut epoch kept too
    resumed = _system()  # finishes the cut epoch (2 steps), then 3 whole epochs
    assert resumed.prepare(_dataset(), _spec(), tmp_path / "cut", True) == TrainReport(12, 12)
    for a, b in zip(full.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [(r["epoch"], r["step"]) for r in _history(tmp_path / "cut")] == [
        ("0", "1"), ("0", "3"), ("1", "6"), ("2", "9"), ("3", "12")]
    loaded = _system()  # a finished run is loaded with its step counts
    assert loaded.prepare(_dataset(), _spec(), tmp_path / "cut", True) == TrainReport(12, 12)


@pytest.mark.slow
def test_validation_psnr_is_logged_without_touching_training(tmp_path):
    plain = _system()
    plain.prepare(_dataset(), _spec(steps=6), tmp_path / "plain", False)
    validation = _images(8, seed=5)
    checked = _system()
    checked.prepare(_dataset(), _spec(steps=6, validation_images=validation, tensorboard=True),
                    tmp_path / "checked", False)
    for a, b in zip(plain.model.get_weights(), checked.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    rows = _history(tmp_path / "checked")
    assert [r["epoch"] for r in rows] == ["0", "1"] and "val_psnr_db" not in _history(
        tmp_path / "plain")[0]
    # epoch 2's value is the 8-bit PSNR of the final model at the middle SNR (10 dB),
    # with the channel and noise of the validation seed
    sionna_state = sionna_rng_state()
    sionna.phy.config.tf_rng.reset_from_seed(3)
    out = checked.transmit(validation, 10.0)
    restore_sionna_rng_state(sionna_state)
    assert float(rows[1]["val_psnr_db"]) == pytest.approx(mean_psnr(validation, out.images_hat),
                                                          abs=1e-9)
    assert any((tmp_path / "checked" / "tensorboard").rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_nan_stops_training_keeps_the_checkpoint_and_resumes_with_a_smaller_rate(tmp_path):
    import keras

    class InjectNaN(keras.callbacks.Callback):
        """Puts a NaN into the first kernel before global step 5 (as a NaN gradient would)."""

        def __init__(self):
            super().__init__()
            self.step = 0

        def on_train_batch_begin(self, batch, logs=None):
            self.step += 1
            if self.step == 5:
                kernel = self.model.trainable_variables[0]
                kernel.assign(np.full(kernel.shape, np.nan, np.float32))

    with pytest.raises(NonFiniteTrainingError) as error:
        _system([InjectNaN()]).prepare(_dataset(), _spec(), tmp_path, False)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("training diverged at step 5: the loss is nan")
    assert "learning rate too high" in message and "after epoch 1) is kept" in message
    assert "--set train.learning_rate=0.0001" in message
    progress = json.loads((tmp_path / "backup" / "progress.json").read_text())
    assert (progress["epochs_done"], progress["steps_done"]) == (1, 3)
    assert not (tmp_path / "final.weights.h5").exists()
    resumed = _system()
    report = resumed.prepare(_dataset(), _spec(learning_rate=1e-4), tmp_path, True)
    assert report.complete
    assert float(resumed.model.optimizer.learning_rate) == pytest.approx(1e-4)
    assert all(np.isfinite(w).all() for w in resumed.model.get_weights())
    assert [r["step"] for r in _history(tmp_path)] == ["3", "6", "9", "12"]


@pytest.mark.slow
def test_failing_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    system = _system()
    system.prepare(_dataset(), _spec(steps=3), tmp_path, False)
    before = (tmp_path / "final.weights.h5").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    again = _system()
    monkeypatch.setattr(again.model, "save_weights", full_disk)
    with pytest.raises(OSError, match="No space left"):
        again.prepare(_dataset(), _spec(steps=6), tmp_path, False)
    assert (tmp_path / "final.weights.h5").read_bytes() == before
    assert not [p for p in tmp_path.rglob(".tmp-*")]
