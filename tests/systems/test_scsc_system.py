"""The ``scsc`` system end to end with tiny networks and a few steps."""

import numpy as np
import pytest
import tensorflow as tf

from semsim.phy.precoding import SVDPrecoder
from semsim.phy.spec import CSISpec, LinkSpec
from semsim.scenario.channels import derive_seed
from semsim.seeding import set_seed
from semsim.systems.base import TrainSpec
from semsim.systems.registry import get_system_type
from semsim.systems.scsc.system import (
    PROXY_CHECK_SNRS_DB,
    VALIDATION_DRAWS,
    SCSCParams,
    SCSCSystem,
)

LINK = LinkSpec(csi=CSISpec(mode="perfect"), precoding="svd")
TINY = dict(filters=4, ppen_depth=1, admm_layers=2, proxy_steps=2, pcen_steps=2,
            proxy_check_batches=1)


def _data(n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, size=(n, 1, 1, 3))
    ramp = np.linspace(0, 0.2, size)[None, :, None, None]
    images = np.clip(base + ramp + 0.02 * rng.normal(size=(n, size, size, 3)), 0, 1)
    return tf.data.Dataset.from_tensor_slices(images.astype(np.float32)).batch(2).repeat()


def test_standard_chain_alone_is_the_chain(tmp_path):
    set_seed(0)
    system = SCSCSystem(LINK, qp=37, rate="3/4", ppen=False, pcen=False)
    # nothing to train: no training report, no steps planned, no checkpoint, not learned
    train = TrainSpec(steps=1, batch_size=2)
    assert system.prepare(_data(), train, tmp_path, resume=False) is None
    assert not system.trainable and system.planned_steps(train) == 0
    assert not system.has_checkpoint(tmp_path)
    images = next(iter(_data()))
    h = system.chain.channel.sample_channel(2)
    res = system.transmit(images.numpy(), 30.0, h=h.numpy())
    ref = system.chain.send(images.numpy(), 37, "3/4", 30.0, h)
    np.testing.assert_array_equal(res.images_hat, ref.images_hat)
    np.testing.assert_allclose(res.cr, 2 * ref.cbr)
    with pytest.raises(ValueError, match="target CR"):
        system.transmit(images.numpy(), 10.0, target_cr=0.1)


