"""``train.precision``: mixed-precision training keeps the physical layer in full precision.

The channel layer is spied on (its ``call`` wrapped, as in test_equal_terms.py), so the
dtypes and SNRs checked are those the transmission of a training step actually met.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from semsim.phy import RayleighMIMOChannel
from semsim.phy.channel import MultiUserUplinkChannel
from semsim.seeding import set_seed
from semsim.systems.base import CSISpec, LinkSpec, TrainSpec
from semsim.systems.keras_system import make_optimizer
from semsim.systems.precision import check_precision, dtype_policy
from semsim.systems.registry import get_system_type

SIZE = 16
BATCH = 8
STEPS = 4
#: Relative tolerance of a mixed-precision step's loss against float32's, per step
#: (4 steps of a tiny deepjscc, seed 0; measured: at most 1.0e-4 for mixed_float16,
#: 2.4e-4 for mixed_bfloat16). The 4 steps lower the loss by about 3.7e-3 relative, so
#: steps that do not train (e.g. all skipped by the loss scaling) would not pass.
LOSS_RTOL = 1e-3
MIXED = pytest.mark.parametrize("precision, compute", [("mixed_float16", "float16"),
                                                       ("mixed_bfloat16", "bfloat16")])


def _tiny(type_name: str, precision: str):
    """A tiny ``type_name`` system on a 2x2 link, built under ``precision``, compiled
    with the optimizer of a ``TrainSpec`` of that precision (no XLA)."""
    set_seed(0)
    spec = get_system_type(type_name)
    link = LinkSpec(num_rx_ant=2, users=1, antennas_per_user=2, csi=CSISpec(mode="perfect"))
    with dtype_policy(precision):
        system = spec.factory(spec.params(filters=(4, 4, 4, 4), eval_batch_size=4), link,
                              (SIZE, SIZE), 0)
    model = system.model
    model.compile(optimizer=make_optimizer(TrainSpec(precision=precision, learning_rate=1e-2)),
                  jit_compile=False)
    return model


def _inputs() -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(0)
    return {"image": tf.constant(rng.random((BATCH, SIZE, SIZE, 3), np.float32)),
            # SNRs that float16 cannot hold exactly (it rounds 13.37 to 13.3671875)
            "snr_db": tf.constant(rng.uniform(0, 20, BATCH).astype(np.float32) + 0.37)}


def _losses(type_name: str, precision: str) -> list[float]:
    model = _tiny(type_name, precision)
    losses = []
    for _ in range(STEPS):
        losses.append(float(model.train_step(_inputs())["loss"]))
    return losses


@pytest.fixture(scope="module")
def float32_losses():
    return _losses("deepjscc", "float32")


@MIXED
@pytest.mark.parametrize("type_name", ["deepjscc", "adjscc"])
def test_a_mixed_step_keeps_the_channel_in_full_precision(monkeypatch, type_name, precision,
                                                          compute):
    calls = []
    original = RayleighMIMOChannel.call

    def spying(self, x, snr_db, h=None, sent=None):
        y, h_out, no = original(self, x, snr_db, h=h, sent=sent)
        calls.append((x.dtype, snr_db.dtype, np.asarray(snr_db), no.dtype, y.dtype))
        return y, h_out, no

    monkeypatch.setattr(RayleighMIMOChannel, "call", spying)
    model = _tiny(type_name, precision)
    assert keras.config.dtype_policy().name == "float32"  # restored after the build
    inputs = _inputs()
    del calls[:]
    metrics = model.train_step(inputs)  # eager: the spy sees concrete values
    assert len(calls) == 1
    x_dtype, snr_dtype, snr, no_dtype, y_dtype = calls[0]
    assert (x_dtype, y_dtype) == (tf.complex64, tf.complex64)
    assert (snr_dtype, no_dtype) == (tf.float32, tf.float32)
    np.testing.assert_array_equal(snr, inputs["snr_db"].numpy())  # not rounded to float16
    # the learned blocks compute in the half type, their variables stay float32
    conv = model.encoder_layers[0]
    assert conv.compute_dtype == compute and conv.kernel.dtype == "float32"
    assert model.encode(inputs["image"], inputs["snr_db"]).dtype == compute
    assert model.dtype_policy.name == "float32"
    out = model(inputs)
    assert out["image_hat"].dtype == tf.float32 and out["cr"].dtype == tf.float32
    assert np.isfinite(float(metrics["loss"]))


@MIXED
def test_a_few_mixed_steps_track_float32(float32_losses, precision, compute):
    losses = _losses("deepjscc", precision)
    assert np.all(np.isfinite(losses))
    for trajectory in (losses, float32_losses):  # the steps do train
        assert trajectory[0] - trajectory[-1] > 2 * LOSS_RTOL * trajectory[0]
    np.testing.assert_allclose(losses, float32_losses, rtol=LOSS_RTOL)


def test_mixed_float16_scales_the_loss():
    model = _tiny("deepjscc", "mixed_float16")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    model.train_step(_inputs())
    assert int(model.optimizer.iterations) == 1  # the scaled step was applied
    assert not isinstance(_tiny("deepjscc", "mixed_bfloat16").optimizer,
                          keras.optimizers.LossScaleOptimizer)


def test_the_policy_is_restored_after_an_error():
    with pytest.raises(RuntimeError, match="boom"), dtype_policy("mixed_float16"):
        assert keras.config.dtype_policy().name == "mixed_float16"
        raise RuntimeError("boom")
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError, match="train.precision must be one of"):
        with dtype_policy("float8"):
            pass


def test_unsupported_learned_types_are_refused_in_one_line():
    mijscc = get_system_type("mijscc").factory
    with pytest.raises(ValueError, match=r"^train.precision: system type 'mijscc' does not "
                                         r"support mixed_bfloat16 yet"):
        check_precision("mijscc", "mixed_bfloat16", mijscc)
    check_precision("mijscc", "float32", mijscc)
    check_precision("separation", "mixed_float16", get_system_type("separation").factory)


#: Tiny sizes of the systems whose latent, entropy and policies stay float32 between
#: half-precision encoders and decoders: (params, image size, users of the link).
SWIN = dict(encoder_depths=(1, 1), encoder_heads=(2, 2), decoder_depths=(1, 1),
            decoder_heads=(2, 2))
LARGER = {
    "swinjscc": (dict(SWIN, channels=8, rates=(1, 2, 4, 8), encoder_dims=(8, 8),
                      decoder_dims=(8, 8), hidden=8, default_cr=0.1, eval_batch_size=4), 16, 1),
    # shifted windows (window 2 on a 4x4 grid) exercise the attention mask
    "reference": (dict(SWIN, num_maps=4, encoder_dims=(8, 12), decoder_dims=(12, 8),
                       window_size=2, channel_embed_dim=8, entropy_embed_dim=8,
                       hidden_units=16, compensation="vit-small"), 32, 1),
    "multiuser": (dict(num_maps=4, filters=(8, 8, 16), policy_units=16, num_heads=2,
                       entropy_levels=64, eval_batch_size=4), 16, 2),
}
#: Relative tolerance of the losses of 3 steps against float32 (seed 0; measured at
#: most: swinjscc 0.31 %, reference 0.13 % in bfloat16 and 0.004 % in float16, multi-user
#: 0.11 %); the 3 float32 steps lower the loss by more than 2 x this (measured: swinjscc
#: 2.7 %, reference 2.4 %, multi-user 1.2 %), so steps that do not train would not pass.
LARGER_RTOL = 5e-3


def _larger_losses(type_name, precision, spy=None):
    params, size, users = LARGER[type_name]
    set_seed(0)
    spec = get_system_type(type_name)
    link = LinkSpec(num_rx_ant=2, users=users, antennas_per_user=2 // users,
                    csi=CSISpec(mode="perfect"))
    with dtype_policy(precision):
        system = spec.factory(spec.params(**params), link, (size, size), 0)
    model = system.model
    model.compile(optimizer=make_optimizer(TrainSpec(precision=precision, learning_rate=1e-3)),
                  jit_compile=False)
    rng = np.random.default_rng(0)
    inputs = {"image": tf.constant(rng.random((BATCH, size, size, 3), np.float32)),
              "snr_db": tf.constant(rng.uniform(0, 20, BATCH).astype(np.float32) + 0.37)}
    if spy is not None:
        del spy[:]
    losses = [float(model.train_step(inputs)["loss"]) for _ in range(3)]
    out = model(inputs)
    assert out["image_hat"].dtype == tf.float32 and out["cr"].dtype == tf.float32
    return model, inputs, losses


@pytest.fixture
def channel_spy(monkeypatch):
    """(x dtype, SNR dtype, SNR values, noise variance dtype, y dtype) of every call of
    the channel layer (single-user and multi-user uplink)."""
    calls = []
    for cls in (RayleighMIMOChannel, MultiUserUplinkChannel):
        original = cls.call

        def spying(self, x, snr_db, h=None, sent=None, _original=original):
            y, h_out, no = _original(self, x, snr_db, h=h, sent=sent)
            if tf.executing_eagerly():  # not while Keras traces a build symbolically
                calls.append((x.dtype, snr_db.dtype, np.asarray(snr_db), no.dtype, y.dtype))
            return y, h_out, no

        monkeypatch.setattr(cls, "call", spying)
    return calls


@pytest.fixture(scope="module")
def larger_float32():
    return {name: _larger_losses(name, "float32")[2] for name in LARGER}


@pytest.mark.parametrize("type_name, precision", [
    ("swinjscc", "mixed_bfloat16"), ("reference", "mixed_bfloat16"),
    ("reference", "mixed_float16"), ("multiuser", "mixed_bfloat16")])
def test_swin_reference_and_multiuser_train_in_half_precision_with_a_float32_channel(
        channel_spy, larger_float32, type_name, precision):
    model, inputs, losses = _larger_losses(type_name, precision, channel_spy)
    # every transmission of the 3 training steps met complex64 symbols and the exact
    # float32 SNRs (float16 would round 13.37 dB)
    assert len(channel_spy) >= 3
    for x_dtype, snr_dtype, snr, no_dtype, y_dtype in channel_spy:
        assert (x_dtype, y_dtype) == (tf.complex64, tf.complex64)
        assert (snr_dtype, no_dtype) == (tf.float32, tf.float32)
        if snr.size == BATCH:
            np.testing.assert_array_equal(snr, inputs["snr_db"].numpy())
    half = "bfloat16" if precision == "mixed_bfloat16" else "float16"
    dense = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)]
    assert dense and all(layer.compute_dtype == half for layer in dense)
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    reference = larger_float32[type_name]
    assert reference[0] - reference[-1] > 2 * LARGER_RTOL * reference[0]  # the steps train
    np.testing.assert_allclose(losses, reference, rtol=LARGER_RTOL)


SCENARIO = """\
name: tiny_precision
description: tiny scenario of the precision tests
link: {nr: 2, nt: 2, csi: perfect}
data: {source: builtin, image_size: 16, test_images: 8}
systems:
  - {name: deepjscc, type: deepjscc, params: {filters: [4, 4, 4, 4]}}
