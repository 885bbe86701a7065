"""One call to make a run reproducible: Python, NumPy, TensorFlow/Keras and Sionna."""

from __future__ import annotations

import keras
import sionna.phy


def set_seed(seed: int) -> None:
    """Seed every random number generator semsim uses (Sionna's channel and noise
    generator included)."""
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    keras.utils.set_random_seed(int(seed))
    sionna.phy.config.seed = int(seed)


def sionna_rng_state():
    """Current state of Sionna's global generator (a copyable tensor)."""
    return sionna.phy.config.tf_rng.state.numpy()


def restore_sionna_rng_state(state) -> None:
    """Put Sionna's global generator back to a state from :func:`sionna_rng_state`."""
    sionna.phy.config.tf_rng.state.assign(state)
