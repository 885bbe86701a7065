"""Gumbel-Softmax count policies, thermometer code and temperature annealing."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from semsim.semantic.policy import (
    CountPolicy,
    TemperatureAnnealing,
    annealed_temperature,
    gumbel_softmax,
    thermometer_code,
)


def test_thermometer_code_exact_prefixes():
    one_hot = tf.one_hot([0, 2, 4], 5)
    expected = [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    np.testing.assert_array_equal(thermometer_code(one_hot).numpy(), expected)


def test_thermometer_code_is_linear_in_soft_inputs():
    y = tf.constant([[0.1, 0.2, 0.3, 0.4]])
    # mask[i] = P(count > i): [0.9, 0.7, 0.4]
    np.testing.assert_allclose(thermometer_code(y).numpy(), [[0.9, 0.7, 0.4]], rtol=1e-6)


def test_hard_gumbel_is_one_hot_with_soft_gradient():
    logits = tf.Variable([[0.3, -1.0, 2.0, 0.0]])
    with tf.GradientTape() as tape:
        y = gumbel_softmax(logits, 1.0, tf.constant([1, 2]), hard=True)
        count = tf.reduce_sum(thermometer_code(y))
    values = y.numpy()
    assert set(np.unique(values)) <= {0.0, 1.0} and values.sum() == 1.0
    grad = tape.gradient(count, logits).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_gumbel_choice_frequencies_follow_softmax():
    # 4000 seeded draws; choice frequencies within 0.03 of softmax(logits) (binomial std
    # <= 0.008, so > 3.5 sigma).
    logits = tf.constant([[1.0, 0.0, -1.0, 0.5]] * 4000)
    y = gumbel_softmax(logits, 1.0, tf.constant([7, 11]), hard=True).numpy()
    p = tf.nn.softmax(logits[0]).numpy()
    np.testing.assert_allclose(y.mean(0), p, atol=0.03)


def test_policy_eval_is_argmax_and_deterministic():
    policy = CountPolicy(6, hidden_units=8, seed=0)
    feats, emb = tf.random.normal([5, 3]), tf.random.normal([5, 2])
    mask, logits = policy(feats, emb, training=False)
    k = np.argmax(logits.numpy(), -1)
    np.testing.assert_array_equal(mask.numpy(), (np.arange(6)[None] < k[:, None]).astype(float))
    mask2, _ = policy(feats, emb, training=False)
    np.testing.assert_array_equal(mask.numpy(), mask2.numpy())


def test_policy_training_masks_are_prefixes():
    policy = CountPolicy(6, hidden_units=8, seed=0)
    mask, _ = policy(tf.random.normal([50, 3]), tf.random.normal([50, 2]), temperature=5.0, training=True)
    mask = mask.numpy()
    k = mask.sum(-1).astype(int)
    np.testing.assert_array_equal(mask, (np.arange(6)[None] < k[:, None]).astype(float))
    assert len(set(k)) > 1  # temperature 5 explores several counts


def test_annealed_temperature_closed_form():
    for step in (0, 250, 1000, 5000):
        t = min(step / 1000, 1.0)
        exp = float(annealed_temperature(step, 5.0, 0.5, 1000, "exponential"))
        assert math.isclose(exp, 5.0 * 0.1**t, rel_tol=1e-6)
        lin = float(annealed_temperature(step, 5.0, 0.5, 1000, "linear"))
        assert math.isclose(lin, 5.0 - 4.5 * t, rel_tol=1e-6)
    assert float(annealed_temperature(900, 5.0, 0.5, 1000, "constant")) == 5.0
    with pytest.raises(ValueError, match="schedule"):
        annealed_temperature(1, 5.0, 0.5, 10, "cosine")


def test_annealing_callback_sets_model_temperature():
    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.temperature = self.add_weight(shape=(), initializer="ones", trainable=False)

        def call(self, x):
            return self.dense(x)

    model = Model()
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((8, 2), np.float32)
    callback = TemperatureAnnealing(4.0, 1.0, 10, "linear")
    model.fit(x, x[:, :1], batch_size=1, epochs=1, callbacks=[callback], verbose=0)
    # Before the 8th batch the optimizer had done 7 steps: 4 - 3 * 0.7.
    assert math.isclose(float(model.temperature.numpy()), 4.0 - 3.0 * 0.7, rel_tol=1e-6)
    with pytest.raises(ValueError, match="temperatures"):
        TemperatureAnnealing(0.0, 1.0, 10)


def test_prior_slope_sets_initial_count_preference():
    policy = CountPolicy(4, hidden_units=8, prior_slope=2.0)
    zeros = tf.zeros([1, 3])
    _, logits = policy(zeros, tf.zeros([1, 2]))  # zero input: logits = bias
    np.testing.assert_allclose(logits.numpy(), [[0.0, 0.5, 1.0, 1.5, 2.0]], rtol=1e-6)
