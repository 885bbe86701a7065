"""3GPP Type I 2-port codebook (TS 38.214 Table 5.2.2.2.1-1) and ``precoding: type1``."""

import numpy as np
import pytest

from semsim.phy.codebook import (
    TYPE1_PMI_BITS,
    type1_codebook,
    type1_lmmse_rates,
    type1_pmi,
    type1_precoding_matrix,
)

S2 = np.sqrt(2.0)
# The table, written out by hand: one layer i2 = 0..3, two layers i2 = 0..1.
TABLE_RANK1 = [np.array([[1], [1]]) / S2, np.array([[1], [1j]]) / S2,
               np.array([[1], [-1]]) / S2, np.array([[1], [-1j]]) / S2]
TABLE_RANK2 = [np.array([[1, 1], [1, -1]]) / 2, np.array([[1, 1], [1j, -1j]]) / 2]


def _lmmse_sum_rate(hf, snr):
    """Independent reference: sum_k log2(1 + SINR_k) of the LMMSE receiver on ``hf``
    ``[Nr, K]`` at ``Es/no = snr``, SINR_k written with the interference covariance."""
    rate = 0.0
    for k in range(hf.shape[1]):
        others = np.delete(hf, k, axis=1)
        cov = np.eye(hf.shape[0]) / snr + others @ others.conj().T
        rate += np.log2(1.0 + np.real(hf[:, k].conj() @ np.linalg.solve(cov, hf[:, k])))
    return rate


def test_codebook_is_the_table_with_orthogonal_columns_and_unit_norm():
    for rank, table in ((1, TABLE_RANK1), (2, TABLE_RANK2)):
        w = type1_codebook(rank).numpy()
        assert w.shape == (len(table), 2, rank) and len(table) == 2 ** TYPE1_PMI_BITS[rank]
        np.testing.assert_allclose(w, np.stack(table), atol=1e-7)
        gram = np.conj(np.swapaxes(w, 1, 2)) @ w  # W^H W
        # rank 1: ||W||^2 = 1; rank 2: W^H W = I / 2 (orthogonal columns, 1/2 each)
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(rank) / rank, gram.shape),
                                   atol=1e-7)
    with pytest.raises(ValueError, match="rank 1 or 2"):
        type1_codebook(3)


@pytest.mark.parametrize("theta, pmi", [(0.0, 0), (-np.pi / 2, 1), (np.pi, 2),
                                        (np.pi / 2, 3), (0.6 * np.pi, 3), (-0.3 * np.pi, 1)])
def test_rank1_pmi_co_phases_a_miso_channel(theta, pmi):
    """h = [1, e^{j theta}] (1x2): |h f_n|^2 = |1 + e^{j (theta + pi n / 2)}|^2 (f = sqrt 2 w),
    largest for the n that brings theta + pi n / 2 closest to 0 mod 2 pi (worked by hand)."""
    h = np.array([[[1.0, np.exp(1j * theta)]]], np.complex64)
    assert type1_pmi(h, 1.0, rank=1).numpy().tolist() == [pmi]
    f = type1_precoding_matrix(h, 1.0, rank=1).numpy()
    np.testing.assert_allclose(f[0], S2 * TABLE_RANK1[pmi], atol=1e-6)


def test_rank1_rates_are_the_closed_form():
    """theta = 0, Es/no = 1: gains |1 + phi_n|^2 = 4, 2, 0, 2 -> log2(5), log2(3), 0, log2(3);
    Es = 4, no = 4 gives the same Es/no."""
    h = np.array([[[1.0, 1.0]]], np.complex64)
    want = [np.log2(5.0), np.log2(3.0), 0.0, np.log2(3.0)]
    np.testing.assert_allclose(type1_lmmse_rates(h, 1.0, rank=1).numpy()[0], want, atol=1e-5)
    np.testing.assert_allclose(type1_lmmse_rates(h, 4.0, 4.0, rank=1).numpy()[0], want, atol=1e-5)


