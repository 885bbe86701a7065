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
    # the streams' SNR is the inverse of the combiner's effective noise (0 when off)
    np.testing.assert_allclose(pre.stream_snr.numpy()[on], 1.0 / no_eff.numpy()[on], rtol=1e-4)
    assert np.all(pre.stream_snr.numpy()[~on] == 0)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="allocation"):
        SVDPrecoder(np.eye(2, dtype=np.complex64)[None], 1.0, allocation="greedy")
    with pytest.raises(ValueError, match=r"\[B, S\]"):
        water_filling(np.ones(3, np.float32), 1.0)


# ---- the link option precoding: svd (AnalogLink, DigitalLink) -------------------------
def _unitary(rng, n):
    q, r = np.linalg.qr(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    return q * (np.diag(r) / np.abs(np.diag(r)))


def _known_h(singular, batch, seed=0):
    """``[batch, 2, 2]`` copies of ``U diag(singular) V^H`` with random unitaries."""
    rng = np.random.default_rng(seed)
    h = _unitary(rng, 2) @ np.diag(singular) @ np.conj(_unitary(rng, 2)).T
    return np.broadcast_to(h, (batch, 2, 2)).astype(np.complex64)



def _svd_link(**kw):
    from semsim.phy.analog import AnalogLink
    from semsim.phy.spec import CSISpec, LinkSpec

    return AnalogLink(LinkSpec(csi=CSISpec(mode="perfect"), precoding="svd", **kw))


def test_svd_link_with_perfect_csi_returns_the_sent_streams_at_high_snr(qpsk):
    rng = np.random.default_rng(2)
    link = _svd_link()
    x = qpsk(rng, (8, 2, 24))
    h = ((rng.normal(size=(8, 2, 2)) + 1j * rng.normal(size=(8, 2, 2))) / np.sqrt(2))
    state = link.observe(8, 80.0, h=h.astype(np.complex64))
    out = link.transmit(x, state, 80.0)
    np.testing.assert_allclose(out.x_hat.numpy(), x, atol=2e-3)


def test_svd_link_per_stream_snr_is_the_water_filling_closed_form(channel_spy, qpsk):
    """H with singular values (2, 1), 2x2, Es = 1, no = Nt / snr. At 10 dB (no = 0.2) the
    unit-power stream SNRs are 20 and 5, water level mu = (2 + 1/20 + 1/5) / 2 = 1.125, so
    p = (1.075, 0.925) and the stream SNRs are 21.5 and 4.625 (worked by hand). At -3 dB
    (no = 2 / 10^-0.3 = 3.9905) the weak stream is off (mu = 3.494 < 1/g_2 = 3.9905):
    p = (2, 0), SNR 2 * 4 / 3.9905 = 2.005 on stream 0, stream 1 lost (estimate 0, error
    variance Es). Layout stream n mod 2 = eigenmode (strongest first). Measured SNR: the
    regression of each stream's estimate on its symbols over 64 x 256 symbols, tolerance
    5 % (the SNR estimate's standard error is about 1 %). The transmitted block (spied on
    at the channel) has the unprecoded power: 2 per channel use for QPSK (exactly), and
    the link's noise variance is the unprecoded one."""
    from semsim.phy.analog import AnalogLink
    from semsim.phy.spec import CSISpec, LinkSpec

    rng = np.random.default_rng(3)
    batch, length = 64, 256
    h = _known_h([2.0, 1.0], batch)
    x = qpsk(rng, (batch, 2, length))
    link = _svd_link()
    sent_blocks = channel_spy(link)
    for snr_db, want in ((10.0, [21.5, 4.625]), (-3.0, [2.0 * 4.0 / (2 / 10**-0.3), None])):
        out = link.transmit(x, link.observe(batch, snr_db, h=h), snr_db)
        x_hat = out.x_hat.numpy()
        for i, snr in enumerate(want):
            xi, yi = x[:, i].ravel(), x_hat[:, i].ravel()
            if snr is None:
                np.testing.assert_allclose(yi, 0.0, atol=1e-6)
                np.testing.assert_allclose(out.no_eff.numpy()[:, i], 1.0, atol=1e-5)
                continue
            a = np.vdot(xi, yi) / np.vdot(xi, xi)
            measured = np.abs(a) ** 2 / np.mean(np.abs(yi - a * xi) ** 2)
            assert measured == pytest.approx(snr, rel=0.05), (snr_db, i)
        energy = np.sum(np.abs(sent_blocks[-1]) ** 2, axis=1)  # [B, L] per channel use
        np.testing.assert_allclose(energy, 2.0, rtol=1e-4)
        plain = AnalogLink(LinkSpec(csi=CSISpec(mode="perfect")))
        ref = plain.transmit(x, plain.observe(batch, snr_db, h=h), snr_db)
        np.testing.assert_allclose(out.no.numpy(), ref.no.numpy(), rtol=1e-6)
        np.testing.assert_allclose(out.sent_reals.numpy(), ref.sent_reals.numpy())


def test_digital_link_svd_decodes_and_refuses_unsupported_links():
    from semsim.phy.digital import DigitalLink

    rng = np.random.default_rng(4)
    link = DigitalLink("qpsk", num_rx_ant=2, num_tx_ant=2, csi="perfect", precoding="svd", k=256)
    bits = rng.integers(0, 2, size=(16, 256)).astype(np.float32)
    h = _known_h([1.5, 0.7], 16, seed=5)
    np.testing.assert_array_equal(link(bits, 40.0, h=h).numpy(), bits)
    with pytest.raises(ValueError, match="precoding: 'svd' needs a single-user link"):
        DigitalLink("qpsk", num_rx_ant=2, users=2, precoding="svd")
    with pytest.raises(ValueError, match="precoding: 'svd' needs fading 'block' or 'none'"):
        DigitalLink("qpsk", num_rx_ant=2, num_tx_ant=2, fading="fast", precoding="svd")
    with pytest.raises(ValueError, match=r"needs nr >= nt"):
        _svd_link(num_rx_ant=1, antennas_per_user=2)
    with pytest.raises(ValueError, match="needs snr 'average'"):
        _svd_link(snr="realized")
    with pytest.raises(ValueError, match="needs detector 'lmmse'"):
        _svd_link(detector="zf")


def test_a_learned_system_runs_end_to_end_on_a_precoded_link(tmp_path, monkeypatch):
    """A tiny Deep JSCC trained and evaluated by the runner on a 2x2 link with
    precoding: svd: every transmission (training and evaluation) goes through the
    precoder with the runner's channel, and the CR is the unprecoded layout's."""
    import semsim.phy.analog as analog
    from semsim.api import run

    shapes = []
    real = analog.svd_precoding_matrix
    monkeypatch.setattr(analog, "svd_precoding_matrix",
                        lambda h, no, es: (shapes.append(tuple(h.shape)), real(h, no, es))[1])
    scenario = {
        "name": "precoded", "description": "deepjscc on a precoded 2x2 link", "seed": 0,
        "link": {"nr": 2, "nt": 2, "csi": "perfect", "precoding": "svd"},
        "snr": {"train_db": [10, 10], "eval_db": [10]},
        "data": {"source": "builtin", "image_size": 16, "train_images": 2, "test_images": 4},
        "systems": [{"name": "djscc", "type": "deepjscc",
                     "params": {"cr": 1 / 6, "filters": [4, 4, 4, 4], "eval_batch_size": 4}}],
        "train": {"steps": 2, "batch_size": 2, "jit_compile": False},
        "eval": {"batch_size": 4, "samples": 1},
    }
    results = run(scenario, tmp_path / "run", progress=False)
    system = results.systems["djscc"]
    assert results.scenario["link"]["precoding"] == "svd"
    assert system.cr == [pytest.approx(8 / 48)] and np.isfinite(system.psnr_db[0])
    assert (4, 2, 2) in shapes  # the evaluation batch of 4 was precoded


def test_capacity_bound_with_transmitter_csi_is_the_water_filling_capacity():
    """Singular values (2, 1) at 10 dB: per-stream SNRs 21.5 and 4.625 (see above), so
    C = log2(22.5) + log2(5.625) bit per channel use; without precoding the bound stays
    log2 det(I + H H^H / 0.2) = log2((1 + 20)(1 + 5)), which is lower."""
    from semsim.phy.spec import CSISpec, LinkSpec
    from semsim.systems.capacity_bound import CapacityBoundSystem as CapacityBound

    h = _known_h([2.0, 1.0], 3)
    link = LinkSpec(csi=CSISpec(mode="perfect"), precoding="svd")
    bits = CapacityBound(link).capacity_bits(h, 10.0, uses=10)
    np.testing.assert_allclose(bits, 10 * (np.log2(22.5) + np.log2(5.625)), rtol=1e-5)
    plain = CapacityBound(LinkSpec(csi=CSISpec(mode="perfect"))).capacity_bits(h, 10.0, uses=10)
    np.testing.assert_allclose(plain, 10 * np.log2(21.0 * 6.0), rtol=1e-5)
