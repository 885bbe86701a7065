"""InternViT backbone: parity with transformers' InternVLVisionModel, both checkpoint
layouts, truncation, bicubic position resampling and loader errors.

The reference is a tiny random ``InternVLVisionModel`` (PyTorch, CPU) saved as
safetensors; semsim loads it with its own converter.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from semsim.semantic.internvit import InternViTBackbone, read_vision_config
from semsim.semantic.internvit.layers import bicubic_matrix

torch = pytest.importorskip("torch", reason="parity tests need PyTorch (extra 'test')")
transformers = pytest.importorskip("transformers", reason="parity tests need transformers (extra 'test')")
from safetensors.torch import save_file  # noqa: E402

TOL = 1e-4  # max abs difference, float32 on CPU, values O(1)

TINY = dict(
    hidden_size=32,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=64,
    image_size=28,
    patch_size=7,
    attention_bias=True,
)


def _reference(seed: int, **overrides):
    """Tiny InternVLVisionModel with every parameter randomized (so that zero-init
    class/position embeddings or unit layer scales cannot hide a conversion error)."""
    torch.manual_seed(seed)
    config = transformers.InternVLVisionConfig(**{**TINY, **overrides})
    model = transformers.InternVLVisionModel(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
            else:
                param.copy_(0.3 * torch.randn_like(param))
    return model


def _to_original_layout(state: dict) -> dict:
    """Rename/fuse transformers' keys into InternVL's original ``vision_model.*`` layout."""
    out = {}
    for key, value in state.items():
        name = (
            key.replace("embeddings.cls_token", "embeddings.class_embedding")
            .replace("embeddings.position_embeddings", "embeddings.position_embedding")
            .replace("embeddings.patch_embeddings.projection", "embeddings.patch_embedding")
            .replace("encoder.layer.", "encoder.layers.")
            .replace("layernorm_before", "norm1")
            .replace("layernorm_after", "norm2")
            .replace("attention.projection_layer", "attn.proj")
            .replace("attention.q_norm", "attn.q_norm")
            .replace("attention.k_norm", "attn.k_norm")
            .replace("lambda_1", "ls1")
            .replace("lambda_2", "ls2")
        )
        if ".attention.k_proj." in key or ".attention.v_proj." in key:
            continue
        if ".attention.q_proj." in key:
            parts = [state[key.replace("q_proj", p)] for p in ("q_proj", "k_proj", "v_proj")]
            name = name.replace("attention.q_proj", "attn.qkv")
            value = torch.cat(parts, dim=0)
        out["vision_model." + name] = value.contiguous()
    return out


def _original_config(hf_config) -> dict:
    return {
        "architectures": ["InternVLChatModel"],
        "vision_config": {
            "hidden_size": hf_config.hidden_size,
            "num_hidden_layers": hf_config.num_hidden_layers,
            "num_attention_heads": hf_config.num_attention_heads,
            "intermediate_size": hf_config.intermediate_size,
            "image_size": hf_config.image_size[0],
            "patch_size": hf_config.patch_size[0],
            "qkv_bias": hf_config.attention_bias,
            "qk_normalization": hf_config.use_qk_norm,
            "norm_type": hf_config.norm_type,
            "layer_norm_eps": hf_config.layer_norm_eps,
            "hidden_act": "gelu",
        },
        "llm_config": {"hidden_size": 8},
    }


def _write_sharded(directory, tensors: dict, config: dict) -> None:
    """Two shards with an index, as large snapshots are stored, plus a stand-in
    language-model tensor that the converter must ignore."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = sorted(tensors)
    shards = {
        "model-00001-of-00002.safetensors": {k: tensors[k] for k in keys[::2]},
        "model-00002-of-00002.safetensors": {
            **{k: tensors[k] for k in keys[1::2]},
            "language_model.model.embed_tokens.weight": torch.zeros(3, 8),
        },
    }
    weight_map = {}
    for name, part in shards.items():
        save_file(part, str(directory / name))
        weight_map.update(dict.fromkeys(part, name))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (directory / "config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """The same random reference model in three snapshots: transformers'
    ``save_pretrained`` (HF layout, no prefix), HF layout under ``model.vision_tower.``
    with a nested config and shards, and the original layout (sharded)."""
    model = _reference(seed=0)
    root = tmp_path_factory.mktemp("internvit")
    model.save_pretrained(root / "hf_plain")
    state = model.state_dict()
    nested = {"vision_config": model.config.to_dict(), "text_config": {"hidden_size": 8}}
    _write_sharded(root / "hf_nested", {"model.vision_tower." + k: v for k, v in state.items()}, nested)
    _write_sharded(root / "original", _to_original_layout(state), _original_config(model.config))
    return model, root


def _hidden_states(model, pixels_nhwc: np.ndarray):
    with torch.no_grad():
        out = model(torch.from_numpy(pixels_nhwc.transpose(0, 3, 1, 2)), output_hidden_states=True)
    return [h.numpy() for h in out.hidden_states]


@pytest.mark.parametrize("layout", ["hf_plain", "hf_nested", "original"])
def test_parity_with_transformers(snapshots, layout):
    model, root = snapshots
    pixels = np.random.default_rng(1).normal(size=(2, 28, 28, 3)).astype("float32")
    expected = _hidden_states(model, pixels)[-1]
    backbone = InternViTBackbone.from_preset(root / layout, num_layers_to_keep=4)
    got = np.asarray(backbone(pixels))
    assert got.shape == expected.shape == (2, 17, 32)
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)


def test_parity_at_other_resolution_interpolates_positions(snapshots):
    """A 42 x 35 input (6 x 5 grid) resamples the 4 x 4 position grid bicubically in
    both implementations."""
    model, root = snapshots
    pixels = np.random.default_rng(2).normal(size=(1, 42, 35, 3)).astype("float32")
    expected = _hidden_states(model, pixels)[-1]
    backbone = InternViTBackbone.from_preset(root / "original", num_layers_to_keep=4, image_shape=(42, 35, 3))
    np.testing.assert_allclose(np.asarray(backbone(pixels)), expected, atol=TOL, rtol=0)


def test_parity_rms_norm_and_qk_norm(tmp_path):
    """InternViT-6B options: RMSNorm blocks and RMS-normalized q/k."""
    model = _reference(seed=3, norm_type="rms_norm", use_qk_norm=True)
    _write_sharded(tmp_path, _to_original_layout(model.state_dict()), _original_config(model.config))
    pixels = np.random.default_rng(4).normal(size=(2, 28, 28, 3)).astype("float32")
    backbone = InternViTBackbone.from_preset(tmp_path, num_layers_to_keep=4)
    assert backbone.use_qk_norm and backbone.norm_type == "rms_norm"
    np.testing.assert_allclose(
        np.asarray(backbone(pixels)), _hidden_states(model, pixels)[-1], atol=TOL, rtol=0
    )


@pytest.mark.parametrize("keep", [1, 3])
def test_truncation_keeps_exactly_the_first_blocks(snapshots, keep):
    model, root = snapshots
    pixels = np.random.default_rng(5).normal(size=(2, 28, 28, 3)).astype("float32")
    truncated = InternViTBackbone.from_preset(root / "original", num_layers_to_keep=keep)
    full = InternViTBackbone.from_preset(root / "original", num_layers_to_keep=4)
    assert len(truncated.blocks) == keep
    for short, long in zip(truncated.blocks, full.blocks[:keep], strict=True):
        for a, b in zip(short.weights, long.weights, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # hidden_states[k] of the reference is the output of its first k blocks
    np.testing.assert_allclose(
        np.asarray(truncated(pixels)), _hidden_states(model, pixels)[keep], atol=TOL, rtol=0
    )


def test_default_truncation_is_first_half():
    backbone = InternViTBackbone(
        image_size=14, patch_size=7, hidden_dim=16, num_layers=6, num_heads=2, intermediate_dim=32
    )
    assert backbone.num_layers_to_keep == 3 and len(backbone.blocks) == 3
    with pytest.raises(ValueError, match="num_layers_to_keep"):
        InternViTBackbone(
            image_size=14,
            patch_size=7,
            hidden_dim=16,
            num_layers=6,
            num_heads=2,
            intermediate_dim=32,
            num_layers_to_keep=7,
        )


def test_config_roundtrip(snapshots):
    _, root = snapshots
    backbone = InternViTBackbone.from_preset(root / "hf_plain", num_layers_to_keep=2)
    clone = InternViTBackbone.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()
    assert read_vision_config(root / "original") == read_vision_config(root / "hf_nested")


@pytest.mark.parametrize(("in_size", "out_size"), [(4, 6), (32, 8), (5, 5), (7, 3)])
def test_bicubic_matrix_matches_torch(in_size, out_size):
    """Separable resampling with bicubic_matrix equals torch's bicubic interpolate."""
    table = np.random.default_rng(6).normal(size=(in_size, in_size)).astype("float64")
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(table)[None, None],
        size=(out_size, out_size),
        mode="bicubic",
        align_corners=False,
    )[0, 0].numpy()
    m = bicubic_matrix(in_size, out_size)
    np.testing.assert_allclose(m @ table @ m.T, expected, atol=1e-10)


