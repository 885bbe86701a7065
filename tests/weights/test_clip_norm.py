"""``train.clip_norm``: the global gradient norm of each step is bounded."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from semsim.scenario.schema import TrainConfig
from semsim.systems.keras_system import make_optimizer


def _after_steps(optimizer_name: str, clip_norm, gradients) -> list[np.ndarray]:
    """The weights after applying ``gradients`` (one list of two arrays per step) with
    the optimizer the scenario's ``train`` section makes."""
    import keras

    spec = TrainConfig(steps=10, learning_rate=0.1, optimizer=optimizer_name,
                       weight_decay=0.01 if optimizer_name == "adamw" else 0.0,
                       clip_norm=clip_norm).to_spec((0.0, 20.0), 0, 10)
    optimizer = make_optimizer(spec)
    weights = [keras.Variable(np.ones((3,), np.float32)), keras.Variable(np.zeros((2, 2), np.float32))]
    for grads in gradients:
        optimizer.apply([np.asarray(g, np.float32) for g in grads], weights)
    return [np.asarray(w) for w in weights]


@pytest.mark.parametrize("optimizer_name", ["adam", "adamw"])
def test_a_large_gradient_is_scaled_to_the_clip_norm(optimizer_name):
    """Two small steps, then a spike of global norm 10 (over both weights): with
    ``clip_norm: 1`` the weights end where the spike scaled to norm 1 takes them
    unclipped; small gradients (norm < 1) pass unchanged."""
    rng = np.random.default_rng(0)
    small = [[0.05 * rng.normal(size=3), 0.05 * rng.normal(size=(2, 2))] for _ in range(2)]
    spike = [rng.normal(size=3), rng.normal(size=(2, 2))]
    norm = np.sqrt(sum(np.sum(np.square(g)) for g in spike))
    spike = [10.0 * g / norm for g in spike]  # global norm 10
    assert all(np.sqrt(sum(np.sum(np.square(g)) for g in s)) < 1.0 for s in small)
    clipped = _after_steps(optimizer_name, 1.0, [*small, spike])
    by_hand = _after_steps(optimizer_name, None, [*small, [g / 10.0 for g in spike]])
    unclipped = _after_steps(optimizer_name, None, [*small, spike])
    for a, b in zip(clipped, by_hand, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # and it made a difference: Adam's step after a spike 10x its history is larger
    assert max(np.max(np.abs(a - b)) for a, b in zip(clipped, unclipped, strict=True)) > 1e-3


def test_clip_norm_is_optional_and_positive():
    assert TrainConfig(steps=10).clip_norm is None
    assert TrainConfig(steps=10).to_spec((0.0, 20.0), 0, 10).clip_norm is None
    with pytest.raises(pydantic.ValidationError, match="clip_norm"):
        TrainConfig(steps=10, clip_norm=0.0)
