"""SVD precoding and water-filling against closed forms."""

import numpy as np
import pytest

from semsim.phy.precoding import SVDPrecoder, water_filling


def test_water_filling_closed_form_known_eigenvalues():
    # gains 4, 1, 0.25 with P = 1: levels 1/g = 0.25, 1, 4. Two active streams:
    # mu = (1 + 0.25 + 1) / 2 = 1.125 < 4, so p = (0.875, 0.125, 0) (worked by hand).
    p = water_filling(np.array([[1.0, 4.0, 0.25]], np.float32), 1.0).numpy()
    np.testing.assert_allclose(p, [[0.125, 0.875, 0.0]], atol=1e-6)
    # High power, all active: mu = (10 + 1 + 2) / 2 = 6.5 -> p = (5.5, 4.5).
    p = water_filling(np.array([[1.0, 0.5]], np.float32), 10.0).numpy()
    np.testing.assert_allclose(p, [[5.5, 4.5]], atol=1e-5)
    # Zero gain gets nothing.
    p = water_filling(np.array([[2.0, 0.0]], np.float32), 3.0).numpy()
    np.testing.assert_allclose(p, [[3.0, 0.0]], atol=1e-6)


def test_water_filling_beats_every_allocation_on_a_grid():
    """Optimality by brute force: no allocation on a fine simplex grid has higher
    capacity sum log2(1 + p_i g_i)."""
    rng = np.random.default_rng(0)
    gains = rng.exponential(size=(20, 3)).astype(np.float32)
    p = water_filling(gains, 2.0).numpy()
    np.testing.assert_allclose(p.sum(axis=1), 2.0, rtol=1e-5)
    t = np.linspace(0, 2.0, 81)
    a, b = np.meshgrid(t, t)
    grid = np.stack([a.ravel(), b.ravel(), 2.0 - a.ravel() - b.ravel()], axis=1)
    grid = grid[grid[:, 2] >= 0]
    for g, pw in zip(gains, p, strict=True):
        best = np.max(np.sum(np.log2(1 + grid * g), axis=1))
        assert np.sum(np.log2(1 + pw * g)) >= best - 1e-4


def test_svd_precoding_diagonalizes_h_and_recovers_streams():
    rng = np.random.default_rng(1)
    h = ((rng.normal(size=(8, 2, 4)) + 1j * rng.normal(size=(8, 2, 4))) / np.sqrt(2)).astype(np.complex64)
    pre = SVDPrecoder(h, no=0.1)
    eff = np.conj(np.swapaxes(pre.u.numpy(), 1, 2)) @ h @ pre.v.numpy()  # U^H H V
    s = pre.s.numpy()
    for b in range(8):
        np.testing.assert_allclose(eff[b], np.diag(s[b]), atol=1e-5)
        np.testing.assert_allclose(s[b], np.linalg.svd(h[b], compute_uv=False), rtol=1e-5)
    u = (rng.choice([-1, 1], size=(8, 2, 16)) + 1j * rng.choice([-1, 1], size=(8, 2, 16))) / np.sqrt(2)
    x = pre.precode(u.astype(np.complex64)).numpy()
    # Total transmit energy per channel use equals Nt (the default power budget).
    np.testing.assert_allclose(np.sum(np.abs(x) ** 2, axis=1), 4.0, rtol=1e-4)
    est, no_eff = pre.combine(h @ x)
    on = pre.power.numpy() > 0
    np.testing.assert_allclose(est.numpy()[on], u[on], atol=1e-4)
    np.testing.assert_allclose(no_eff.numpy()[on], (0.1 / (s**2 * pre.power.numpy()))[on], rtol=1e-4)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="allocation"):
        SVDPrecoder(np.eye(2, dtype=np.complex64)[None], 1.0, allocation="greedy")
    with pytest.raises(ValueError, match=r"\[B, S\]"):
        water_filling(np.ones(3, np.float32), 1.0)
