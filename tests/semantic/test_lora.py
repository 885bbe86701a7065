"""LoRA on InternViT projections: closed-form outputs, frozen base weights, merging,
dropout placement, parameter counts and serialization."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from semsim.semantic.internvit import (
    InternViTBackbone,
    LoRALinear,
    apply_lora,
    count_parameters,
    merge_lora,
)

D, F, KEEP, RANK = 16, 32, 2, 4


def _backbone():
    return InternViTBackbone(
        image_size=14,
        patch_size=7,
        hidden_dim=D,
        num_layers=4,
        num_heads=2,
        intermediate_dim=F,
        num_layers_to_keep=KEEP,
    )


def _randomize_lora(layer, rng):
    for linear in [s for s in layer._flatten_layers() if isinstance(s, LoRALinear)]:
        linear.lora_b.assign(rng.normal(size=linear.lora_b.shape).astype("float32"))


def test_lora_linear_matches_numpy():
    rng = np.random.default_rng(0)
    layer = LoRALinear(5, name="lin")
    layer.build((None, 7))
    x = rng.normal(size=(3, 7)).astype("float32")
    base = np.asarray(layer(x))
    layer.enable_lora(rank=2, alpha=6.0, dropout=0.0)
    np.testing.assert_allclose(np.asarray(layer(x)), base, atol=1e-6)  # B = 0 at start
    a = rng.normal(size=(7, 2)).astype("float32")
    b = rng.normal(size=(2, 5)).astype("float32")
    layer.lora_a.assign(a)
    layer.lora_b.assign(b)
    w, bias = np.asarray(layer.kernel), np.asarray(layer.bias)
    np.testing.assert_allclose(np.asarray(layer(x)), x @ w + bias + 3.0 * (x @ a @ b), atol=1e-5)


def test_dropout_only_on_lora_path_and_only_in_training():
    rng = np.random.default_rng(1)
    layer = LoRALinear(6)
    layer.build((None, 8))
    x = rng.normal(size=(64, 8)).astype("float32")
    base = np.asarray(layer(x))
    layer.enable_lora(rank=2, dropout=0.5)
    np.testing.assert_allclose(np.asarray(layer(x, training=True)), base, atol=1e-6)  # B = 0
    layer.lora_b.assign(rng.normal(size=(2, 6)).astype("float32"))
    eval_out = np.asarray(layer(x, training=False))
    np.testing.assert_array_equal(eval_out, np.asarray(layer(x, training=False)))
    assert np.abs(np.asarray(layer(x, training=True)) - eval_out).max() > 1e-3


def test_training_step_moves_only_lora_weights():
    rng = np.random.default_rng(2)
    backbone = _backbone()
    apply_lora([backbone], rank=RANK, alpha=8, dropout=0.05)
    lora_vars = [v for v in backbone.weights if "lora_" in v.path]
    base_vars = [v for v in backbone.weights if "lora_" not in v.path]
    assert {id(v) for v in backbone.trainable_weights} == {id(v) for v in lora_vars}
    before = {v.path: np.array(v) for v in backbone.weights}
    x = rng.normal(size=(4, 14, 14, 3)).astype("float32")
    target = rng.normal(size=(4, 5, D)).astype("float32")
    opt = keras.optimizers.Adam(1e-2)
    for _ in range(3):  # A gets gradients only once B != 0, i.e. from step 2
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((backbone(x, training=True) - target) ** 2)
        grads = tape.gradient(loss, backbone.trainable_weights)
        opt.apply_gradients(zip(grads, backbone.trainable_weights, strict=True))
    for v in base_vars:
        np.testing.assert_array_equal(np.asarray(v), before[v.path], err_msg=v.path)
    for v in lora_vars:
        assert np.abs(np.asarray(v) - before[v.path]).max() > 0, v.path


def test_merged_equals_unmerged_in_eval_mode():
    backbone = _backbone()
    x = np.random.default_rng(4).normal(size=(2, 14, 14, 3)).astype("float32")
    plain = np.asarray(backbone(x))
    apply_lora([backbone], rank=RANK, alpha=8, dropout=0.05)
    _randomize_lora(backbone, np.random.default_rng(3))
    unmerged = np.asarray(backbone(x, training=False))
    assert np.abs(unmerged - plain).max() > 1e-2  # the LoRA path contributes
    assert merge_lora([backbone]) == 4 * KEEP
    assert not any("lora_" in v.path for v in backbone.weights)
    np.testing.assert_allclose(np.asarray(backbone(x, training=False)), unmerged, atol=1e-5)


def test_parameter_counts_match_closed_form():
    backbone = _backbone()
    total_base = count_parameters(backbone).total
    apply_lora([backbone], rank=RANK)
    counts = count_parameters(backbone)
    # per block: qkv D->3D, proj D->D, fc1 D->F, fc2 F->D; LoRA adds r * (in + out) each
    per_block = RANK * ((D + 3 * D) + (D + D) + (D + F) + (F + D))
    assert counts.trainable == KEEP * per_block
    assert counts.total == total_base + KEEP * per_block
    assert counts.trainable_fraction == pytest.approx(KEEP * per_block / counts.total)


def test_lora_state_survives_serialization():
    layer = LoRALinear(4, lora_rank=2, lora_alpha=4.0, lora_dropout=0.1)
    layer.build((None, 3))
    clone = LoRALinear.from_config(layer.get_config())
    clone.build((None, 3))
    assert clone.lora_rank == 2 and clone.lora_scale == 2.0
    assert [v.name for v in clone.trainable_weights] == ["lora_a", "lora_b"]
    assert not clone.kernel.trainable


def test_bad_lora_arguments_are_rejected():
    layer = LoRALinear(4)
    with pytest.raises(ValueError, match="build the layer"):
        layer.enable_lora(2)
    layer.build((None, 3))
    with pytest.raises(ValueError, match="rank must be a positive int"):
        layer.enable_lora(0)
    with pytest.raises(ValueError, match="dropout must be in"):
        layer.enable_lora(2, dropout=1.0)
    with pytest.raises(ValueError, match="not enabled"):
        layer.merge_lora()


def _outputs(backbone, seed=5):
    x = np.random.default_rng(seed).normal(size=(2, 14, 14, 3)).astype("float32")
    return np.asarray(backbone(x, training=False))


def _copy_base_weights(source, target):
    base = {v.path: v for v in target.weights if "lora_" not in v.path}
    for v in source.weights:
        if "lora_" not in v.path:
            base[v.path].assign(v)


def test_backbone_enable_lora_adapts_attention_and_mlp_projections():
    backbone = _backbone()
    backbone.enable_lora(RANK)
    adapted = sorted({v.path.rsplit("/", 2)[-2] for v in backbone.trainable_weights})
    assert adapted == ["fc1", "fc2", "proj", "qkv"]
    assert all(v.path.rsplit("/", 1)[-1] in ("lora_a", "lora_b")
               for v in backbone.trainable_weights)
    per_block = RANK * ((D + 3 * D) + (D + D) + (D + F) + (F + D))  # A [in, r] + B [r, out]
    assert count_parameters(backbone).trainable == KEEP * per_block


def test_backbone_enable_lora_refuses_targets_it_cannot_adapt():
    with pytest.raises(ValueError, match="no layer named query, value"):
        _backbone().enable_lora(RANK, target_layer_names=["query", "value"])
    with pytest.raises(ValueError, match="norm1 are not LoRALinear"):
        _backbone().enable_lora(RANK, target_layer_names=["qkv", "norm1"])


def test_lora_weights_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    trained = _backbone()
    trained.enable_lora(RANK, alpha=8.0, dropout=0.0)
    _randomize_lora(trained, rng)
    expected = _outputs(trained)
    assert np.abs(expected - _outputs(_backbone())).max() > 1e-3  # LoRA changed the outputs
    path = tmp_path / "adapter.lora.h5"
    trained.save_lora_weights(path)
    for enable_first in (False, True):
        fresh = _backbone()
        if enable_first:
            fresh.enable_lora(RANK, alpha=8.0, dropout=0.0)
        _copy_base_weights(trained, fresh)
        fresh.load_lora_weights(path)
        np.testing.assert_allclose(_outputs(fresh), expected, atol=1e-5)
    wrong_rank = _backbone()
    wrong_rank.enable_lora(RANK + 1)
    with pytest.raises(ValueError, match=f"rank-{RANK} LoRA factors"):
        wrong_rank.load_lora_weights(path)


def test_from_preset_reads_a_saved_preset(tmp_path):
    original = _backbone()
    original.save_to_preset(tmp_path / "preset")
    again = InternViTBackbone.from_preset(tmp_path / "preset")
    assert again.get_config() == original.get_config()
    np.testing.assert_allclose(_outputs(again), _outputs(original), atol=1e-6)