def _diagonalized_by(n, gains=(2.0, 1.0), seed=0):
    """``[1, 2, 2]`` ``H = Q diag(gains) F_n^H`` (``F_n = sqrt 2 W_n`` unitary, ``Q`` a random
    unitary), so ``H F_n = Q diag(gains)``: codeword ``n`` diagonalizes ``H``."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)))
    q = q * (np.diag(r) / np.abs(np.diag(r)))
    f = S2 * TABLE_RANK2[n]
    return (q @ np.diag(gains) @ f.conj().T)[None].astype(np.complex64)


@pytest.mark.parametrize("n", [0, 1])
def test_rank2_pmi_is_the_codeword_that_diagonalizes_h(n):
    """H F_n = Q diag(2, 1): layer SINRs 4 rho and rho, sum rate log2((1 + 4 rho)(1 + rho)).
    The other codeword m: F_n^H F_m has entries of modulus 1/sqrt 2, so both layers have
    gain (4 + 1) / 2 = 2.5 and the LMMSE sum rate is 2 log2 det - 2 log2(1 + 2.5 rho) with
    det = (1 + 4 rho)(1 + rho) (worked by hand). At rho = 1: log2 10 vs 2 log2(10 / 3.5)."""
    h = _diagonalized_by(n, seed=n)
    assert type1_pmi(h, 1.0).numpy().tolist() == [n]
    rates = type1_lmmse_rates(h, 1.0).numpy()[0]
    np.testing.assert_allclose(rates[n], np.log2(10.0), atol=1e-5)
    np.testing.assert_allclose(rates[1 - n], 2 * np.log2(10.0 / 3.5), atol=1e-5)
    f = type1_precoding_matrix(h, 1.0).numpy()[0]
    np.testing.assert_allclose(f, S2 * TABLE_RANK2[n], atol=1e-6)
    np.testing.assert_allclose(f @ f.conj().T, np.eye(2), atol=1e-6)  # energy Nt for unit streams


def test_type1_rates_lie_between_no_precoding_and_svd_water_filling_on_random_channels():
    """200 i.i.d. Rayleigh 2x2 channels (seed 7) at Es/no = 1, 5 and 20 (linear; no = 2 / snr
    with snr 3, 10, 16 dB): the LMMSE sum rate of the selected codeword (reference formula
    above, not the module's) is the best of the two codewords on every channel and never
    above the water-filling capacity (exact, 1e-4 slack for float32); its mean is above
    that of no precoding (F = I), which has the distribution of any fixed codeword on
    i.i.d. channels (measured with this seed: 0.09, 0.21, 0.28 bit; asserted > 0.05 bit;
    type1 beats F = I on 67 % of the channels, not on all). The Gaussian
    mutual information log2 det(I + rho H F F^H H^H) equals that of F = I on every channel
    (F unitary, 1e-4)."""
    from semsim.phy.precoding import water_filling

    rng = np.random.default_rng(7)
    h = ((rng.normal(size=(200, 2, 2)) + 1j * rng.normal(size=(200, 2, 2))) / S2).astype(np.complex64)
    for rho in (1.0, 5.0, 20.0):
        f = type1_precoding_matrix(h, 1.0 / rho).numpy()
        s = np.linalg.svd(h.astype(np.complex128), compute_uv=False)
        p = water_filling(np.asarray(s**2 * rho, np.float32), 2.0).numpy()
        capacity = np.sum(np.log2(1.0 + p * s**2 * rho), axis=1)
        type1, plain, best = [], [], []
        for b in range(len(h)):
            hb = h[b].astype(np.complex128)
            type1.append(_lmmse_sum_rate(hb @ f[b], rho))
            plain.append(_lmmse_sum_rate(hb, rho))
            best.append(max(_lmmse_sum_rate(hb @ (S2 * w), rho) for w in TABLE_RANK2))
            mi = [np.linalg.slogdet(np.eye(2) + rho * m @ m.conj().T)[1] / np.log(2)
                  for m in (hb @ f[b], hb)]
            assert mi[0] == pytest.approx(mi[1], abs=1e-4)
        type1, plain = np.array(type1), np.array(plain)
        np.testing.assert_allclose(type1, best, atol=1e-4)
        assert np.all(type1 <= capacity + 1e-4)
        assert type1.mean() > plain.mean() + 0.05, (rho, type1.mean(), plain.mean())


# ---- the link option -------------------------------------------------------------------

def _type1_link(**kw):
    from semsim.phy.analog import AnalogLink
    from semsim.phy.spec import CSISpec, LinkSpec

    return AnalogLink(LinkSpec(csi=CSISpec(mode="perfect"), precoding="type1", **kw))


def test_analog_link_sends_the_selected_codeword_at_the_unprecoded_power(channel_spy, qpsk):
    """H = Q diag(2, 1) F_1^H at 10 dB (Es = 1, no = 2 / 10 = 0.2): the link must send
    F_1 x (spied on at the channel layer), 2 per channel use for QPSK, with the unprecoded
    link's noise variance, and the layers' SNRs are 4 / 0.2 = 20 and 1 / 0.2 = 5 (the other
    codeword would give 126 / 13.5 - 1 = 8.33 on both; worked by hand). Measured SNR: the
    regression of each layer's estimate on its symbols over 64 x 256 symbols, 5 %."""
    from semsim.phy.analog import AnalogLink
    from semsim.phy.spec import CSISpec, LinkSpec

    rng = np.random.default_rng(3)
    batch, length = 64, 256
    h = np.broadcast_to(_diagonalized_by(1), (batch, 2, 2)).copy()
    x = qpsk(rng, (batch, 2, length))
    link = _type1_link()
    sent_blocks = channel_spy(link)
    out = link.transmit(x, link.observe(batch, 10.0, h=h), 10.0)
    np.testing.assert_allclose(sent_blocks[-1], (S2 * TABLE_RANK2[1]) @ x, atol=1e-5)
    np.testing.assert_allclose(np.sum(np.abs(sent_blocks[-1]) ** 2, axis=1), 2.0, rtol=1e-4)
    x_hat = out.x_hat.numpy()
    for i, snr in enumerate((20.0, 5.0)):
        xi, yi = x[:, i].ravel(), x_hat[:, i].ravel()
        a = np.vdot(xi, yi) / np.vdot(xi, xi)
        assert np.abs(a) ** 2 / np.mean(np.abs(yi - a * xi) ** 2) == pytest.approx(snr, rel=0.05)
    plain = AnalogLink(LinkSpec(csi=CSISpec(mode="perfect")))
    ref = plain.transmit(x, plain.observe(batch, 10.0, h=h), 10.0)
    np.testing.assert_allclose(out.no.numpy(), ref.no.numpy(), rtol=1e-6)
    np.testing.assert_allclose(out.sent_reals.numpy(), ref.sent_reals.numpy())


def test_links_with_perfect_csi_recover_qpsk_at_high_snr(qpsk):
    from semsim.phy.digital import DigitalLink

    rng = np.random.default_rng(4)
    h = ((rng.normal(size=(16, 2, 2)) + 1j * rng.normal(size=(16, 2, 2))) / S2).astype(np.complex64)
    link = _type1_link()
    x = qpsk(rng, (16, 2, 24))
    out = link.transmit(x, link.observe(16, 80.0, h=h), 80.0)
    np.testing.assert_allclose(out.x_hat.numpy(), x, atol=2e-3)
    digital = DigitalLink("qpsk", num_rx_ant=2, num_tx_ant=2, csi="perfect", precoding="type1", k=256)
    bits = rng.integers(0, 2, size=(16, 256)).astype(np.float32)
    np.testing.assert_array_equal(digital(bits, 60.0, h=h).numpy(), bits)


def test_type1_is_refused_where_it_cannot_work():
    from semsim.phy.digital import DigitalLink

    with pytest.raises(ValueError, match=r"precoding: 'type1' needs nt == 2, only the 2-port "
                                         r"codebook is implemented \(got nt=4\)"):
        _type1_link(num_rx_ant=4, antennas_per_user=4)
    with pytest.raises(ValueError, match="precoding: 'type1' needs a single-user link"):
        DigitalLink("qpsk", num_rx_ant=2, users=2, precoding="type1")
    with pytest.raises(ValueError, match="precoding: 'type1' needs nr >= nt"):
        _type1_link(num_rx_ant=1)
    with pytest.raises(ValueError, match="precoding: 'type1' needs detector 'lmmse'"):
        _type1_link(detector="zf")
    with pytest.raises(ValueError, match="only the 2-port Type I codebook"):
        type1_precoding_matrix(np.ones((1, 4, 4), np.complex64), 1.0)


def test_scenario_link_accepts_type1(tmp_path):
    from semsim.scenario.loader import validate_file

    text = ("name: t\ndescription: type1\nlink: {nr: 2, nt: NT, precoding: type1}\n"
            "snr: {train_db: [0, 10], eval_db: [5]}\n"
            "systems:\n  - {name: a, type: deepjscc, params: {cr: 0.1}}\n")
    path = tmp_path / "s.yaml"
    path.write_text(text.replace("NT", "2"))
    assert validate_file(path)[0] == []
    path.write_text(text.replace("NT", "4").replace("nr: 2", "nr: 4"))
    assert [str(p) for p in validate_file(path)[0]] == [
        "link.precoding: 'type1' needs nt == 2, only the 2-port codebook is implemented (got nt=4)"]


def test_capacity_bound_on_a_type1_link_is_the_precoded_mutual_information():
    """H = Q diag(2, 1) F_1^H at 10 dB (no = 0.2): capacity_bound's bits are the Gaussian
    mutual information of the precoded channel, log2 det(I + H F F^H H^H / 0.2) =
    log2((1 + 20)(1 + 5)) per channel use (F unitary), not the water-filling capacity of
    precoding: svd (log2(22.5) + log2(5.625), which is higher)."""
    from semsim.phy.spec import CSISpec, LinkSpec
    from semsim.systems.capacity_bound import CapacityBoundSystem as CapacityBound

    h = np.broadcast_to(_diagonalized_by(1), (3, 2, 2)).copy()
    link = LinkSpec(csi=CSISpec(mode="perfect"), precoding="type1")
    bits = CapacityBound(link).capacity_bits(h, 10.0, uses=10)
    np.testing.assert_allclose(bits, 10 * np.log2(21.0 * 6.0), rtol=1e-5)


def test_type1_compiles_under_xla_as_training_does(qpsk):
    """Training compiles the link with XLA (train.jit_compile defaults to true): the compiled
    PMI selection gives the eager PMIs, and the compiled AnalogLink.transmit returns the
    sent QPSK symbols at 80 dB (1e-2 on 32 random channels, whose worst-conditioned ones
    leave errors of a few 1e-3; the noise draws differ from eager ones)."""
    import tensorflow as tf

    rng = np.random.default_rng(8)
    h = ((rng.normal(size=(32, 2, 2)) + 1j * rng.normal(size=(32, 2, 2))) / S2).astype(np.complex64)
    pmi = tf.function(lambda h: type1_pmi(h, 0.3), jit_compile=True)(h).numpy()
    np.testing.assert_array_equal(pmi, type1_pmi(h, 0.3).numpy())
    assert set(pmi) == {0, 1}
    link = _type1_link()
    x = qpsk(rng, (32, 2, 8))
    state = link.observe(32, 80.0, h=h)
    compiled = tf.function(lambda x: link.transmit(x, state, 80.0).x_hat, jit_compile=True)
    np.testing.assert_allclose(compiled(x).numpy(), x, atol=1e-2)
