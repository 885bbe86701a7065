"""The ``mijscc`` and ``classified`` system types: link mapping, CR, quantized symbols,
the A-MIJSCC mask, the frozen-encoder classifier, and the digits data source."""

import keras
import numpy as np
import pydantic
import pytest
import tensorflow as tf

from semsim.data.labelled import load_digits_rgb
from semsim.semantic.quantize import fake_quantize
from semsim.systems.base import CSISpec, LinkSpec, TrainSpec
from semsim.systems.mijscc import MIJSCCParams, build_mijscc
from semsim.systems.mijscc_classifier import labelled_batches
from semsim.systems.registry import get_system_type

SISO_AWGN = LinkSpec(num_rx_ant=1, antennas_per_user=1, fading="none",
                     csi=CSISpec(mode="perfect"), detector="zf")
MIMO_2X2 = LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(mode="perfect"))
UPLINK_2 = LinkSpec(num_rx_ant=2, users=2, antennas_per_user=1, csi=CSISpec(mode="perfect"))
SMALL = dict(filters=(8, 16, 16), classifier_hidden=64)


@pytest.fixture(scope="module")
def digits():
    return load_digits_rgb(32)


def test_digits_data_set_is_labelled_and_split_by_index(digits):
    (train, train_labels), (test, test_labels) = digits
    assert train.shape == (1438, 32, 32, 3) and test.shape == (359, 32, 32, 3)
    assert train.dtype == np.uint8
    np.testing.assert_array_equal(train[..., 0], train[..., 2])  # greyscale on 3 channels
    assert set(np.unique(test_labels)) == set(range(10))
    # every class is present in proportion (sklearn's digits hold 174..183 per class)
    counts = np.bincount(np.concatenate([train_labels, test_labels]))
    assert counts.min() >= 170 and counts.sum() == 1797
    assert train.max() == 255 and train.min() == 0


@pytest.mark.parametrize("link", [MIMO_2X2, UPLINK_2], ids=["mimo2x2", "uplink2"])
def test_quantized_representation_survives_a_clean_mimo_link(link):
    # At 80 dB with perfect CSI the receiver recovers the 8-bit grid values: the received
    # representation equals the quantize -> dequantize of the sent one.
    params = MIJSCCParams(cr=1 / 12, bits=8, mi_weight=0.0, **SMALL)
    system = build_mijscc(params, link, (16, 16), 0)
    images = tf.random.uniform([4, 16, 16, 3], seed=1)
    out = system.model.transmit_representation({"image": images, "snr_db": tf.fill([4], 80.0)})
    expected = fake_quantize(out["sent_rep"], 8).numpy()
    step = (np.ptp(out["sent_rep"].numpy(), axis=1) / 255)[:, None]
    assert np.all(np.abs(out["rep_hat"].numpy() - expected) < 0.25 * step)  # half: a wrong level
    result = system.transmit(images.numpy(), 80.0)
    np.testing.assert_allclose(result.cr, 16 * 4 / (3 * 16 * 16))  # c = 16 channels at 2x2
    assert "side_info_bits" not in result.extras  # a test-set figure: System.summarize
    assert system.summarize(result.extras) == {"side_info_bits": 96.0}  # 3 float32


