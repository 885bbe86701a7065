"""InternViT backbone (the vision encoder of InternVL) as a keras-hub ``Backbone``.

Input: ``pixel_values`` ``[B, H, W, num_channels]`` float32, already normalized as the
checkpoint expects (InternVL: ImageNet mean/std). Output: the last hidden states of the
kept blocks, ``[B, 1 + (H // p) * (W // p), hidden_dim]`` (class token first), with no
final norm, as InternViT-300M has none. Position embeddings are resampled bicubically
to ``(H // p, W // p)`` when the input differs from the pretraining grid.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import keras
import keras_hub
import numpy as np

from semsim.semantic.internvit.convert import load_internvit_weights, read_vision_config
from semsim.semantic.internvit.layers import (
    InternViTBlock,
    InternViTPatchEmbedding,
    InternViTPositionEmbedding,
)
from semsim.semantic.internvit.lora import LoRALinear

#: The projections of an InternViT block (attention: fused ``qkv`` and ``proj``; MLP:
#: ``fc1`` and ``fc2``), the default LoRA targets.
LORA_TARGETS = ("qkv", "proj", "fc1", "fc2")


def resolve_layers_to_keep(num_layers: int, num_layers_to_keep: int | None) -> int:
    """``num_layers_to_keep``, or the first half (``num_layers // 2``) when ``None``."""
    if num_layers_to_keep is None:
        return max(1, num_layers // 2)
    if not isinstance(num_layers_to_keep, int) or not 1 <= num_layers_to_keep <= num_layers:
        raise ValueError(
            f"num_layers_to_keep must be an int in [1, num_layers={num_layers}], got {num_layers_to_keep!r}"
        )
    return num_layers_to_keep


def make_blocks(num_blocks: int, **config) -> list[InternViTBlock]:
    """``num_blocks`` InternViT blocks named ``block_0 ...`` from a backbone config."""
    keys = (
        "hidden_dim",
        "num_heads",
        "intermediate_dim",
        "layer_norm_epsilon",
        "norm_type",
        "use_qk_norm",
        "qkv_bias",
        "layer_scale_init",
    )
    return [InternViTBlock(**{k: config[k] for k in keys}, name=f"block_{i}") for i in range(num_blocks)]


@keras.saving.register_keras_serializable(package="semsim.internvit")
class InternViTBackbone(keras_hub.models.Backbone):
    """InternViT encoder truncated to its first ``num_layers_to_keep`` blocks.

    Args (sizes of InternViT-300M by default, see
    :data:`semsim.semantic.internvit.presets.INTERNVIT_300M`):
        image_size: pretraining resolution in pixels; sets the stored position grid
            ``image_size // patch_size`` (32 for 448 / 14).
        patch_size, num_channels, hidden_dim, num_heads, intermediate_dim: sizes.
        num_layers: blocks of the full encoder (24); the checkpoint has this many.
        num_layers_to_keep: blocks actually built (default ``num_layers // 2``).
        layer_norm_epsilon, norm_type (``"layer_norm"``/``"rms_norm"``), use_qk_norm,
        qkv_bias, layer_scale_init: block options.
        image_shape: model input ``(H, W, C)``; default ``(image_size, image_size,
            num_channels)``. ``H`` and ``W`` must be multiples of ``patch_size``.
    """

    def __init__(
        self,
        image_size: int = 448,
        patch_size: int = 14,
        num_channels: int = 3,
        hidden_dim: int = 1024,
        num_layers: int = 24,
        num_heads: int = 16,
        intermediate_dim: int = 4096,
        layer_norm_epsilon: float = 1e-6,
        norm_type: str = "layer_norm",
        use_qk_norm: bool = False,
        qkv_bias: bool = True,
        layer_scale_init: float = 0.1,
        num_layers_to_keep: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        dtype=None,
        **kwargs,
    ):
        kept = resolve_layers_to_keep(num_layers, num_layers_to_keep)
        if image_size % patch_size:
            raise ValueError(f"image_size={image_size} must be a multiple of patch_size={patch_size}")
        image_shape = tuple(image_shape or (image_size, image_size, num_channels))
        if len(image_shape) != 3 or image_shape[0] % patch_size or image_shape[1] % patch_size:
            raise ValueError(
                f"image_shape must be (H, W, C) with H, W multiples of patch_size={patch_size}, "
                f"got {image_shape}"
            )
        config = {
            "image_size": image_size,
            "patch_size": patch_size,
            "num_channels": num_channels,
            "hidden_dim": hidden_dim,
            "num_layers": num_layers,
            "num_heads": num_heads,
            "intermediate_dim": intermediate_dim,
            "layer_norm_epsilon": layer_norm_epsilon,
            "norm_type": norm_type,
            "use_qk_norm": use_qk_norm,
            "qkv_bias": qkv_bias,
            "layer_scale_init": layer_scale_init,
        }
        # === Layers ===
        patch_embedding = InternViTPatchEmbedding(hidden_dim, patch_size, name="patch_embedding")
        position_embedding = InternViTPositionEmbedding(
            hidden_dim, image_size // patch_size, name="position_embedding"
        )
        blocks = make_blocks(kept, **config)

        # === Functional model ===
        pixels = keras.Input(shape=image_shape, name="pixel_values")
        grid = (image_shape[0] // patch_size, image_shape[1] // patch_size)
        x = position_embedding(patch_embedding(pixels), grid=grid)
        for block in blocks:
            x = block(x)
        super().__init__(inputs=pixels, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.backbone_config = config
        for key, value in config.items():
            setattr(self, key, value)
        self.num_layers_to_keep = kept
        self.image_shape = image_shape
        self.patch_embedding = patch_embedding
        self.position_embedding = position_embedding
        self.blocks = blocks

    def get_config(self):
        return {
            **super().get_config(),
            **self.backbone_config,
            "num_layers_to_keep": self.num_layers_to_keep,
            "image_shape": self.image_shape,
        }

    def load_pretrained(self, directory: str | Path) -> str:
        """Fill the embeddings and the kept blocks from a local InternVL snapshot.

        Returns the key layout found (``"original"`` or ``"hf"``); see
        :func:`semsim.semantic.internvit.convert.load_internvit_weights`.
        """
        return load_internvit_weights(directory, self.position_embedding, self.blocks, self.patch_embedding)

    # ---- LoRA, keras-hub's conventions ------------------------------------------------
    def default_lora_layer_names(self) -> list[str]:
        """The layers :meth:`enable_lora` adapts by default: :data:`LORA_TARGETS`."""
        return list(LORA_TARGETS)

    def _layers_with_weights(self) -> list[keras.layers.Layer]:
        # keras-hub identifies LoRA layers by their index in this list (names repeat).
        return [layer for layer in self._flatten_layers(include_self=False) if layer.weights]

    def enable_lora(self, rank: int, target_layer_names=None, alpha: float | None = None,
                    dropout: float = 0.05) -> None:
        """Freeze every weight and add LoRA factors (rank ``rank``, scale ``alpha / rank``,
        ``dropout`` on the LoRA input) to the projections named ``target_layer_names``
        (default :meth:`default_lora_layer_names`: attention and MLP of every block).
        Raises ``ValueError`` when a name matches no layer or a layer that cannot take
        LoRA; afterwards only the LoRA factors are trainable."""
        names = list(target_layer_names or self.default_lora_layer_names())
        if getattr(self, "_lora_enabled_layers", None):
            raise ValueError(f"LoRA is already enabled (rank {self._lora_rank})")
        layers = self._layers_with_weights()
        targets = [(i, layer) for i, layer in enumerate(layers) if layer.name in names]
        missing = sorted(set(names) - {layer.name for _, layer in targets})
        if missing:
            raise ValueError(f"enable_lora: no layer named {', '.join(missing)} in this "
                             f"backbone (LoRA targets: {', '.join(LORA_TARGETS)})")
        unsupported = sorted({layer.name for _, layer in targets
                              if not isinstance(layer, LoRALinear)})
        if unsupported:
            raise ValueError(f"enable_lora: layers {', '.join(unsupported)} are not LoRALinear "
                             "projections and cannot take LoRA")
        self.trainable = True
        for layer in self._flatten_layers(include_self=False):
            layer.trainable = False
        for _, layer in targets:
            layer.trainable = True
            layer.enable_lora(rank, alpha, dropout)
        self._lora_enabled_layers = [i for i, _ in targets]
        self._lora_rank = rank

    def save_lora_weights(self, filepath: str | Path) -> None:
        """Write the LoRA factors to ``filepath`` (``*.lora.h5``; keras-hub's layout,
        ``lora/<layer index>/lora_kernel_a|b``, plus the ``alpha`` and ``dropout``)."""
        enabled = getattr(self, "_lora_enabled_layers", [])
        if not enabled:
            raise ValueError("no LoRA-enabled layer in this backbone; call enable_lora(rank) first")
        if not str(filepath).endswith(".lora.h5"):
            raise ValueError(f"the file name must end in .lora.h5, got {filepath}")
        layers = self._layers_with_weights()
        first = layers[enabled[0]]
        with h5py.File(filepath, "w") as store:
            group = store.create_group("lora")
            group["rank"] = self._lora_rank
            group.attrs["alpha"] = first.lora_alpha
            group.attrs["dropout"] = first.lora_dropout
            group.attrs["layers"] = json.dumps({i: layers[i].path for i in enabled})
            for i in enabled:
                inner = group.create_group(str(i))
                inner["lora_kernel_a"] = np.asarray(layers[i].lora_kernel_a)
                inner["lora_kernel_b"] = np.asarray(layers[i].lora_kernel_b)

    def load_lora_weights(self, filepath: str | Path) -> None:
        """Read the LoRA factors :meth:`save_lora_weights` wrote, enabling LoRA (with the
        file's rank, alpha and dropout) when it is not yet; the rank must match."""
        with h5py.File(filepath, "r") as store:
            group = store["lora"]
            rank = int(group["rank"][()])
            if not getattr(self, "_lora_enabled_layers", []):
                self.enable_lora(rank, alpha=float(group.attrs["alpha"]),
                                 dropout=float(group.attrs["dropout"]))
            elif self._lora_rank != rank:
                raise ValueError(f"{filepath} holds rank-{rank} LoRA factors, but LoRA is "
                                 f"enabled with rank {self._lora_rank}")
            layers = self._layers_with_weights()
            stored = sorted(int(k) for k in group.keys() if k.isdigit())
            if stored != sorted(self._lora_enabled_layers):
                raise ValueError(f"{filepath} holds LoRA factors for layers {stored}, this "
                                 f"backbone has them on {sorted(self._lora_enabled_layers)}")
            for i in stored:
                layers[i].lora_kernel_a.assign(group[str(i)]["lora_kernel_a"][()])
                layers[i].lora_kernel_b.assign(group[str(i)]["lora_kernel_b"][()])

    # ---- presets ----------------------------------------------------------------------
    @classmethod
    def from_preset(cls, preset, load_weights: bool = True, **kwargs):
        """Build from a local directory: one written by :meth:`save_to_preset` (keras-hub's
        preset layout: ``config.json`` naming this class, ``model.weights.h5``), or an
        InternVL snapshot from Hugging Face (``config.json`` with a ``vision_config`` and
        ``*.safetensors``), whose weights are converted.

        ``kwargs`` override the config read from ``config.json`` (e.g.
        ``num_layers_to_keep``, ``image_shape``; for a saved preset, only keyword
        arguments keras-hub's loader accepts). Hub handles are refused: semsim never
        downloads; see ``docs/internvit.md`` for what to download.
        """
        directory = Path(preset).expanduser()
        if not directory.is_dir():
            raise ValueError(
                f"preset must be a local directory (saved with save_to_preset, or an InternVL "
                f"snapshot), got {preset!r} (semsim never downloads weights; see "
                "docs/internvit.md)"
            )
        if is_keras_preset(directory):
            return super().from_preset(str(directory), load_weights=load_weights, **kwargs)
        config = {**read_vision_config(directory), **kwargs}
        backbone = cls(**config)
        if load_weights:
            backbone.load_pretrained(directory)
        return backbone


def is_keras_preset(directory: str | Path) -> bool:
    """Whether ``directory`` holds a keras-hub preset (its ``config.json`` names a
    registered Keras class) rather than a Hugging Face snapshot."""
    config_file = Path(directory) / "config.json"
    if not config_file.is_file():
        return False
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "registered_name" in config and "config" in config
