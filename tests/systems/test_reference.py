"""The reference system: shapes, masks and CR accounting, power normalization, gradients,
serialization, loss, registry and (slow) short training runs."""

import keras
import numpy as np
import pydantic
import pytest
import tensorflow as tf

from semsim.phy import AnalogLink, CSISpec, LinkSpec
from semsim.seeding import set_seed
from semsim.semantic.losses import linear_snr_weight, rate_distortion_loss
from semsim.semantic.swin import SwinDecoder
from semsim.systems.base import side_info_bits
from semsim.systems.keras_system import KerasSystem
from semsim.systems.reference import ReferenceModel, ReferenceParams
from semsim.systems.registry import get_system_type

TINY = dict(
    num_maps=4,
    encoder_dims=(8, 12),
    encoder_depths=(1, 2),
    encoder_heads=(2, 2),
    decoder_dims=(12, 8),
    decoder_depths=(2, 1),
    decoder_heads=(2, 2),
    window_size=2,
    channel_embed_dim=8,
    entropy_embed_dim=8,
    hidden_units=16,
)
LINK = LinkSpec(csi=CSISpec(mode="perfect"))


def _model(size=32, **overrides):
    return ReferenceModel(ReferenceParams(**{**TINY, **overrides}), LINK, (size, size), seed=0)


def _inputs(batch=4, size=32, snr=10.0):
    rng = np.random.default_rng(0)
    return {
        "image": tf.constant(rng.random((batch, size, size, 3), np.float32)),
        "snr_db": tf.fill([batch], snr),
    }


@pytest.fixture
def spy(monkeypatch):
    """Captures the channel input of AnalogLink.transmit and its power-normalized version."""
    captured = {}
    transmit = AnalogLink.transmit

    def spying(self, x, state, snr_db, mask=None, normalize=True):
        captured.update(x=x.numpy(), mask=mask.numpy(), x_norm=self.power(x, mask).numpy())
        return transmit(self, x, state, snr_db, mask, normalize)

    monkeypatch.setattr(AnalogLink, "transmit", spying)
    return captured


@pytest.fixture(scope="module")
def sampled():
    """One tiny model, one training-mode forward pass (Gumbel sampling at tau = 5: varied
    counts) on 16 images, with the channel input of AnalogLink.transmit captured before and
    after power normalization."""
    captured = {}
    transmit = AnalogLink.transmit

    def spying(self, x, state, snr_db, mask=None, normalize=True):
        captured.update(x=x.numpy(), mask=mask.numpy(), x_norm=self.power(x, mask).numpy())
        return transmit(self, x, state, snr_db, mask, normalize)

    set_seed(0)
    model = _model()
    AnalogLink.transmit = spying
    try:
        out = {k: v.numpy() for k, v in model(_inputs(16), training=True).items()}
    finally:
        AnalogLink.transmit = transmit
    return model, out, captured


