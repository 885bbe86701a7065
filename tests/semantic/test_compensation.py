"""ViT compensation module: pipeline against an independent PyTorch reference, pretrained
loading, LoRA freezing, serialization, training, and the errors of build_compensation."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from semsim.semantic.compensation import ViTCompensation, build_compensation
from semsim.semantic.internvit import count_parameters

TINY = dict(hidden_dim=32, num_layers=2, num_heads=4, intermediate_dim=64)


def _small(**kwargs):
    return build_compensation("vit-small", 6, 3, (4, 5), **{**TINY, **kwargs})


def _inputs(seed=0, batch=2, grid=(4, 5), channels=6, cond=3):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(batch, *grid, channels)).astype("float32"),
        rng.normal(size=(batch, cond)).astype("float32"),
    )


def test_untrained_residual_module_is_identity():
    layer = _small()
    z, c = _inputs()
    np.testing.assert_array_equal(np.asarray(layer(z, c)), z)


def test_pipeline_matches_pytorch_reference(tmp_path):
    """Pretrained tiny InternVL vision tower in a compensation module vs the same steps
    done by hand with transformers' encoder: concat c -> in_proj -> [cls; x] + bicubic
    positions -> blocks -> drop cls -> out_proj (no residual)."""
    torch = pytest.importorskip("torch", reason="needs PyTorch (extra 'test')")
    transformers = pytest.importorskip("transformers", reason="needs transformers (extra 'test')")
    torch.manual_seed(0)
    config = transformers.InternVLVisionConfig(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=42,
        patch_size=14,
        attention_bias=True,
    )
    model = transformers.InternVLVisionModel(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(0.3 * torch.randn_like(param))
    model.save_pretrained(tmp_path)
    backbone_config = {
        "image_size": 42,
        "patch_size": 14,
        "num_channels": 3,
        "hidden_dim": 32,
        "num_layers": 3,
        "num_heads": 4,
        "intermediate_dim": 64,
        "layer_norm_epsilon": 1e-6,
        "norm_type": "layer_norm",
        "use_qk_norm": False,
        "qkv_bias": True,
        "layer_scale_init": 0.1,
    }
    layer = ViTCompensation(6, 3, (4, 5), backbone_config, num_layers_to_keep=2, residual=False)
    layer.build((None, 4, 5, 6), (None, 3))
    assert layer.load_pretrained(tmp_path) == "hf"
    rng = np.random.default_rng(1)
    layer.out_proj.kernel.assign(rng.normal(size=(32, 6)).astype("float32"))
    z, c = _inputs(seed=2)

    w_in, b_in = np.asarray(layer.in_proj.kernel), np.asarray(layer.in_proj.bias)
    w_out, b_out = np.asarray(layer.out_proj.kernel), np.asarray(layer.out_proj.bias)
    tokens = np.concatenate([z.reshape(2, 20, 6), np.repeat(c[:, None], 20, axis=1)], -1)
    x = torch.from_numpy(tokens @ w_in + b_in)
    emb = model.embeddings
    pos = emb.position_embeddings.detach()
    grid = pos[:, 1:].reshape(1, 3, 3, 32).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(grid, size=(4, 5), mode="bicubic", align_corners=False)
    patch_pos = grid.permute(0, 2, 3, 1).reshape(1, 20, 32)
    cls = (emb.cls_token + pos[:, :1]).expand(2, 1, 32)
    h = torch.cat([cls, x + patch_pos], dim=1)
    with torch.no_grad():
        for block in model.encoder.layer[:2]:
            h = block(h)
    expected = (h[:, 1:].numpy() @ w_out + b_out).reshape(2, 4, 5, 6)
    np.testing.assert_allclose(np.asarray(layer(z, c)), expected, atol=1e-4, rtol=0)


def test_lora_freezes_everything_but_lora_and_projections():
    layer = _small(lora_rank=4, lora_alpha=8)
    names = {v.path.split("/")[-1] for v in layer.trainable_weights}
    assert names == {"lora_a", "lora_b", "kernel", "bias"}
    trainable_paths = [v.path for v in layer.trainable_weights]
    assert all("lora_" in p or "in_proj" in p or "out_proj" in p for p in trainable_paths)
    d, f, r, k = 32, 64, 4, 2
    lora = k * r * ((d + 3 * d) + 2 * d + (d + f) + (f + d))
    projections = (6 + 3) * d + d + d * 6 + 6
    assert count_parameters(layer).trainable == lora + projections


def test_serialization_roundtrip(tmp_path):
    layer = _small(lora_rank=2)
    rng = np.random.default_rng(3)
    for v in layer.weights:  # non-trivial values everywhere, LoRA factors included
        v.assign(rng.normal(size=v.shape).astype("float32") * 0.3)
    z_in, c_in = keras.Input((4, 5, 6)), keras.Input((3,))
    model = keras.Model([z_in, c_in], layer(z_in, c_in))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    z, c = _inputs(seed=4)
    np.testing.assert_array_equal(np.asarray(loaded([z, c])), np.asarray(model([z, c])))
    assert count_parameters(loaded) == count_parameters(model)


def test_merge_lora_keeps_outputs():
    layer = _small(lora_rank=2)
    rng = np.random.default_rng(5)
    for v in layer.weights:
        if "lora_b" in v.path or "out_proj" in v.path:
            v.assign(rng.normal(size=v.shape).astype("float32"))
    z, c = _inputs(seed=6)
    before = np.asarray(layer(z, c, training=False))
    assert layer.merge_lora() == 4 * 2
    np.testing.assert_allclose(np.asarray(layer(z, c, training=False)), before, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("lora_rank", [0, 4])
def test_compensation_learns_a_denoising_regression(lora_rank):
    """z_hat = z + noise scaled by c[:, 0] on one fixed batch; the module must reduce the
    MSE to z. Fixed seed; the last loss must fall below 75% of the first (identity) one."""
    layer = _small(lora_rank=lora_rank)
    rng = np.random.default_rng(7)
    opt = keras.optimizers.Adam(3e-3)
    z = rng.normal(size=(16, 4, 5, 6)).astype("float32")
    sigma = rng.uniform(0.5, 1.5, size=(16, 1)).astype("float32")
    c = np.concatenate([sigma, np.zeros((16, 2), "float32")], axis=1)
    z_hat = z + sigma[:, :, None, None] * rng.normal(size=z.shape).astype("float32")

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((layer(z_hat, c, training=True) - z) ** 2)
        grads = tape.gradient(loss, layer.trainable_weights)
        opt.apply_gradients(zip(grads, layer.trainable_weights, strict=True))
        return loss

    losses = [float(step()) for _ in range(25)]
    assert losses[-1] < 0.75 * losses[0], losses


def test_build_compensation_errors(tmp_path):
    with pytest.raises(ValueError, match="needs weights_dir.*docs/internvit.md"):
        build_compensation("internvit-300m", 6, 3, 4)
    with pytest.raises(ValueError, match="unknown compensation 'vit-huge'"):
        build_compensation("vit-huge", 6, 3, 4)
    with pytest.raises(ValueError, match=r"unknown kwargs \['depth'\]"):
        build_compensation("vit-small", 6, 3, 4, depth=3)
    with pytest.raises(ValueError, match="grid_size"):
        build_compensation("vit-small", 6, 3, (4, 0))
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "vision_config": {
                    "hidden_size": 64,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 2,
                    "intermediate_size": 32,
                }
            }
        )
    )
    with pytest.raises(ValueError, match="not InternViT-300M"):
        build_compensation("internvit-300m", 6, 3, 4, weights_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="hf download"):
        build_compensation("internvit-300m", 6, 3, 4, weights_dir=tmp_path / "absent")
    layer = _small()
    with pytest.raises(ValueError, match=r"z_hat must be \[B, 4, 5, 6\]"):
        layer(*_inputs(grid=(5, 4)))


@pytest.mark.slow
def test_reference_system_with_vit_small_trains():
    """The reference system's receiver slot with compensation='vit-small' (tiny sizes):
    the compensation weights receive gradients and the loss falls on a fixed batch
    (fixed seeds; last loss below 90% of the first)."""
    reference = pytest.importorskip("semsim.systems.reference")
    from semsim.systems.base import CSISpec, LinkSpec

    params = dict(
        num_maps=4,
        encoder_dims=(8,),
        encoder_depths=(1,),
        encoder_heads=(2,),
        decoder_dims=(8,),
        decoder_depths=(1,),
        decoder_heads=(2,),
        window_size=2,
        patch_size=2,
        channel_embed_dim=4,
        entropy_embed_dim=4,
        hidden_units=8,
        lam=0.0,
        compensation="vit-small",
        compensation_options=dict(hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=32),
    )
    link = LinkSpec(num_rx_ant=2, antennas_per_user=2, fading="none", csi=CSISpec(mode="perfect"))
    model = reference.ReferenceModel(params, link, (8, 8), seed=0)
    model.build()
    assert isinstance(model.compensation, ViTCompensation)
    assert model.compensation.grid_size == (4, 4)
    comp_ids = {id(v) for v in model.compensation.trainable_weights}
    assert comp_ids <= {id(v) for v in model.trainable_variables}
    before = {v.path: np.array(v) for v in model.compensation.trainable_weights}
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)  # tracing costs more
    rng = np.random.default_rng(8)
    batch = {
        "image": rng.uniform(size=(4, 8, 8, 3)).astype("float32"),
        "snr_db": np.full((4,), 10.0, "float32"),
    }
    data = tf.data.Dataset.from_tensors(batch).repeat()
    history = model.fit(data, epochs=6, steps_per_epoch=1, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.9 * losses[0], losses
    changed = [p for p, v in before.items() if np.abs(v - np.asarray(_by_path(model, p))).max() > 0]
    assert changed, "no compensation weight was updated"


def _by_path(model, path):
    return next(v for v in model.compensation.weights if v.path == path)