def test_full_system_trains_warns_about_an_untrained_proxy_and_resumes(tmp_path):
    set_seed(1)
    system = SCSCSystem(LINK, qp=34, **TINY)
    train = TrainSpec(steps=2, batch_size=2, snr_range_db=(2.0, 12.0), learning_rate=1e-3)
    assert system.trainable and not system.has_checkpoint(tmp_path)
    with pytest.warns(RuntimeWarning, match="does not track"):
        report = system.prepare(_data(), train, tmp_path, resume=False)
    # PCEN 2 + proxy 2 + PPEN train.steps = 2, all done, as planned beforehand
    assert (report.steps_done, report.steps_planned) == (6, 6)
    assert system.planned_steps(train) == 6 and system.has_checkpoint(tmp_path)
    assert sorted(system.proxy_report) == sorted(PROXY_CHECK_SNRS_DB)
    images = next(iter(_data())).numpy()
    # PPEN starts as the identity; the straight-through gradients moved it.
    assert np.abs(system.ppen(images, tf.constant(34.0)).numpy() - images).max() > 1e-4
    res = system.transmit(images, 10.0)
    assert res.images_hat.shape == images.shape and res.cr.shape == (2,)
    assert set(res.extras) >= {"cbr", "failed", "source_bits", "proxy_psnr_db"}
    # A second system resumes from the saved weights instead of training.
    set_seed(2)
    again = SCSCSystem(LINK, qp=34, **TINY)
    assert again.prepare(_data(), train, tmp_path, resume=True) == report
    for a, b in zip(system.ppen.get_weights(), again.ppen.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def _qpsk_streams(batch, streams, length, seed):
    bits = np.random.default_rng(seed).integers(0, 2, size=(batch, streams, length, 2))
    return tf.constant(((2 * bits[..., 0] - 1) + 1j * (2 * bits[..., 1] - 1)) / np.sqrt(2),
                       tf.complex64)


def test_untrained_pcen_is_the_svd_precoder_and_its_loss_is_one_noise_unit():
    """An untrained PCEN sends what the plain SVD precoder sends (mixing weight 0, CEN's
    last layer 0), so its loss, the symbol error in units of each stream's ``no_eff``, is
    the combiner's white noise over ``no_eff``: 1 in expectation. 64 x 2 x 256 symbols
    (at most 32,768 terms, each an exponential of mean 1): the relative standard error is
    under 1 %, tolerance 4 %."""
    set_seed(6)
    system = SCSCSystem(LINK, ppen=False, pcen=True, admm_layers=4)
    system._build(np.zeros((1, 32, 32, 3), np.float32))
    streams = _qpsk_streams(64, 2, 256, seed=1)
    h = system.chain.channel.sample_channel(64)
    for snr_db in (2.0, 10.0):
        precoder = SVDPrecoder(h, system.chain.noise_variance(np.full(64, snr_db)))
        np.testing.assert_allclose(system.pcen.precode(streams, precoder).numpy(),
                                   precoder.precode(streams).numpy(), atol=1e-5)
        loss = float(system.pcen(streams, h, tf.fill([64], snr_db), channel=system.chain.channel))
        assert abs(loss - 1.0) < 0.04, (snr_db, loss)


def test_pcen_training_lowers_the_symbol_error():
    set_seed(3)
    system = SCSCSystem(LINK, ppen=False, pcen=True, admm_layers=4, pcen_steps=200)
    streams = _qpsk_streams(64, 2, 32, seed=5)
    h = system.chain.channel.sample_channel(64)
    snr = tf.fill([64], 4.0)

    def loss():
        set_seed(9)  # the same noise for both evaluations
        return float(system.pcen(streams, h, snr, channel=system.chain.channel))

    system._build(np.zeros((1, 32, 32, 3), np.float32))
    start = loss()
    system._train_pcen(TrainSpec(batch_size=16, learning_rate=1e-2, snr_range_db=(2.0, 12.0)))
    assert float(system.pcen.mix.numpy()) != 0.0
    assert loss() < 0.9 * start


def test_registered_with_params():
    stype = get_system_type("scsc")
    assert stype.params is SCSCParams
    with pytest.raises(ValueError):
        SCSCParams(qp=30)


def test_max_seconds_stops_every_stage_and_says_so(tmp_path, caplog):
    set_seed(4)
    system = SCSCSystem(LINK, qp=41, **TINY)
    train = TrainSpec(steps=50, batch_size=2, max_seconds=1e-9)
    with pytest.warns(RuntimeWarning, match="does not track"):
        report = system.prepare(_data(), train, tmp_path, resume=False)
    # never cut silently: 0 of 2 + 2 + 50 steps, a warning, and resume does not load it
    assert (report.steps_done, report.steps_planned) == (0, 54)
    assert "UNDER-TRAINED" in caplog.text
    images = next(iter(_data())).numpy()
    np.testing.assert_array_equal(system.ppen(images, tf.constant(41.0)).numpy(), images)
    assert all(np.all(w == 0) for w in (system.pcen.pen.theta.numpy(), system.pcen.pen.gamma.numpy()))
    # resuming the cut run trains again instead of loading the under-trained weights
    again = SCSCSystem(LINK, qp=41, **TINY)
    with pytest.warns(RuntimeWarning, match="does not track"):
        resumed = again.prepare(_data(), TrainSpec(steps=1, batch_size=2), tmp_path, resume=True)
    assert (resumed.steps_done, resumed.steps_planned) == (5, 5)


@pytest.mark.parametrize("forward", ["chain", "proxy"])
def test_ppen_trains_through_the_chain_or_through_the_proxy_alone(tmp_path, monkeypatch, forward):
    # SCSC runs the real chain in every PPEN step (straight-through); the ProxyNet baseline
    # (ppen_forward: proxy) never does in that stage. Both are evaluated on the real chain.
    set_seed(5)
    system = SCSCSystem(LINK, qp=34, pcen=False, ppen_forward=forward, ppen_steps=3, **TINY)
    calls = []
    send = system.chain.send

    def spy(*args, **kwargs):
        calls.append(stage[0])
        return send(*args, **kwargs)

    stage = ["proxy"]
    monkeypatch.setattr(system.chain, "send", spy)
    train_ppen = system._train_ppen

    def ppen_stage(*args, **kwargs):
        stage[0] = "ppen"
        return train_ppen(*args, **kwargs)

    monkeypatch.setattr(system, "_train_ppen", ppen_stage)
    train = TrainSpec(steps=3, batch_size=2, snr_range_db=(2.0, 12.0), learning_rate=1e-2)
    with pytest.warns(RuntimeWarning, match="does not track"):
        report = system.prepare(_data(), train, tmp_path, resume=False)
    assert (report.steps_done, report.steps_planned) == (5, 5)  # proxy 2 + PPEN 3
    assert calls.count("ppen") == (3 if forward == "chain" else 0)
    assert calls.count("proxy") > 0  # the proxy learns the chain either way
    images = next(iter(_data())).numpy()
    # the proxy's gradients moved PPEN away from its identity start
    assert np.abs(system.ppen(images, tf.constant(34.0)).numpy() - images).max() > 1e-4
    stage[0] = "eval"
    system.transmit(images, 10.0)
    assert calls.count("eval") == 1


def test_only_delivered_images_send_ppen_a_gradient(tmp_path, monkeypatch):
    """The chain's output for a lost image is the fallback, whatever PPEN sent: with the
    rate and pre-processing terms off, a batch the chain loses entirely gives PPEN a zero
    gradient, and one it delivers a non-zero one. Through the full proxy (``p decoded +
    (1 - p) fallback``) the lost batch would move PPEN: its gate gives p > 0."""
    import semsim.systems.scsc.system as module

    set_seed(3)
    system = SCSCSystem(LINK, qp=34, pcen=False, rate_weight=0.0, ppen_steps=1, **TINY)
    train = TrainSpec(steps=1, batch_size=2, snr_range_db=(2.0, 12.0), learning_rate=1e-2)
    with pytest.warns(RuntimeWarning, match="does not track"):
        system.prepare(_data(), train, tmp_path, resume=False)
    monkeypatch.setattr(module, "LAMBDA_PRE", 0.0)
    images = tf.constant(next(iter(_data(seed=4))).numpy())
    h = system.chain.channel.sample_channel(2)
    snr = np.full(2, 30.0, np.float32)
    send = system.chain.send

    def gradient_norm(lost: bool) -> float:
        def forced(*args, **kwargs):
            out = send(*args, **kwargs)
            if lost:
                out.failed = np.ones_like(out.failed)
                out.images_hat = np.broadcast_to(system.chain.fallback_image(
                    out.images_hat.shape[1:3]), out.images_hat.shape).copy()
            return out

        monkeypatch.setattr(system.chain, "send", forced)
        with tf.GradientTape() as tape:
            loss = system._ppen_loss(images, 34, "1/2", snr, h)
        grads = tape.gradient(loss, system.ppen.trainable_weights)
        return float(sum(tf.reduce_sum(g ** 2) for g in grads if g is not None))

    assert gradient_norm(lost=True) == 0.0
    assert gradient_norm(lost=False) > 1e-12
    with tf.GradientTape() as tape:
        pre = system.ppen(images, tf.constant(34.0))
        out = system.proxy(pre, tf.constant(34.0), tf.constant(0.5), tf.constant(snr), h,
                           fallback=system._fallback(images))
        lost_through_proxy = tf.reduce_mean((out - images) ** 2)
    grads = tape.gradient(lost_through_proxy, system.ppen.trainable_weights)
    assert float(sum(tf.reduce_sum(g ** 2) for g in grads if g is not None)) > 1e-12


def test_rate_weight_trades_detail_for_hevc_bits(tmp_path):
    """PPEN trained (through the proxy, for speed) with a large rate weight smooths its
    output, so HEVC spends fewer bits on it than on the output of a PPEN trained with
    rate weight 0, from the same start and data; a negative weight is refused."""
    with pytest.raises(ValueError):
        SCSCParams(rate_weight=-0.1)
    train = TrainSpec(steps=40, batch_size=2, snr_range_db=(2.0, 12.0), learning_rate=1e-2)
    images = next(iter(_data(size=32, seed=3))).numpy()
    out = {}
    for weight in (0.0, 1.0):
        set_seed(7)
        system = SCSCSystem(LINK, qp=28, pcen=False, ppen_forward="proxy", rate_weight=weight,
                            **TINY)
        with pytest.warns(RuntimeWarning, match="does not track"):
            system.prepare(_data(), train, tmp_path / str(weight), resume=False)
        pre = system.ppen(images, tf.constant(28.0)).numpy()
        detail = np.abs(np.diff(pre, axis=1)).mean() / np.abs(np.diff(images, axis=1)).mean()
        bits = sum(len(b) for b in system.chain.encode_payloads(pre, 28))
        out[weight] = detail, bits
    assert out[1.0][0] < 0.8 * out[0.0][0], out
    assert out[1.0][1] < out[0.0][1], out


def test_proxy_forward_needs_ppen():
    with pytest.raises(ValueError, match="needs ppen"):
        SCSCParams(ppen=False, ppen_forward="proxy")


def _digits(n_train, n_test):
    from semsim.data.labelled import load_digits_rgb

    (train, train_labels), (test, test_labels) = load_digits_rgb(32)
    data = tf.data.Dataset.from_tensor_slices(
        (train[:n_train].astype(np.float32) / 255, train_labels[:n_train])).batch(32).repeat()
    return data, test[:n_test].astype(np.float32) / 255, test_labels[:n_test]


def test_classified_chain_classifies_its_own_reconstructions(tmp_path):
    """The downstream task of scenarios/scsc_classification.yaml: a classifier trained on
    the chain's decoded digits, at the chain's own rate (no classifier_cr), classifies the
    test digits it reconstructs; the ``accuracy`` extra is that classifier's verdict on
    the reconstructions ``transmit`` returns."""
    set_seed(0)
    data, images, labels = _digits(256, 48)
    spec = get_system_type("classified")
    params = spec.params(system="scsc", params={"qp": 28, "rate": "1/2", "ppen": False,
                                                "pcen": False},
                         classifier_train_images=256, classifier_steps=200, batch=32)
    system = spec.factory(params, LINK, (32, 32), 0)
    train = TrainSpec(steps=1, batch_size=32, snr_range_db=(20.0, 25.0))
    assert system.prepare(data, train, tmp_path, resume=False) is None  # the chain: no steps
    result = system.transmit(images, 25.0, labels=labels)
    logits = system.classifier.predict_on_batch(result.images_hat.reshape(len(images), -1))
    np.testing.assert_array_equal(result.extras["accuracy"],
                                  (np.argmax(logits, axis=-1) == labels).astype(np.float32))
    assert result.extras["accuracy"].mean() > 0.5  # chance: 0.1
    chain = SCSCSystem(LINK, qp=28, rate="1/2", ppen=False, pcen=False)
    h = chain.chain.channel.sample_channel(len(images))
    np.testing.assert_allclose(system.transmit(images, 25.0, h=h.numpy()).cr,
                               chain.transmit(images, 25.0, h=h.numpy()).cr)


def test_classified_scsc_reports_the_steps_of_its_stages(tmp_path):
    """Wrapped in ``classified``, a learned SCSC still reports its steps (PCEN 2 + proxy
    2 + PPEN 2), so a wall-clock cut would mark it under-trained."""
    set_seed(1)
    data, _, _ = _digits(64, 8)
    spec = get_system_type("classified")
    params = spec.params(system="scsc", params={"qp": 34, **TINY},
                         classifier_train_images=32, classifier_steps=5, batch=32)
    system = spec.factory(params, LINK, (32, 32), 0)
    train = TrainSpec(steps=2, batch_size=32, snr_range_db=(2.0, 12.0), learning_rate=1e-3)
    with pytest.warns(RuntimeWarning, match="does not track"):
        assert system.planned_steps(train) == 6 and not system.has_checkpoint(tmp_path)
        report = system.prepare(data, train, tmp_path, resume=False)
    assert (report.steps_done, report.steps_planned) == (6, 6)
    assert system.has_checkpoint(tmp_path)


def test_proxy_learns_when_the_chain_loses_an_image(monkeypatch):
    """The proxy's delivery gate is trained on the chain's ``failed`` flags. A stand-in
    chain loses an image when the channel is in outage: the equal-power MIMO capacity
    ``log2 det(I + snr/Nt H H^H)`` (numpy; not the water-filled capacity the proxy
    computes) below ``8 R`` bits per channel use (4 at code rate 1/2, 6 at 3/4), and
    otherwise delivers the input image. After the proxy stage (200 steps) the gate
    predicts delivery on 64 fresh draws of (H, SNR in [2, 12] dB) with accuracy >= 0.85
    (measured 0.97; the stand-in loses about half), and the proxy's output follows the
    chain (mean absolute error < 0.06, measured 0.036; the untrained proxy is off by
    0.32)."""
    from semsim.systems.scsc.chain import ChainOutput

    set_seed(3)
    system = SCSCSystem(LINK, qp=34, **{**TINY, "pcen": False, "proxy_steps": 200})
    data = _data(n=8, size=16, seed=4).unbatch().batch(8)
    system._build(next(iter(data)).numpy()[:1])
    fallback = np.full((16, 16, 3), 0.1, np.float32)
    system.chain.fallback = fallback

    def outage(snr_db, h, rate="1/2"):
        h = np.asarray(h)
        snr = 10 ** (np.broadcast_to(np.asarray(snr_db, np.float64), (len(h),)) / 10)
        gram = np.eye(2) + (snr / 2)[:, None, None] * h @ np.conj(np.swapaxes(h, 1, 2))
        return np.log2(np.abs(np.linalg.det(gram))) < 8.0 * {"1/2": 0.5, "3/4": 0.75}[rate]

    def send(pre, qp, rate, snr_db, h=None):
        lost = outage(snr_db, h, rate)
        out = np.where(lost[:, None, None, None], fallback, np.asarray(pre, np.float32))
        n = len(pre)
        return ChainOutput(out.astype(np.float32), np.ones(n, np.float32),
                           lost.astype(np.float32), np.ones(n, np.float32))

    monkeypatch.setattr(system, "_send", send)
    rng = np.random.default_rng(7)
    images = np.concatenate([next(iter(data)).numpy()] * 8)
    snr = rng.uniform(2.0, 12.0, 64).astype(np.float32)
    h = system.chain.channel.sample_channel(64)
    lost = outage(snr, h)
    assert 0.3 < lost.mean() < 0.7

    def errors():
        _, logit = system.proxy.parts(images, tf.constant(34.0), tf.constant(0.5),
                                      tf.constant(snr), h)
        out = system.proxy(images, tf.constant(34.0), tf.constant(0.5), tf.constant(snr), h,
                           fallback=fallback).numpy()
        expected = send(images, 34, "1/2", snr, h).images_hat
        return np.mean((logit.numpy() > 0) == ~lost), np.abs(out - expected).mean()

    _, error0 = errors()
    assert error0 > 0.1
    train = TrainSpec(steps=1, batch_size=8, snr_range_db=(2.0, 12.0), learning_rate=3e-3)
    system._rng = np.random.default_rng(0)
    assert system._train_proxy(iter(data.repeat()), train) == 200
    accuracy, error = errors()
    assert accuracy >= 0.85 and error < 0.06, (accuracy, error)


def test_ppen_stage_logs_validation_psnr_through_the_chain_and_leaves_training_alone(tmp_path):
    """With validation images, the PPEN stage writes ``ppen/history.csv`` every
    ``steps_per_epoch`` steps and at its last step. The last row is the trained system's
    mean 8-bit PSNR on those images through the real chain at the middle of the training
    SNR range, averaged over ``VALIDATION_DRAWS`` channel and noise draws of Sionna's
    generator seeded with ``train.seed`` and seeds derived from it (recomputed here from
    the reconstructions, to 1e-5 dB: the file keeps 6 decimals); the trained PPEN is the
    same to the bit with and without the logging."""
    import csv

    import sionna.phy

    from semsim.systems.history import validation_trend

    validation = next(iter(_data(n=4, seed=9).unbatch().batch(4))).numpy()
    weights = {}
    for logged in (False, True):
        set_seed(2)
        system = SCSCSystem(LINK, qp=34, pcen=False, ppen_steps=5, **TINY)
        train = TrainSpec(steps=5, steps_per_epoch=2, batch_size=2, snr_range_db=(2.0, 12.0),
                          learning_rate=1e-2, seed=4,
                          validation_images=validation if logged else None)
        with pytest.warns(RuntimeWarning, match="does not track"):
            system.prepare(_data(), train, tmp_path / str(logged), resume=False)
        weights[logged] = [w.numpy() for w in system.ppen.weights]
    for plain, logged in zip(weights[False], weights[True], strict=True):
        np.testing.assert_array_equal(plain, logged)
    assert not (tmp_path / "False" / "ppen").exists()
    with (tmp_path / "True" / "ppen" / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == [2, 4, 5]
    psnrs = []
    for draw in range(VALIDATION_DRAWS):
        sionna.phy.config.tf_rng.reset_from_seed(derive_seed(4, draw) if draw else 4)
        result = system.transmit(validation, 7.0)
        x = np.round(validation * 255.0)
        y = np.round(np.clip(result.images_hat, 0.0, 1.0) * 255.0)
        psnrs.append(10.0 * np.log10(255.0**2 / np.mean((x - y) ** 2, axis=(1, 2, 3))))
    assert float(rows[-1]["val_psnr_db"]) == pytest.approx(np.mean(psnrs), abs=1e-5)
    trend = validation_trend(tmp_path / "True")
    assert (trend["stage"], trend["steps"]) == ("ppen", [2, 5])
