"""SCSC building blocks: straight-through identity, unfolded ADMM vs plain ADMM, PPEN's QA
conditioning, the standard chain's error-free path."""

import numpy as np
import pytest
import tensorflow as tf

from semsim.phy.spec import CSISpec, LinkSpec
from semsim.seeding import set_seed
from semsim.systems.scsc.chain import StandardChain
from semsim.systems.scsc.pcen import UnfoldedADMMPrecoder
from semsim.systems.scsc.ppen import PPEN
from semsim.systems.scsc.proxy import ProxyNet
from semsim.systems.scsc.straight_through import straight_through

LINK = LinkSpec(csi=CSISpec(mode="perfect"), precoding="svd")


def _images(n=2, size=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, size=(n, 1, 1, 3))
    ramp = np.linspace(0, 0.2, size)[None, :, None, None]
    return np.clip(base + ramp + 0.02 * rng.normal(size=(n, size, size, 3)), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def chain():
    return StandardChain(LINK)


def test_chain_without_errors_returns_the_hevc_decoding(chain):
    """At 40 dB every codeword decodes, so the output is exactly HEVC's own decoding."""
    set_seed(0)
    images = _images()
    out = chain.send(images, 34, "3/4", 40.0)
    assert np.all(out.failed == 0)
    for img, rec in zip(images, out.images_hat, strict=True):
        enc = chain.codec.encode(img, 34)
        np.testing.assert_array_equal(rec, chain.codec.decode(enc.payload, (64, 64)))
    # CBR = Nt * ceil(QPSK symbols / streams) / 3HW, 2048-bit codewords carrying k = 1536.
    n_cw = np.array([-(-(chain.codec.encode(i, 34).bits + 16) // 1536) for i in images])
    np.testing.assert_allclose(out.cbr, 2 * np.ceil(n_cw * 1024 / 2) / (3 * 64 * 64), rtol=1e-6)


def test_straight_through_forward_is_chain_and_gradient_is_proxys(chain):
    set_seed(1)
    images = tf.constant(_images())
    ppen, proxy = PPEN(filters=8, depth=1), ProxyNet(filters=8, latent=4)
    qp, rate, snr = tf.constant(34.0), tf.constant(0.5), tf.constant(8.0)
    ppen(images, qp)
    for w in ppen.weights:  # random weights, so PPEN is not the identity
        w.assign(0.1 * tf.random.normal(w.shape))
    h = chain.channel.sample_channel(2)
    with tf.GradientTape(persistent=True) as tape:
        pre = ppen(images, qp)
        real = chain.send(pre.numpy(), 34, "1/2", 8.0, h).images_hat
        approx = proxy(pre, qp, rate, snr, h)
        out = straight_through(real, approx)
        loss = tf.reduce_mean((out - images) ** 2)
    np.testing.assert_array_equal(out.numpy(), real)  # bit for bit
    grads = tape.gradient(loss, ppen.trainable_weights)
    # dL/dout at out = real, in closed form, pushed through the proxy alone.
    upstream = 2.0 * (real - images) / float(np.prod(images.shape))
    expected = tape.gradient(approx, ppen.trainable_weights, output_gradients=upstream)
    for g, e in zip(grads, expected, strict=True):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-9)
    assert any(np.abs(g.numpy()).max() > 0 for g in grads)
    with pytest.raises(ValueError, match="one shape"):
        straight_through(real, approx[:1])


def _plain_admm(x_lin, h, rho, iters):
    """Independent numpy ADMM for min ||H x_lin - H x||^2, x in QPSK^Nt."""
    def proj(v):
        return (np.where(v.real >= 0, 1, -1) + 1j * np.where(v.imag >= 0, 1, -1)) / np.sqrt(2)
    a = h.conj().T @ h + rho * np.eye(h.shape[1])
    b = h.conj().T @ h @ x_lin
    z, u = proj(x_lin), np.zeros_like(x_lin)
    for _ in range(iters):
        x = np.linalg.solve(a, b + rho * (z - u))
        z = proj(x + u)
        u = u + x - z
    return x, z


def test_unfolded_admm_with_zero_offsets_is_plain_admm():
    rng = np.random.default_rng(2)
    h = (rng.normal(size=(3, 2, 4)) + 1j * rng.normal(size=(3, 2, 4))) / np.sqrt(2)
    x_lin = (rng.normal(size=(3, 4, 5)) + 1j * rng.normal(size=(3, 4, 5))) / np.sqrt(2)
    pen = UnfoldedADMMPrecoder(num_layers=6, rho=0.7)
    out = pen(x_lin.astype(np.complex64), h.astype(np.complex64), normalize=False).numpy()
    for b in range(3):
        ref, _ = _plain_admm(x_lin[b], h[b], 0.7, 6)
        np.testing.assert_allclose(out[b], ref, atol=2e-4)
    # Nonzero offsets change the result (the parameters are live).
    pen.theta.assign(tf.fill([6], 0.5))
    moved = pen(x_lin.astype(np.complex64), h.astype(np.complex64), normalize=False).numpy()
    assert np.abs(moved - out).max() > 1e-3
    # Power normalization: energy Nt per used channel use, unused uses stay zero.
    x_lin[:, :, -1] = 0
    norm = pen(x_lin.astype(np.complex64), h.astype(np.complex64)).numpy()
    np.testing.assert_allclose(np.sum(np.abs(norm[:, :, :-1]) ** 2, axis=(1, 2)), 4 * 4, rtol=1e-4)
    assert np.all(norm[:, :, -1] == 0)


def test_admm_returns_the_brute_force_optimum_when_it_is_in_the_alphabet():
    """Nt = 2 QPSK, 16 candidates searched exhaustively: when x_lin is an alphabet point,
    the cost is 0 there and positive elsewhere (full-rank H); ADMM must land on it."""
    rng = np.random.default_rng(3)
    pts = np.array([1 + 1j, 1 - 1j, -1 + 1j, -1 - 1j]) / np.sqrt(2)
    cands = np.array([[a, b] for a in pts for b in pts])
    pen = UnfoldedADMMPrecoder(num_layers=10, rho=1.0)
    for trial in range(5):
        h = (rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))).astype(np.complex64)
        target = cands[rng.integers(16)]
        cost = np.linalg.norm((h @ target)[None] - cands @ h.T, axis=1)
        best = cands[np.argmin(cost)]
        x = pen(target.astype(np.complex64)[None, :, None], h[None], normalize=False).numpy()
        snapped = (np.sign(x.real) + 1j * np.sign(x.imag))[0, :, 0] / np.sqrt(2)
        np.testing.assert_allclose(snapped, best, atol=1e-6, err_msg=f"trial {trial}")


def test_ppen_depends_on_qp_through_qa_layers():
    set_seed(4)
    images = tf.constant(_images(size=16))
    qa, plain = PPEN(filters=8, depth=2), PPEN(filters=8, depth=2, qa=False)
    for net in (qa, plain):
        net(images, tf.constant(28.0))
        for w in net.weights:
            w.assign(0.3 * tf.random.normal(w.shape))
    a, b = qa(images, tf.constant(28.0)).numpy(), qa(images, tf.constant(41.0)).numpy()
    assert np.abs(a - b).max() > 1e-3
    s28, s41 = (qa.scales[0](tf.constant([[q]])).numpy() for q in (0.0, 1.0))
    assert np.abs(s28 - s41).max() > 1e-3 and np.all((s28 > 0) & (s28 < 2))
    np.testing.assert_array_equal(plain(images, tf.constant(28.0)).numpy(),
                                  plain(images, tf.constant(41.0)).numpy())
    fresh = PPEN(filters=8, depth=2)  # the identity before training
    np.testing.assert_allclose(fresh(images, tf.constant(31.0)).numpy(), images.numpy(), atol=1e-7)
