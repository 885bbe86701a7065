"""The ``cosine`` learning-rate schedule of ``train.lr_schedule``."""

from __future__ import annotations

import math

import pytest

from semsim.scenario.schema import TrainConfig
from semsim.systems.keras_system import make_optimizer


def _rate(optimizer, step: int) -> float:
    optimizer.iterations.assign(step)
    return float(optimizer.learning_rate)


@pytest.mark.parametrize("step", [0, 250, 500, 999, 1000])
def test_cosine_decays_to_one_percent_over_the_planned_steps(step):
    spec = TrainConfig(steps=1000, learning_rate=2e-3, lr_schedule="cosine").to_spec(
        (0.0, 20.0), seed=0, train_batches=100)
    optimizer = make_optimizer(spec)
    # closed form: lr * (a + (1 - a) (1 + cos(pi t / T)) / 2), a = 0.01
    expected = 2e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * step / 1000)))
    assert _rate(optimizer, step) == pytest.approx(expected, rel=1e-5)


def test_constant_is_the_default():
    spec = TrainConfig(steps=1000, learning_rate=2e-3).to_spec((0.0, 20.0), 0, 100)
    optimizer = make_optimizer(spec)
    assert _rate(optimizer, 0) == pytest.approx(2e-3)
    assert _rate(optimizer, 900) == pytest.approx(2e-3)


def test_unknown_schedule_is_rejected():
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(steps=10, lr_schedule="linear")
