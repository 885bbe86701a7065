"""Architecture presets of InternViT backbones and where their weights come from.

A preset is a dict of :class:`~semsim.semantic.internvit.backbone.InternViTBackbone`
keyword arguments. Nothing is downloaded by semsim: :data:`CHECKPOINTS` names the
Hugging Face repositories the user downloads once (see ``docs/internvit.md``).
"""

from __future__ import annotations

#: InternViT-300M-448px as used by InternVL3.5-1B (vision_config of OpenGVLab/InternVL3_5-1B).
INTERNVIT_300M: dict = {
    "image_size": 448,
    "patch_size": 14,
    "num_channels": 3,
    "hidden_dim": 1024,
    "num_layers": 24,
    "num_heads": 16,
    "intermediate_dim": 4096,
    "layer_norm_epsilon": 1e-6,
    "norm_type": "layer_norm",
    "use_qk_norm": False,
    "qkv_bias": True,
    "layer_scale_init": 0.1,
}

#: A small random-initialized ViT with the same blocks, for CPU runs and tests. It is
#: *not* a pretrained (MLLM) encoder. ``image_size`` is set by the user of the preset
#: so that the position grid matches the token grid.
VIT_SMALL: dict = {
    **INTERNVIT_300M,
    "patch_size": 1,
    "hidden_dim": 192,
    "num_layers": 4,
    "num_heads": 3,
    "intermediate_dim": 768,
    "layer_scale_init": 1.0,
}

PRESETS: dict[str, dict] = {"internvit-300m": INTERNVIT_300M, "vit-small": VIT_SMALL}

#: Hugging Face snapshots the converter reads (either one suffices), with the number
#: of vision blocks they hold. Only ``config.json`` and ``*.safetensors`` (plus
#: ``model.safetensors.index.json`` when sharded) are needed.
CHECKPOINTS: dict[str, str] = {
    "original": "OpenGVLab/InternVL3_5-1B",
    "hf": "OpenGVLab/InternVL3_5-1B-HF",
}


def get_preset(name: str) -> dict:
    """A copy of the architecture preset ``name`` (one of :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown InternViT preset {name!r}; known: {sorted(PRESETS)}")
    return dict(PRESETS[name])
