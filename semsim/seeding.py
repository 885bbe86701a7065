"""One call to make a run reproducible: Python, NumPy, TensorFlow/Keras and Sionna; and
the random-generator states a checkpoint must carry besides the weights.

Reproducibility rules (issue 16, section 6): every generator is seeded before a system is
built (initializers draw from the global generators) and before it trains; training's
random draws come from Sionna's generator (channel, noise, SwinJSCC's rate choice),
Keras seed generators (Gumbel noise) or stateless ops keyed on the seed and the batch
index (data, training SNRs); a checkpoint saves the states of the first two.
"""

from __future__ import annotations

import keras
import numpy as np
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


def _seed_generator_variables(model) -> list:
    """The state variables of every ``keras.random.SeedGenerator`` in ``model`` (Gumbel
    noise of the policies, ...), in the model's (deterministic) variable order."""
    return [v for v in model.variables if v.path.split("/")[-1] == "seed_generator_state"]


def seed_generator_states(model) -> np.ndarray:
    """States of the model's Keras seed generators, ``[n, 2]`` (``n`` may be 0). Keras's
    ``save_weights`` leaves them out, so a resumed run needs them saved beside it."""
    states = [np.asarray(v.numpy()) for v in _seed_generator_variables(model)]
    return np.stack(states) if states else np.zeros((0, 2), np.int64)


def restore_seed_generator_states(model, states: np.ndarray) -> None:
    """Put the model's seed generators back to states from :func:`seed_generator_states`."""
    variables = _seed_generator_variables(model)
    if len(variables) != len(states):
        raise ValueError(f"the checkpoint holds {len(states)} seed generator states, the model "
                         f"has {len(variables)} seed generators")
    for variable, state in zip(variables, states, strict=True):
        variable.assign(np.asarray(state).astype(variable.dtype))