def test_adaptive_mask_drops_trailing_channels_not_a_region_of_the_image():
    # The mask keeps the first k symbols. The decoder must still get every position of
    # the 4x4 latent grid (whole leading channels are kept), otherwise a part of the
    # image is never sent at all (row-major order lost the bottom rows: 10.6 dB there).
    params = MIJSCCParams(cr=1 / 12, bits=8, mi_weight=0.0, adaptive=True, **SMALL)
    system = build_mijscc(params, SISO_AWGN, (32, 32), 0)
    model = system.model
    model.enable_adaptive()
    half = np.zeros([2, model.num_symbols], np.float32)
    half[:, : model.num_symbols // 2] = 1.0
    model.noise_mask.call = lambda noise_var, training=False: (tf.constant(half), None)
    seen = {}
    decode = model.decode

    def spy(z, training=False):
        seen["z"] = z
        return decode(z, training=training)

    model.decode = spy
    images = np.random.default_rng(4).uniform(0.2, 0.8, size=(2, 32, 32, 3)).astype(np.float32)
    model({"image": images, "snr_db": tf.fill([2], 60.0)})
    z = seen["z"].numpy()  # [2, 4, 4, 16]: c = 16 channels for CR 1/12 at 32x32
    assert z.shape == (2, 4, 4, 16)
    sent = np.abs(z) > 0
    assert sent[..., :8].all()  # the first 8 channels at every grid position
    assert not sent[..., 8:].any()  # the last 8 channels nowhere


def test_a_dropped_symbol_learns_what_it_would_add_to_the_distortion():
    # In training, d rep_hat / d mask is what each real is received as when it is sent, so
    # the gradient of the distortion for a dropped symbol's (straight-through) mask entry
    # is dL/drep_hat . (its value as received). Before, a dropped real was received as 0
    # and its entry got no gradient from the distortion: only the rate term pushed it.
    params = MIJSCCParams(cr=1 / 12, bits=8, mi_weight=0.0, adaptive=True, **SMALL)
    system = build_mijscc(params, SISO_AWGN, (32, 32), 0)
    model = system.model
    model.enable_adaptive()
    n = model.num_symbols
    hard = np.zeros([2, n], np.float32)
    hard[:, : n // 2] = 1.0
    soft = tf.Variable(tf.fill([2, n], 0.5))
    model.noise_mask.call = lambda noise_var, training=False: (
        tf.constant(hard) + soft - tf.stop_gradient(soft), None)
    model.attention.call = lambda z, mask, noise_var: z * mask  # no gate: one path to the mask
    images = tf.constant(np.random.default_rng(6).uniform(0.1, 0.9, (2, 32, 32, 3)), tf.float32)
    inputs = {"image": images, "snr_db": tf.fill([2], 80.0)}

    def distortion(rep_hat):
        image_hat = model.decode(model.reals_to_grid(rep_hat), training=True)
        return tf.reduce_mean(tf.square(image_hat - images))

    # an independent reference: every real as received when the mask keeps all of them
    hard_kept = hard.copy()
    hard[:] = 1.0
    as_sent = model.transmit_representation(inputs)["rep_hat"].numpy()
    hard[:] = hard_kept
    rep_hat = model.transmit_representation(inputs, training=True)["rep_hat"]
    with tf.GradientTape() as tape:
        tape.watch(rep_hat)
        loss = distortion(rep_hat)
    g_rep = tape.gradient(loss, rep_hat).numpy()
    expected = (g_rep * as_sent).reshape(2, n, 2).sum(axis=2)
    with tf.GradientTape() as tape:
        loss = distortion(model.transmit_representation(inputs, training=True)["rep_hat"])
    g_soft = tape.gradient(loss, soft).numpy()
    dropped = slice(n // 2, None)
    got, want = g_soft[:, dropped], expected[:, dropped]
    assert np.abs(want).mean() > 1e-5
    # Tolerance 5 % of the mean magnitude: the mask also reaches the distortion through the
    # link's power normalization over the kept count (about 1 % here). Before: the error
    # was as large as the values themselves (correlation -0.29).
    assert np.abs(got - want).mean() < 0.05 * np.abs(want).mean()


@pytest.mark.parametrize("bits", [4, 8])
def test_sent_symbols_take_at_most_2_to_q_values_per_real_dimension(bits):
    params = MIJSCCParams(cr=1 / 6, bits=bits, mi_weight=0.0, **SMALL)
    system = build_mijscc(params, SISO_AWGN, (32, 32), 0)
    images = np.random.default_rng(2).uniform(size=(3, 32, 32, 3)).astype(np.float32)
    symbols = system.sent_symbols(images, 10.0)
    assert symbols.shape == (3, 256)  # c = 32 channels at 4x4: 512 reals, 256 symbols
    for image in symbols:
        assert len(np.unique(np.round(image.real, 5))) <= 2**bits
        assert len(np.unique(np.round(image.imag, 5))) <= 2**bits
        assert np.mean(np.abs(image) ** 2) == pytest.approx(1.0, rel=1e-4)


def test_adaptive_mask_sends_a_prefix_and_reports_its_ratio():
    params = MIJSCCParams(cr=1 / 12, bits=8, adaptive=True, eta=0.5, **SMALL)
    system = build_mijscc(params, SISO_AWGN, (32, 32), 0)
    system.model.enable_adaptive()
    images = np.random.default_rng(3).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    symbols = system.sent_symbols(images, 5.0)
    kept = np.abs(symbols) > 0
    assert np.all(np.diff(kept.astype(int), axis=1) <= 0)  # consecutive: 1..1 0..0
    result = system.transmit(images, 5.0)
    ratio = result.extras["active_ratio"]
    # at initialization the scores are ~ 1 - j / n, so about half of the symbols are kept
    assert 0.3 < ratio[0] < 0.7
    np.testing.assert_allclose(ratio, kept.mean(axis=1), atol=1 / 128)
    np.testing.assert_allclose(result.cr, ratio * 16 / 192, rtol=1e-6)
    # Quantizer (3 float32) + the entropy of the end index over these two images: 0 bits
    # when both keep the same count, 1 bit when they differ.
    counts = kept.sum(axis=1)
    np.testing.assert_array_equal(result.extras["kept_symbols"], counts)
    expected = 96.0 + (0.0 if counts[0] == counts[1] else 1.0)
    assert system.summarize(result.extras)["side_info_bits"] == pytest.approx(expected)


def test_frozen_encoder_classifier_beats_chance_on_digits(digits):
    (train, train_labels), (test, test_labels) = digits
    keras.utils.set_random_seed(0)
    params = MIJSCCParams(cr=1 / 12, mi_weight=0.0, classifier_steps=80, **SMALL)
    system = build_mijscc(params, SISO_AWGN, (32, 32), 0)
    encoder_before = [w.numpy().copy() for w in system.model.trainable_weights]
    data = tf.data.Dataset.from_tensor_slices(
        (train[:640].astype(np.float32) / 255, train_labels[:640])).batch(32)
    train_acc = system.train_classifier_head(labelled_batches(data),
                                             TrainSpec(snr_range_db=(0.0, 20.0), seed=0))
    # the encoder (random, frozen) is untouched by the classifier's training
    for before, after in zip(encoder_before, system.model.trainable_weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    result = system.transmit(test[:192].astype(np.float32) / 255, 10.0, labels=test_labels[:192])
    accuracy = result.extras["accuracy"].mean()
    # chance is 0.1 (10 balanced classes); 192 test images give a std of ~0.035, so 0.4
    # is far above chance (a random frozen encoder, 80 classifier steps)
    assert accuracy > 0.4, (accuracy, train_acc)
    np.testing.assert_array_equal(np.unique(result.extras["accuracy"]), [0.0, 1.0])


def test_classifier_needs_labels():
    params = MIJSCCParams(**SMALL)
    system = build_mijscc(params, SISO_AWGN, (32, 32), 0)
    unlabelled = tf.data.Dataset.from_tensor_slices(np.zeros((4, 32, 32, 3), np.float32)).batch(2)
    with pytest.raises(ValueError, match="needs labels"):
        system.prepare(unlabelled, TrainSpec(steps=1), "/nonexistent", False)


def test_params_are_checked():
    with pytest.raises(pydantic.ValidationError, match="bits"):
        MIJSCCParams(bits=6)
    with pytest.raises(pydantic.ValidationError, match="adaptive"):
        MIJSCCParams(adaptive=True)
    with pytest.raises(pydantic.ValidationError, match="eta"):
        MIJSCCParams(bits=8, adaptive=True, eta=1.5)
    spec = get_system_type("classified")
    with pytest.raises(pydantic.ValidationError, match="unknown system type"):
        spec.params(system="nope", classifier_cr=0.1)


def test_classified_capacity_bound_classifies_decoded_images(digits):
    (train, train_labels), (test, test_labels) = digits
    spec = get_system_type("classified")
    params = spec.params(system="capacity_bound", params={"codec": "hevc"}, classifier_cr=1 / 6,
                         classifier_train_images=128, classifier_steps=150, batch=64)
    system = spec.factory(params, SISO_AWGN, (32, 32), 0)
    data = tf.data.Dataset.from_tensor_slices(
        (train[:128].astype(np.float32) / 255, train_labels[:128])).batch(32)
    # the training SNR range is high: the decoded training images are near-perfect
    system.prepare(data, TrainSpec(steps=1, steps_per_epoch=1, snr_range_db=(15.0, 20.0)),
                   "/tmp/unused", False)
    images = test[:48].astype(np.float32) / 255
    good = system.transmit(images, 20.0, target_cr=1 / 6, labels=test_labels[:48])
    assert good.extras["accuracy"].mean() > 0.5  # chance: 0.1
    bad = system.transmit(images, -10.0, target_cr=1 / 6, labels=test_labels[:48])
    # below the capacity threshold nothing fits: the mean-colour fallback for every image,
    # so the classifier sees one input and gives one answer
    assert np.all(bad.extras["failed"] == 1.0)
    assert len(set(bad.extras["accuracy"].tolist())) <= 2
    counts = np.bincount(test_labels[:48], minlength=10)
    assert bad.extras["accuracy"].sum() in counts


def test_prepare_reports_the_steps_of_both_stages(digits, tmp_path):
    """A-MIJSCC trains its base model, then the adaptive fine-tune: the runner records
    the steps of both, each rounded up to whole epochs of 2 (5 steps, fine-tune
    fraction 0.5: base 3 -> 4, fine-tune 2 -> 2, so 6 planned, as announced beforehand),
    and a wall-clock cut would show as fewer done than planned."""
    (train, train_labels), _ = digits
    keras.utils.set_random_seed(0)
    params = MIJSCCParams(cr=1 / 12, mi_weight=0.01, bits=8, adaptive=True, classifier_steps=2,
                          **SMALL)
    system = build_mijscc(params, SISO_AWGN, (32, 32), 0)
    data = tf.data.Dataset.from_tensor_slices(
        (train[:64].astype(np.float32) / 255, train_labels[:64])).batch(16).repeat()
    spec = TrainSpec(steps=5, steps_per_epoch=2, snr_range_db=(0.0, 20.0), seed=0,
                     jit_compile=False)
    assert system.planned_steps(spec) == 6 and not system.has_checkpoint(tmp_path)
    report = system.prepare(data, spec, tmp_path, resume=False)
    assert (report.steps_done, report.steps_planned) == (6, 6)
    assert system.has_checkpoint(tmp_path)
