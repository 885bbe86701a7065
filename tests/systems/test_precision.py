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
    reference = get_system_type("reference").factory
    with pytest.raises(ValueError, match=r"^train.precision: system type 'reference' does not "
                                         r"support mixed_bfloat16 yet"):
        check_precision("reference", "mixed_bfloat16", reference)
    check_precision("reference", "float32", reference)
    check_precision("separation", "mixed_float16", get_system_type("separation").factory)


SCENARIO = """\
name: tiny_precision
description: tiny scenario of the precision tests
link: {nr: 2, nt: 2, csi: perfect}
data: {source: builtin, image_size: 16, test_images: 8}
systems:
  - {name: deepjscc, type: deepjscc, params: {filters: [4, 4, 4, 4]}}
  - {name: reference, type: reference, params: {num_maps: 4}}
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
    from semsim.scenario.runner import RunError, RunOptions, _Run
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
            with pytest.raises(RunError, match=r"system 'reference': train.precision: system "
                                               r"type 'reference' does not support"):
                run._build(resolved.scenario.system("reference"),
                           load_data(resolved.scenario.data))
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
