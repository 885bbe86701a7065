"""The KerasSystem adapter: training inputs, exact resume, final weights, transmit."""

import numpy as np
import pytest
import tensorflow as tf

from semsim.seeding import set_seed
from semsim.systems.base import TrainSpec
from semsim.systems.keras_system import KerasSystem, training_inputs

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
