"""Separation chain and capacity bound on the shared MIMO link."""

import numpy as np
import pydantic
import pytest
import skimage.data
import tensorflow as tf

from semsim.codecs import HEVCCodec, psnr_db
from semsim.systems.base import CSISpec, LinkSpec, TrainSpec
from semsim.systems.capacity_bound import CapacityBoundSystem
from semsim.systems.codec_common import channel_uses_per_image, fallback_mean
from semsim.systems.registry import get_system_type
from semsim.systems.separation import LENGTH_FIELD_BITS, SeparationSystem

LINK = LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(mode="perfect"))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Eight textured 32x32 crops of skimage's bundled astronaut image."""
    a = skimage.data.astronaut() / 255.0
    crops = [a[y : y + 32, x : x + 32] for y in (120, 250) for x in (100, 180, 260, 340)]
    return np.stack(crops).astype(np.float32)


@pytest.fixture(scope="module")
def good_channels() -> np.ndarray:
    """Well-conditioned 2x2 channels (scaled unitary matrices), one per image."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(8, 2, 2)) + 1j * rng.normal(size=(8, 2, 2)))
    return q.astype(np.complex64)


def _prepared(system, images):
    """``prepare`` on an endless stream of the images (as the runner gives), one epoch = 2
    batches of 4."""
    stream = tf.data.Dataset.from_tensor_slices(images).batch(4).repeat()
    system.prepare(stream, TrainSpec(steps_per_epoch=2), None, False)
    return system


def test_fallback_mean_is_training_mean(images):
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(8))).batch(3)
    np.testing.assert_allclose(fallback_mean(data), images.astype(np.float64).mean(axis=(0, 1, 2)), rtol=1e-6)
    # Of an endless stream only the first max_batches batches count (here images 0..5).
    endless = tf.data.Dataset.from_tensor_slices(images).batch(3).repeat()
    np.testing.assert_allclose(fallback_mean(endless, max_batches=2),
                               images[:6].astype(np.float64).mean(axis=(0, 1, 2)), rtol=1e-6)
    with pytest.raises(ValueError, match="max_batches"):
        fallback_mean(endless, max_batches=0)


def test_high_snr_reproduces_codec_exactly(images, good_channels):
    system = _prepared(SeparationSystem(LINK, code="ldpc5g", modulation="16qam", cr=0.2), images)
    result = system.transmit(images, 60.0, h=good_channels)
    assert not result.extras["failed"].any()
    # Independent reference: the codec alone at the largest quality fitting each share.
    uses = channel_uses_per_image(0.2, (32, 32), 2)  # 307 channel uses of 2 antennas
    share = uses * 2 * 4 // 2  # one rate-1/2 5G codeword per image
    codec = HEVCCodec()
    for image, rec, bits in zip(images, result.images_hat, result.extras["source_bits"], strict=True):
        enc = codec.encode_to_fit(image, share - LENGTH_FIELD_BITS)
        np.testing.assert_array_equal(rec, codec.decode(enc.payload, (32, 32)))
        assert bits == enc.bits + LENGTH_FIELD_BITS
    np.testing.assert_allclose(result.cr, 2 * uses * 2 / 3072, rtol=1e-6)


UPLINK_2X2 = LinkSpec(num_rx_ant=2, users=2, antennas_per_user=1, csi=CSISpec(mode="perfect"))


def test_multi_user_each_user_sends_its_own_image(images, good_channels):
    """K = 2 single-antenna users, M = 2: image n is user n % 2 in realization n // 2 over
    h[2 (n // 2)]; the per-image matrices of odd images are zero and must not be used. At
    high SNR every image is the codec's own reconstruction at a per-user budget of U = 307
    uses of one antenna."""
    h = np.zeros_like(good_channels)
    h[::2] = good_channels[::2]
    system = _prepared(SeparationSystem(UPLINK_2X2, code="ldpc5g", modulation="16qam", cr=0.1), images)
    result = system.transmit(images, 60.0, h=h)
    assert not result.extras["failed"].any()
    uses = channel_uses_per_image(0.1, (32, 32), 1)
    assert uses == 153
    codec = HEVCCodec()
    for image, rec in zip(images, result.images_hat, strict=True):
        enc = codec.encode_to_fit(image, uses * 4 // 2 - LENGTH_FIELD_BITS)
        np.testing.assert_array_equal(rec, codec.decode(enc.payload, (32, 32)))
    np.testing.assert_allclose(result.cr, 2 * uses / 3072, rtol=1e-6)
    # A zero channel for realization 1 (images 2 and 3) loses exactly those two images.
    h[2] = 0.0
    lost = system.transmit(images, 60.0, h=h).extras["failed"]
    np.testing.assert_array_equal(lost, [0, 0, 1, 1, 0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"image batch \(7\)"):
        system.transmit(images[:7], 60.0, h=h[:7])


def test_multi_user_capacity_is_the_symmetric_rate():
    h = (np.random.default_rng(4).normal(size=(3, 2, 2, 2)) @ [1, 1j]) / np.sqrt(2)
    bits = CapacityBoundSystem(UPLINK_2X2, cr=0.2).capacity_bits(h, 10.0, uses=100)
    assert bits.shape == (3, 2)
    # Independent reference: min(C_1, C_2, C_12 / 2) of the two-user MAC, snr = 10 per user.
    single = np.log2(1 + 10.0 * np.sum(np.abs(h) ** 2, axis=1))  # [3, 2], log2(1 + snr |h_k|^2)
    joint = np.log2(np.real(np.linalg.det(np.eye(2) + 10.0 * h @ np.conj(np.swapaxes(h, 1, 2)))))
    expected = 100 * np.minimum(single.min(axis=1), joint / 2)
    np.testing.assert_allclose(bits, np.repeat(expected[:, None], 2, axis=1), rtol=1e-6)


def test_low_snr_falls_back(images):
    system = _prepared(SeparationSystem(LINK, code="ldpc5g", modulation="64qam", cr=0.2), images)
    result = system.transmit(images, -20.0)
    assert result.extras["failed"].all()
    np.testing.assert_allclose(result.images_hat, np.broadcast_to(system.fallback, images.shape))


@pytest.mark.parametrize("cr", [0.05, 1 / 3])
def test_cr_never_exceeds_target(images, cr):
    system = _prepared(SeparationSystem(LINK, codec="jpeg", code="dvbs2", frame="short"), images)
    batch = np.concatenate([images] * 8)  # 64 images: enough for short frames at low CR
    result = system.transmit(batch, 40.0, target_cr=cr)
    assert np.all(result.cr <= cr + 1e-7)
    m = result.extras["bits_per_symbol"][0]
    # Loss is below one codeword of symbols spread over the batch.
    assert np.all(result.cr > cr - 2 * 16200 / m / len(batch) / 3072 - 2 * 2 / 3072)


@pytest.mark.parametrize("cr, short_frame", [(0.3, True), (0.0828, False)])
def test_a_rate_too_low_for_a_dvbs2_codeword_degrades_to_a_shorter_code(images, cr, short_frame):
    # 8 images, 2 antennas, 20 dB (64-QAM by the DVB-S2 thresholds). CR 0.3: 230 uses per
    # image, 8 * 230 * 2 * 6 = 22080 code bits: no normal frame (64800), one short (16200).
    # CR 0.0828 (the crash): 63 uses, 6048 bits, not even a short frame: one rate-1/2
    # 5G codeword per image, 16-QAM by the 5G thresholds, n = 63 * 2 * 4 = 504.
    system = _prepared(SeparationSystem(LINK, code="dvbs2", frame="normal", cr=cr), images)
    result = system.transmit(images, 20.0)  # no ValueError: the chain degrades
    uses = channel_uses_per_image(cr, (32, 32), 2)
    m = result.extras["bits_per_symbol"][0]
    if short_frame:
        assert (uses, m) == (230, 6) and np.all(result.extras["codeword_bits"] == 16200)
    else:
        assert (uses, m) == (63, 4) and np.all(result.extras["codeword_bits"] == 504)
    assert np.all(result.cr <= cr + 1e-7) and np.all(result.cr > 0)
    assert result.extras["failed"].mean() < 1.0  # 20 dB: images get through


def test_nothing_fits_is_a_reported_failure(images):
    # 2 uses per image (CR 0.005): 8 QPSK code bits per image fit no code at all.
    system = _prepared(SeparationSystem(LINK, code="ldpc5g", modulation="qpsk"), images)
    result = system.transmit(images, 10.0, target_cr=0.005)
    np.testing.assert_array_equal(result.extras["failed"], 1.0)
    np.testing.assert_array_equal(result.cr, 0.0)
    np.testing.assert_allclose(result.images_hat, np.broadcast_to(system.fallback, images.shape))


def test_auto_modulation_follows_threshold_table():
    system = SeparationSystem(LINK, required_snr_db={"qpsk": 1, "16qam": 5, "64qam": 9, "256qam": 14})
    picks = [system.choose_modulation(s) for s in (-5, 1, 6, 9, 13.9, 30)]
    assert picks == ["qpsk", "qpsk", "16qam", "64qam", "64qam", "256qam"]
    assert SeparationSystem(LINK, modulation="qpsk").choose_modulation(30) == "qpsk"


def test_capacity_bits_match_eigenvalues():
    h = (np.random.default_rng(0).normal(size=(5, 2, 2, 2)) @ [1, 1j]) / np.sqrt(2)
    bits = CapacityBoundSystem(LINK, cr=0.2).capacity_bits(h, 10.0, uses=100)
    lam = np.linalg.eigvalsh(np.einsum("bij,bkj->bik", h, h.conj()))
    # snr / 2 per stream: the float32 noise variance of the link's "average" SNR, 2 / snr.
    np.testing.assert_allclose(bits, 100 * np.log2(1 + 10.0 / 2 * lam).sum(axis=1), rtol=1e-6)


def test_capacity_bound_above_practical_chain(images):
    h = ((np.random.default_rng(7).normal(size=(8, 2, 2, 2)) @ [1, 1j]) / np.sqrt(2)).astype(np.complex64)
    bound = _prepared(CapacityBoundSystem(LINK, cr=0.2), images)
    chain = _prepared(SeparationSystem(LINK, code="ldpc5g", cr=0.2), images)
    for snr in (0.0, 10.0, 20.0):
        ub = bound.transmit(images, snr, h=h)
        practical = chain.transmit(images, snr, h=h)
        psnr_ub = np.mean([psnr_db(a, b) for a, b in zip(images, ub.images_hat, strict=True)])
        psnr_pr = np.mean([psnr_db(a, b) for a, b in zip(images, practical.images_hat, strict=True)])
        assert psnr_ub >= psnr_pr, (snr, psnr_ub, psnr_pr)
        np.testing.assert_allclose(ub.cr, practical.cr, rtol=1e-6)


def test_registry_and_errors(images):
    spec = get_system_type("separation")
    system = spec.factory(spec.params(codec="jpeg2000", code="ldpc5g"), LINK, (32, 32), 0)
    assert system.codec.name == "jpeg2000" and system.cr is None
    with pytest.raises(pydantic.ValidationError):
        spec.params(codec="bpg")
    with pytest.raises(ValueError, match="no target CR"):
        _prepared(system, images).transmit(images, 10.0)
    with pytest.raises(RuntimeError, match="prepare"):
        SeparationSystem(LINK, cr=0.2, code="ldpc5g").transmit(images, -30.0)
    cap = get_system_type("capacity_bound")
    assert cap.factory(cap.params(cr=0.1), LINK, (32, 32), 0).cr == 0.1
