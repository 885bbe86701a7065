"""Shared helpers of the physical-layer tests: QPSK symbols and a spy on a link's channel."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def qpsk():
    """``qpsk(rng, shape)``: unit-energy QPSK symbols of ``shape``, complex64."""
    def draw(rng: np.random.Generator, shape) -> np.ndarray:
        return ((rng.choice([-1, 1], size=shape) + 1j * rng.choice([-1, 1], size=shape))
                / np.sqrt(2)).astype(np.complex64)
    return draw


@pytest.fixture
def channel_spy(monkeypatch):
    """``spy(link) -> list``: every block the link's channel layer is called with, in order
    (what enters the channel, after any precoding), while the channel still runs."""
    def spy(link) -> list[np.ndarray]:
        sent = []
        call = link.channel.call

        def recording(x_in, *args, **kwargs):
            sent.append(np.asarray(x_in))
            return call(x_in, *args, **kwargs)

        monkeypatch.setattr(link.channel, "call", recording)
        return sent
    return spy
