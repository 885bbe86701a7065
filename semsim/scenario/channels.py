"""The channel realizations every system of a scenario sees (equal terms): drawn once per
(SNR index, batch index) from a seed derived from the scenario seed, and handed to every
system's ``transmit`` as ``h``."""

from __future__ import annotations

import numpy as np

from semsim.seeding import set_seed


def derive_seed(seed: int, *keys: int) -> int:
    """A 31-bit seed derived from ``seed`` and integer ``keys`` (stable across runs)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0] % (2**31 - 1))


class SharedChannels:
    """Channel realizations drawn once per (SNR index, batch index) and shared by all
    systems: ``[b, Nr, Nt]`` complex64, or ``None`` with fast fading."""

    def __init__(self, link, seed: int):
        from semsim.phy.channel import make_channel

        self._seed = seed
        self._cache: dict[tuple[int, int], np.ndarray | None] = {}
        self._fast = link.fading == "fast"
        self._channel = make_channel(link.to_spec())

    def get(self, snr_index: int, batch_index: int, batch_size: int) -> np.ndarray | None:
        if self._fast:
            return None
        key = (snr_index, batch_index)
        if key not in self._cache:
            set_seed(derive_seed(self._seed, 1, snr_index, batch_index))
            self._cache[key] = np.asarray(self._channel.sample_channel(batch_size))
        return self._cache[key]