@pytest.mark.parametrize("size", [32, 64])
def test_output_shapes_and_ranges(size):
    model = _model(size)
    out = model(_inputs(2, size))
    assert out["image_hat"].shape == (2, size, size, 3)
    for key in ("cr", "kept_maps", "kept_symbols"):
        assert out[key].shape == (2,) and out[key].dtype == tf.float32
    n = (size // 4) ** 2
    assert model.num_symbols == n
    cr_max = 4 * n / (3 * size * size)  # C / 48
    assert np.all((out["cr"].numpy() >= 0) & (out["cr"].numpy() <= cr_max + 1e-7))
    image = out["image_hat"].numpy()
    assert np.all((image >= 0) & (image <= 1))


def test_masks_are_prefixes_and_cr_counts_sent_reals(sampled):
    _, out, spy = sampled
    k1, k2 = out["kept_maps"], out["kept_symbols"]
    assert len(set(zip(k1, k2, strict=True))) > 1
    # Kept reals are compacted (semsim.phy.layout): the sent complex entries are the first
    # ceil(k1 k2 / 2) in channel-use-major order, nothing sent after them.
    for b in range(16):
        order = spy["mask"][b].T.reshape(-1)
        count = int(np.ceil(k1[b] * k2[b] / 2))
        np.testing.assert_array_equal(order, np.arange(order.size) < count)
    sent_reals = 2 * np.sum(spy["mask"], axis=(1, 2))
    np.testing.assert_array_equal(sent_reals, 2 * np.ceil(k1 * k2 / 2))
    np.testing.assert_allclose(out["cr"], sent_reals / (3 * 32 * 32), rtol=1e-6)


def test_pruned_symbols_zero_and_excluded_from_power(sampled):
    _, out, spy = sampled
    k1, k2 = out["kept_maps"], out["kept_symbols"]
    x, mask, x_norm = spy["x"], spy["mask"], spy["x_norm"]
    assert np.all(x_norm[mask == 0] == 0)
    np.testing.assert_array_equal(np.sum(mask, axis=(1, 2)), np.ceil(k1 * k2 / 2))
    # Independent normalization over the sent complex entries only: mean |x|^2 = 1 there.
    energy = np.sum(np.abs(x) ** 2, axis=(1, 2))
    count = np.sum(mask, axis=(1, 2))
    scale = np.sqrt(np.divide(count, energy, out=np.zeros_like(energy), where=energy > 0))
    np.testing.assert_allclose(x_norm, x * scale[:, None, None], rtol=1e-5, atol=1e-6)
    sent = count > 0
    np.testing.assert_allclose(np.sum(np.abs(x_norm) ** 2, axis=(1, 2))[sent], count[sent], rtol=1e-5)


def test_gradients_reach_policies_and_encoder_through_channel(sampled):
    model = sampled[0]
    inputs = _inputs(8)
    with tf.GradientTape() as tape:
        out = model.forward_with_latents(inputs, training=True)
        # MSE only (lambda = mu = 0): its only path to the transmitter is the channel.
        loss = tf.reduce_mean(tf.square(inputs["image"] - out["image_hat"]))
    targets = {
        "map policy": model.map_policy.logits.kernel,
        "symbol policy": model.symbol_policy.logits.kernel,
        "encoder": model.encoder.head.kernel,
        "channel-state encoder": model.channel_encoder.out.kernel,
    }
    grads = tape.gradient(loss, list(targets.values()))
    for name, grad in zip(targets, grads, strict=True):
        assert grad is not None, name
        g = tf.convert_to_tensor(grad).numpy()
        assert np.all(np.isfinite(g)) and np.abs(g).max() > 0, name


def _eval_outputs(model, inputs, h):
    set_seed(5)
    return {k: v.numpy() for k, v in model({**inputs, "h": h}, training=False).items()}


def test_save_load_round_trip_is_bit_exact(tmp_path):
    model = _model()
    inputs = _inputs(3)
    model(inputs)  # build first: building draws random numbers of its own
    h = tf.complex(tf.random.normal([3, 2, 2]), tf.random.normal([3, 2, 2]))
    reference = _eval_outputs(model, inputs, h)

    model.save(tmp_path / "reference.keras")
    loaded = keras.models.load_model(tmp_path / "reference.keras")
    assert isinstance(loaded, ReferenceModel) and loaded.params == model.params
    for key, value in _eval_outputs(loaded, inputs, h).items():
        np.testing.assert_array_equal(value, reference[key], err_msg=key)

    model.save_weights(tmp_path / "reference.weights.h5")
    fresh = ReferenceModel.from_config(model.get_config())
    fresh(inputs)
    fresh.load_weights(tmp_path / "reference.weights.h5")
    for key, value in _eval_outputs(fresh, inputs, h).items():
        np.testing.assert_array_equal(value, reference[key], err_msg=key)


def test_loss_terms_match_hand_computation():
    rng = np.random.default_rng(1)
    x, x_hat = rng.random((2, 4, 4, 3)), rng.random((2, 4, 4, 3))
    z0, zr = rng.normal(size=(2, 2, 2, 3)), rng.normal(size=(2, 2, 2, 3))
    cr, snr = np.array([0.1, 0.3]), np.array([5.0, 30.0])
    terms = rate_distortion_loss(
        *(tf.constant(a, tf.float32) for a in (x, x_hat, cr, snr, z0, zr)),
        lam=0.5,
        mu=2.0,
        beta=4.0,
        snr_range_db=(0.0, 20.0),
    )
    w = np.array([1 + 4 * 0.25, 1 + 4 * 1.0])  # g = 5/20 and 30 dB clipped to g = 1
    mse, rate, feat = np.mean((x - x_hat) ** 2), np.mean(w * cr), np.mean((z0 - zr) ** 2)
    np.testing.assert_allclose(terms["mse"], mse, rtol=1e-5)
    np.testing.assert_allclose(terms["rate"], rate, rtol=1e-5)
    np.testing.assert_allclose(terms["feature"], feat, rtol=1e-5)
    np.testing.assert_allclose(terms["loss"], mse + 0.5 * rate + 2.0 * feat, rtol=1e-5)
    np.testing.assert_allclose(linear_snr_weight(tf.constant([0.0, 10.0]), 0, 20, 2.0), [1, 2])
    with pytest.raises(ValueError, match="snr_weight"):
        rate_distortion_loss(
            *(tf.constant(a, tf.float32) for a in (x, x_hat, cr, snr, z0, zr)),
            lam=0,
            mu=0,
            beta=0,
            snr_range_db=(0, 20),
            snr_weight="cubic",
        )


def test_side_info_bits_is_joint_entropy():
    # pairs (2, 5) x2, (4, 8) x1, (4, 5) x1 -> H = 1.5 bits
    extras = {"kept_maps": np.array([2, 2, 4, 4]), "kept_symbols": np.array([5, 5, 8, 5])}
    assert side_info_bits(extras, ("kept_maps", "kept_symbols")) == pytest.approx(1.5)
    # Fixed-length values (not decisions) add their length; negative lengths are refused.
    assert side_info_bits(extras, ("kept_maps",), fixed_bits=64) == pytest.approx(65.0)
    with pytest.raises(ValueError, match="fixed_bits"):
        side_info_bits(extras, (), fixed_bits=-1)


def test_registry_factory_and_validation():
    system_type = get_system_type("reference")
    params = system_type.params(**TINY)
    system = system_type.factory(params, LINK, (32, 32), 0)
    assert isinstance(system, KerasSystem) and system.type_name == "reference"
    images = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    h = (np.ones((3, 2, 2)) + 0j).astype(np.complex64)
    result = system.transmit(images, 10.0, h=h)
    assert result.images_hat.shape == images.shape
    assert set(result.extras) == {"kept_maps", "kept_symbols"}
    np.testing.assert_allclose(
        result.cr, 2 * np.ceil(result.extras["kept_maps"] * result.extras["kept_symbols"] / 2) / 3072,
        rtol=1e-6
    )
    with pytest.raises(pydantic.ValidationError):
        ReferenceParams(unknown=1)
    with pytest.raises(ValueError, match="fading"):
        ReferenceModel(params, LinkSpec(fading="fast"), (32, 32))
    with pytest.raises(ValueError, match="multiples of 4"):
        ReferenceModel(params, LINK, (30, 30))
    with pytest.raises(ValueError, match="target CR"):
        system.transmit(images, 10.0, target_cr=0.1)


@pytest.fixture
def quick_graphs():
    """Skip Grappler's graph optimizations while tracing the training step: they cost
    ~25 s on this model at 2 cores and do not change results beyond float round-off."""
    options = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": options.get("disable_meta_optimizer", False)}
    )


