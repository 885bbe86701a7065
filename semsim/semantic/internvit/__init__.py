"""InternViT (InternVL's vision encoder) in Keras 3: backbone, checkpoint loading, LoRA.

See ``docs/internvit.md`` for the weights the user downloads and where they go.
"""

from semsim.semantic.internvit.backbone import InternViTBackbone
from semsim.semantic.internvit.convert import load_internvit_weights, read_vision_config
from semsim.semantic.internvit.lora import (
    LoRALinear,
    ParameterCount,
    apply_lora,
    count_parameters,
    merge_lora,
)
from semsim.semantic.internvit.presets import CHECKPOINTS, PRESETS, get_preset

__all__ = [
    "CHECKPOINTS",
    "PRESETS",
    "InternViTBackbone",
    "LoRALinear",
    "ParameterCount",
    "apply_lora",
    "count_parameters",
    "get_preset",
    "load_internvit_weights",
    "merge_lora",
    "read_vision_config",
]