def test_bf16_checkpoint_is_read_as_float32(snapshots, tmp_path):
    """Released checkpoints are bfloat16: values must equal torch's bf16 -> fp32 cast."""
    model, _ = snapshots
    state = {k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(model.config.to_dict()))
    backbone = InternViTBackbone.from_preset(tmp_path, num_layers_to_keep=1)
    np.testing.assert_array_equal(
        np.asarray(backbone.blocks[0].fc1.kernel),
        state["encoder.layer.0.mlp.fc1.weight"].float().numpy().T,
    )
    np.testing.assert_array_equal(
        np.asarray(backbone.position_embedding.position_embedding),
        state["embeddings.position_embeddings"].float().numpy()[0],
    )


def test_mis_shaped_and_missing_tensors_are_named(snapshots, tmp_path):
    model, _ = snapshots
    state = dict(model.state_dict())
    state["encoder.layer.1.mlp.fc2.weight"] = torch.zeros(32, 65)
    del state["encoder.layer.0.lambda_2"]
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(model.config.to_dict()))
    with pytest.raises(ValueError, match="missing tensor 'encoder.layer.0.lambda_2'"):
        InternViTBackbone.from_preset(tmp_path, num_layers_to_keep=2)
    state["encoder.layer.0.lambda_2"] = torch.zeros(32)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"mlp.fc2.weight' \(32, 65\).*expects \(64, 32\)"):
        InternViTBackbone.from_preset(tmp_path, num_layers_to_keep=2)


def test_directory_without_weights_says_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="OpenGVLab/InternVL3_5-1B.*docs/internvit.md"):
        InternViTBackbone.from_preset(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "vision_config": {
                    "hidden_size": 16,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 2,
                    "intermediate_size": 32,
                    "image_size": 14,
                    "patch_size": 7,
                }
            }
        )
    )
    with pytest.raises(FileNotFoundError, match=r"no \*.safetensors weights.*hf download"):
        InternViTBackbone.from_preset(tmp_path)
    with pytest.raises(ValueError,
                       match="local directory .saved with save_to_preset, or an InternVL snapshot"):
        InternViTBackbone.from_preset("internvit-300m")
