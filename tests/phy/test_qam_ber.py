"""QAM mapping/demapping and uncoded BER against the closed forms of semsim.phy.theory.

Statistics: the BER estimate from ``N_e`` (roughly independent) bit errors has relative
standard deviation ``1 / sqrt(N_e)``. Every Monte-Carlo point below is simulated until it
has at least ``MIN_ERRORS = 6400`` errors (expected), so the 5 % tolerance is >= 4 standard
deviations; Gray labelling makes a symbol error cost one bit in almost all cases, so bit
errors are close to independent. Seeds are fixed.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy.integrate import quad

from semsim.phy import theory
from semsim.phy.channel import RayleighMIMOChannel
from semsim.phy.qam import QAMDemapper, QAMMapper, bits_per_symbol

MIN_ERRORS = 6400
REL_TOL = 0.05
CHUNK_SYMBOLS = 2**20


def test_constellations_unit_energy_gray():
    for mod, m in [("bpsk", 1), ("qpsk", 2), ("16qam", 4), ("64qam", 6), ("256qam", 8)]:
        mapper = QAMMapper(mod)
        assert mapper.bits_per_symbol == m == bits_per_symbol(mod)
        pts = mapper.points.numpy()
        assert pts.shape == (2**m,)
        np.testing.assert_allclose(np.mean(np.abs(pts) ** 2), 1.0, rtol=1e-5)
        # Gray: the nearest neighbours of every point differ from it in exactly one bit
        dist = np.abs(pts[:, None] - pts[None, :])
        np.fill_diagonal(dist, np.inf)
        for i in range(2**m):
            for j in np.flatnonzero(np.isclose(dist[i], dist[i].min(), rtol=1e-4)):
                assert bin(i ^ j).count("1") == 1, (mod, i, j)


def test_mapper_demapper_roundtrip_and_llr_sign():
    bits = tf.constant(np.random.default_rng(0).integers(0, 2, (3, 5, 24)), tf.float32)
    for mod in ["bpsk", "qpsk", "16qam", "64qam"]:
        x = QAMMapper(mod)(bits)
        assert x.dtype == tf.complex64 and x.shape == (3, 5, 24 // bits_per_symbol(mod))
        llr = QAMDemapper(mod)(x, 0.01)
        # Sionna convention: llr = ln P(b=1)/P(b=0) > 0 for bit 1
        np.testing.assert_array_equal((llr.numpy() > 0).astype(np.float32), bits.numpy())
        hard = QAMDemapper(mod, method="maxlog", hard_out=True)(x, 0.01)
        np.testing.assert_array_equal(hard.numpy(), bits.numpy())


def test_bpsk_llr_closed_form():
    """Exact BPSK LLR with complex noise of variance no: 2 Re(y) / (no/2), sign flipped
    because bit 0 -> +1 and the LLR is ln P(1)/P(0)."""
    y = tf.constant([0.3 + 0.7j, -1.2 - 0.1j, 0.05 + 0j], tf.complex64)
    no = tf.constant([0.5, 0.25, 2.0])
    llr = QAMDemapper("bpsk")(y, no).numpy()
    np.testing.assert_allclose(llr, -4 * np.real(y.numpy()) / no.numpy(), rtol=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="modulation"):
        QAMMapper("8psk")
    with pytest.raises(ValueError, match="method"):
        QAMDemapper("qpsk", method="exact")
    with pytest.raises(ValueError, match="multiple of 4"):
        QAMMapper("16qam")(tf.zeros([2, 6]))


def test_theory_closed_forms():
    """The generic Gray-PAM enumeration against textbook closed forms."""
    q = theory.qfunc
    g = 10 ** (np.arange(0, 21, 2.0) / 10)
    np.testing.assert_allclose(theory.ber_awgn("bpsk", 10 * np.log10(g)), q(np.sqrt(2 * g)))
    np.testing.assert_allclose(theory.ber_awgn("qpsk", 10 * np.log10(g)), q(np.sqrt(g)))
    a = np.sqrt(g / 5)
    np.testing.assert_allclose(theory.ber_awgn("16qam", 10 * np.log10(g)),
                               (3 * q(a) + 2 * q(3 * a) - q(5 * a)) / 4)
    a = np.sqrt(g / 21)  # 64-QAM, Cho & Yoon (2002), eq. for M = 64
    np.testing.assert_allclose(
        theory.ber_awgn("64qam", 10 * np.log10(g)),
        (7 * q(a) + 6 * q(3 * a) - q(5 * a) + q(9 * a) - q(13 * a)) / 12)
    eb = g / 2  # QPSK over Rayleigh: (1 - sqrt(Eb/N0 / (1 + Eb/N0))) / 2
    np.testing.assert_allclose(theory.ber_rayleigh("qpsk", 10 * np.log10(g)),
                               0.5 * (1 - np.sqrt(eb / (1 + eb))))
    # Rayleigh average by numerical integration over |h|^2 ~ Exp(1) for 16-QAM
    for gi in [1.0, 10.0, 100.0]:
        average, _ = quad(lambda t, gi=gi: theory.ber_awgn("16qam", 10 * np.log10(gi * t))
                          * np.exp(-t), 0, np.inf, epsabs=1e-12)
        np.testing.assert_allclose(theory.ber_rayleigh("16qam", 10 * np.log10(gi)), average,
                                   rtol=1e-6)


def _simulate_ber(mod: str, esno_db: float, fading: bool, expected_ber: float) -> float:
    """Uncoded hard-decision BER: QAM -> 1x1 channel ("average" SNR = Es/N0) -> y/h."""
    m = bits_per_symbol(mod)
    mapper, demapper = QAMMapper(mod), QAMDemapper(mod, hard_out=True)
    channel = RayleighMIMOChannel(1, 1, fading="fast" if fading else "none",
                                  snr_mode="average")

    @tf.function(jit_compile=True)
    def errors(bits):
        x = mapper(bits)[:, tf.newaxis, :]  # [1, Nt=1, L]
        y, h, no = channel(x, tf.constant(esno_db, tf.float32))
        if fading:  # coherent detection with perfect CSI; noise scales by 1/|h|^2
            g = h[:, :, 0, 0]
            z, no_z = y[:, 0] / g, no / tf.abs(g) ** 2
        else:
            z, no_z = y[:, 0], no[:, tf.newaxis]
        b_hat = demapper(z, no_z)
        return tf.reduce_sum(tf.cast(tf.not_equal(b_hat, bits), tf.int64))

    num_bits = math.ceil(MIN_ERRORS / expected_ber)
    chunks = math.ceil(num_bits / (CHUNK_SYMBOLS * m))
    rng = tf.random.Generator.from_seed(7)
    total = 0
    for _ in range(chunks):
        bits = tf.cast(rng.uniform([1, CHUNK_SYMBOLS * m], 0, 2, tf.int32), tf.float32)
        total += int(errors(bits))
    return total / (chunks * CHUNK_SYMBOLS * m)


@pytest.mark.parametrize("mod,esno_db", [("qpsk", 0.0), ("qpsk", 6.0), ("qpsk", 11.0),
                                         ("16qam", 6.0), ("16qam", 12.0), ("16qam", 17.0)])
def test_awgn_ber_matches_theory(mod, esno_db):
    expected = float(theory.ber_awgn(mod, esno_db))
    assert expected >= 1e-4
    ber = _simulate_ber(mod, esno_db, fading=False, expected_ber=expected)
    assert ber == pytest.approx(expected, rel=REL_TOL), (mod, esno_db, ber, expected)


@pytest.mark.parametrize("mod,esno_db", [("qpsk", 0.0), ("qpsk", 15.0), ("qpsk", 30.0),
                                         ("16qam", 10.0), ("16qam", 25.0)])
def test_rayleigh_ber_matches_theory(mod, esno_db):
    expected = float(theory.ber_rayleigh(mod, esno_db))
    assert expected >= 1e-4
    ber = _simulate_ber(mod, esno_db, fading=True, expected_ber=expected)
    assert ber == pytest.approx(expected, rel=REL_TOL), (mod, esno_db, ber, expected)