def _smooth_images(batch, size=32):
    """Smooth colour patterns a tiny model can learn quickly (unlike white noise)."""
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    images = [
        np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (fx * xx + fy * yy) + ph) for ph in (0, 1, 2)], -1)
        for fx, fy in [(1, 0.5), (0.5, 1.5), (1.5, 1), (0.5, 0.5)][:batch]
    ]
    return np.stack(images).astype(np.float32)


def _fit(model, inputs, steps, callbacks=()):
    model.compile(optimizer=keras.optimizers.Adam(5e-3), jit_compile=False)
    data = tf.data.Dataset.from_tensors(inputs).repeat()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=list(callbacks))


@pytest.mark.slow
def test_two_image_overfit_loss_falls(quick_graphs):
    model = _model(lam=0.0, temperature_initial=1.0, temperature_final=1.0)
    inputs = {"image": tf.constant(_smooth_images(2)), "snr_db": tf.fill([2], 20.0)}
    model(inputs)
    running = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            running.append(float(logs["loss"]))

    steps = 60
    _fit(model, inputs, steps, [Record()])
    # Keras logs the running mean over the epoch; recover the per-step losses from it.
    totals = np.array(running) * np.arange(1, steps + 1)
    per_step = np.diff(np.concatenate([[0.0], totals]))
    assert per_step[-10:].mean() < 0.5 * per_step[:5].mean(), per_step