train: {steps: 2, batch_size: 4}
"""


def _resolved(tmp_path, precision: str | None):
    from semsim.scenario.loader import load_scenario

    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    return load_scenario(path, None, {} if precision is None else {"train.precision": precision})


def test_the_runner_builds_under_the_policy_and_the_hash_keeps_float32_out(tmp_path):
    from pathlib import Path

    from semsim.data.pipeline import load_data
    from semsim.scenario.runner import RunOptions, _Run
    from semsim.weights.manifest import config_hash, hashed_config

    hashes = {}
    for precision in (None, "float32", "mixed_bfloat16"):
        resolved = _resolved(tmp_path, precision)
        run = _Run(resolved, RunOptions(out_dir=Path("unused"), progress=False))
        system = run._build(resolved.scenario.system("deepjscc"), load_data(resolved.scenario.data))
        assert keras.config.dtype_policy().name == "float32"
        compute = "bfloat16" if precision == "mixed_bfloat16" else "float32"
        assert system.model.encoder_layers[0].compute_dtype == compute
        config = hashed_config(resolved, "deepjscc", system)
        hashes[precision] = config_hash(config)
        if precision == "mixed_bfloat16":
            assert config["train"]["precision"] == "mixed_bfloat16"
    # float32 (the default) leaves the hash of existing checkpoints unchanged; a mixed
    # policy trains other weights, so it is part of the hash
    assert hashes[None] == hashes["float32"] != hashes["mixed_bfloat16"]


def test_the_command_line_flag_sets_train_precision():
    from semsim.cli.main import build_parser
    from semsim.cli.run import overrides_of

    args = build_parser().parse_args(["run", "s.yaml", "--precision", "mixed_float16"])
    assert overrides_of(args) == {"train.precision": "mixed_float16"}
    assert overrides_of(build_parser().parse_args(["run", "s.yaml"])) == {}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "s.yaml", "--precision", "float16"])