@pytest.mark.slow
def test_larger_lambda_gives_lower_cr(quick_graphs):
    inputs = {"image": tf.constant(_smooth_images(4)), "snr_db": tf.fill([4], 10.0)}
    crs = {}
    for lam in (0.0, 2.0):
        set_seed(0)
        model = _model(lam=lam, temperature_initial=1.0, temperature_final=1.0)
        model(inputs)
        _fit(model, inputs, 40)
        crs[lam] = float(np.mean(model(inputs, training=False)["cr"]))
    assert crs[2.0] < crs[0.0], crs


def test_paper_backbone_sizes_and_constant_temperature_by_default():
    """The published sizes (decoder stage 1: 2 blocks x 8 heads at width 128, stage 2:
    4 blocks x 6 heads at 96; the encoder mirrored) and tau = 5 held constant."""
    p = ReferenceParams()
    assert (p.encoder_dims, p.encoder_depths, p.encoder_heads) == ((96, 128), (2, 4), (6, 8))
    assert (p.decoder_dims, p.decoder_depths, p.decoder_heads) == ((128, 96), (2, 4), (8, 6))
    assert p.temperature_initial == 5.0 and p.temperature_schedule == "constant"
    decoder = SwinDecoder(p.decoder_dims, p.decoder_depths, p.decoder_heads)
    assert [(s.dim, s.depth, s.num_heads) for s in decoder.stages] == [(128, 2, 8), (96, 4, 6)]
    (callback,) = ReferenceModel(TINY, LINK, (16, 16)).training_callbacks(10)
    assert callback.schedule == "constant" and callback.initial == 5.0


def test_an_image_that_sends_nothing_gets_gradients_of_normal_size():
    """A policy that sends nothing gives the decoder all-zero maps; before the Swin input
    bias fix its gradients were about 1e20 times those of a policy that sends everything
    (paper sizes: 1e26, and Adam's moments overflowed). Tolerance: a factor 100."""
    inputs = _inputs(8)

    def largest_gradient(prior_slope):
        set_seed(0)
        model = _model(policy_prior_slope=prior_slope)
        with tf.GradientTape() as tape:
            out = model.forward_with_latents(inputs, training=True)
            loss = tf.reduce_mean(model.loss_terms(inputs, out)["loss"])
        grads = tape.gradient(loss, model.trainable_variables)
        largest = max(float(np.max(np.abs(tf.convert_to_tensor(g).numpy())))
                      for g in grads if g is not None)
        return largest, out["kept_maps"].numpy()

    nothing, kept_nothing = largest_gradient(-60.0)
    everything, kept_everything = largest_gradient(60.0)
    np.testing.assert_array_equal(kept_nothing, 0.0)
    np.testing.assert_array_equal(kept_everything, TINY["num_maps"])
    assert np.isfinite(nothing) and 0 < nothing < 100 * everything, (nothing, everything)
