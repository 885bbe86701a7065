"""ViT compensation at the receiver: refine the received latent with transformer blocks.

The reference system's receiver compensates for discarded maps/symbols and channel
distortion with the vision encoder of InternVL3.5-1B (InternViT-300M) truncated to its
first half, between two linear projections, fine-tuned with LoRA. Here::

    tokens  = concat(z_hat[b, i, j, :], c[b, :])            # [B, h*w, C + cond_dim]
    x       = in_proj(tokens)                                # [B, h*w, D]
    x       = [cls; x] + position embeddings (bicubic to h x w)
    x       = blocks(x)[:, 1:]                               # kept InternViT blocks, cls dropped
    z_ref   = z_hat + out_proj(x)   (residual=True)          # [B, h, w, C]

Design choices (not fixed by the paper):

* The pretrained class token (with its position) is kept in the sequence during the
  blocks, because InternViT was always trained with one, and dropped before
  ``out_proj``; patch position embeddings are resampled bicubically from the
  pretraining grid (32 x 32) to the latent grid ``h x w``, as InternViT does for other
  resolutions.
* ``residual=True`` (default) adds the input back and initializes ``out_proj`` to
  zero, so an untrained module is the identity and training starts from the
  uncompensated receiver. ``residual=False`` outputs ``out_proj(x)`` alone.
* With ``lora_rank > 0`` every block weight, the class token and the position
  embeddings are frozen; only LoRA factors (``qkv``, ``proj``, ``fc1``, ``fc2`` of
  every kept block) and the two projections train. With ``lora_rank = 0`` everything
  trains (the default of ``vit-small``, whose blocks are random).

Names for :func:`build_compensation`:

* ``internvit-300m``: InternViT-300M from a local InternVL3.5-1B snapshot
  (``weights_dir``, required; see ``docs/internvit.md``), first 12 of 24 blocks, LoRA
  rank 16 (alpha 32, dropout 0.05) by default.
* ``vit-small``: the same code with a small random-initialized ViT (192 wide, 4 blocks,
  3 heads), for CPU runs and tests. It is *not* MLLM-aided: no pretrained knowledge.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import ops

from semsim.semantic.internvit.backbone import make_blocks, resolve_layers_to_keep
from semsim.semantic.internvit.convert import load_internvit_weights, read_vision_config
from semsim.semantic.internvit.layers import InternViTPositionEmbedding
from semsim.semantic.internvit.lora import apply_lora, merge_lora
from semsim.semantic.internvit.presets import INTERNVIT_300M, get_preset

COMPENSATIONS = ("internvit-300m", "vit-small")

_BACKBONE_KEYS = tuple(INTERNVIT_300M)
#: ``(hidden_dim, num_layers)`` a ``weights_dir`` must hold for ``internvit-300m``.
INTERNVIT_300M_SHAPE = (INTERNVIT_300M["hidden_dim"], INTERNVIT_300M["num_layers"])


def _grid(grid_size) -> tuple[int, int]:
    grid = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
    if len(grid) != 2 or not all(isinstance(g, int) and g >= 1 for g in grid):
        raise ValueError(f"grid_size must be a positive int or (h, w), got {grid_size!r}")
    return grid


@keras.saving.register_keras_serializable(package="semsim")
class ViTCompensation(keras.layers.Layer):
    """Latent refinement with (InternViT) transformer blocks; see the module docstring.

    Args:
        num_channels: ``C``, channels of the latent ``z_hat``.
        cond_dim: length of the conditioning vector ``c`` (e.g. SNR, kept ratio).
        grid_size: latent grid ``(h, w)`` (or one int for a square grid).
        backbone_config: InternViT architecture (the keys of
            :data:`~semsim.semantic.internvit.presets.INTERNVIT_300M`).
        num_layers_to_keep: blocks built (default: the first half).
        lora_rank, lora_alpha, lora_dropout: LoRA on the kept blocks (0: no LoRA,
            everything trains).
        residual: add ``z_hat`` to the output (``out_proj`` zero-initialized).

    ``call(z_hat [B, h, w, C] float32, c [B, cond_dim] float32, training=None)
    -> z_refined [B, h, w, C] float32``.
    """

    def __init__(
        self,
        num_channels: int,
        cond_dim: int,
        grid_size,
        backbone_config: dict,
        num_layers_to_keep: int | None = None,
        lora_rank: int = 0,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.05,
        residual: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(num_channels, int) or num_channels < 1:
            raise ValueError(f"num_channels must be an int >= 1, got {num_channels!r}")
        if not isinstance(cond_dim, int) or cond_dim < 0:
            raise ValueError(f"cond_dim must be an int >= 0, got {cond_dim!r}")
        unknown = sorted(set(backbone_config) - set(_BACKBONE_KEYS))
        missing = sorted(set(_BACKBONE_KEYS) - set(backbone_config))
        if unknown or missing:
            raise ValueError(f"backbone_config: unknown keys {unknown}, missing keys {missing}")
        if not isinstance(lora_rank, int) or lora_rank < 0:
            raise ValueError(f"lora_rank must be an int >= 0, got {lora_rank!r}")
        self.num_channels = num_channels
        self.cond_dim = cond_dim
        self.grid_size = _grid(grid_size)
        self.backbone_config = dict(backbone_config)
        self.num_layers_to_keep = resolve_layers_to_keep(backbone_config["num_layers"], num_layers_to_keep)
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.residual = residual

        hidden = backbone_config["hidden_dim"]
        self.in_proj = keras.layers.Dense(hidden, name="in_proj")
        self.position = InternViTPositionEmbedding(
            hidden, backbone_config["image_size"] // backbone_config["patch_size"], name="position"
        )
        self.blocks = make_blocks(self.num_layers_to_keep, **backbone_config)
        self.out_proj = keras.layers.Dense(
            num_channels, kernel_initializer="zeros" if residual else "glorot_uniform", name="out_proj"
        )

    def build(self, z_hat_shape, c_shape=None):
        h, w = self.grid_size
        hidden = self.backbone_config["hidden_dim"]
        tokens = (None, h * w + 1, hidden)
        self.in_proj.build((None, h * w, self.num_channels + self.cond_dim))
        self.position.build((None, h * w, hidden))
        for block in self.blocks:
            block.build(tokens)
        self.out_proj.build(tokens)
        if self.lora_rank:
            apply_lora([self.position, *self.blocks], self.lora_rank, self.lora_alpha, self.lora_dropout)

    def call(self, z_hat, c, training=None):
        h, w = self.grid_size
        shape = tuple(z_hat.shape[1:])
        if shape != (h, w, self.num_channels):
            raise ValueError(f"z_hat must be [B, {h}, {w}, {self.num_channels}], got {tuple(z_hat.shape)}")
        if tuple(c.shape[1:]) != (self.cond_dim,):
            raise ValueError(f"c must be [B, {self.cond_dim}], got {tuple(c.shape)}")
        batch = ops.shape(z_hat)[0]
        tokens = ops.reshape(z_hat, (batch, h * w, self.num_channels))
        if self.cond_dim:
            cond = ops.broadcast_to(ops.expand_dims(c, 1), (batch, h * w, self.cond_dim))
            tokens = ops.concatenate([tokens, ops.cast(cond, tokens.dtype)], axis=-1)
        x = self.position(self.in_proj(tokens), grid=(h, w))
        for block in self.blocks:
            x = block(x, training=training)
        out = ops.reshape(self.out_proj(x[:, 1:]), (batch, h, w, self.num_channels))
        return z_hat + out if self.residual else out

    def load_pretrained(self, weights_dir: str | Path) -> str:
        """Fill the class token, position embeddings and kept blocks from a local
        InternVL snapshot (the projections keep their initialization)."""
        if not self.built:
            raise ValueError("ViTCompensation.load_pretrained: build the layer first")
        return load_internvit_weights(weights_dir, self.position, self.blocks)

    def merge_lora(self) -> int:
        """Fold LoRA into the block kernels for inference; returns projections merged."""
        return merge_lora(self.blocks)

    def compute_output_shape(self, z_hat_shape, c_shape=None):
        return z_hat_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_channels": self.num_channels,
            "cond_dim": self.cond_dim,
            "grid_size": list(self.grid_size),
            "backbone_config": self.backbone_config,
            "num_layers_to_keep": self.num_layers_to_keep,
            "lora_rank": self.lora_rank,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "residual": self.residual,
        }


def build_compensation(
    name: str, num_channels: int, cond_dim: int, grid_size, **kwargs
) -> keras.layers.Layer:
    """The receiver's compensation module ``name`` (one of :data:`COMPENSATIONS`), built.

    ``internvit-300m`` kwargs: ``weights_dir`` (required, a local InternVL3.5-1B
    snapshot), ``num_layers_to_keep=12``, ``lora_rank=16``, ``lora_alpha=32``,
    ``lora_dropout=0.05``, ``residual=True``.
    ``vit-small`` kwargs: ``hidden_dim=192``, ``num_layers=4``, ``num_heads=3``,
    ``intermediate_dim=768``, ``lora_rank=0``, ``lora_alpha``, ``lora_dropout``,
    ``residual=True``.
    Returns a :class:`ViTCompensation` (see there for ``call``).
    """
    grid = _grid(grid_size)
    common = {"lora_alpha": None, "lora_dropout": 0.05, "residual": True}
    if name == "internvit-300m":
        allowed = {"weights_dir": None, "num_layers_to_keep": 12, "lora_rank": 16, **common, "lora_alpha": 32}
    elif name == "vit-small":
        allowed = {
            "hidden_dim": 192,
            "num_layers": 4,
            "num_heads": 3,
            "intermediate_dim": 768,
            "lora_rank": 0,
            **common,
        }
    else:
        raise ValueError(
            f"unknown compensation {name!r}; known: {list(COMPENSATIONS)} "
            "('none' means no compensation layer and is handled by the system)"
        )
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"compensation {name!r}: unknown kwargs {unknown}; allowed: {sorted(allowed)}")
    options = {**allowed, **kwargs}
    layer_options = {k: options[k] for k in ("lora_rank", "lora_alpha", "lora_dropout", "residual")}

    if name == "internvit-300m":
        weights_dir = options["weights_dir"]
        if weights_dir is None:
            raise ValueError(
                "compensation 'internvit-300m' needs weights_dir, a local snapshot of "
                "OpenGVLab/InternVL3_5-1B (see docs/internvit.md); use 'vit-small' for a "
                "random-initialized ViT without pretrained weights"
            )
        config = read_vision_config(weights_dir)
        if (config["hidden_dim"], config["num_layers"]) != INTERNVIT_300M_SHAPE:
            raise ValueError(
                f"weights_dir={weights_dir}: vision tower has hidden_dim={config['hidden_dim']} and "
                f"num_layers={config['num_layers']}, not InternViT-300M {INTERNVIT_300M_SHAPE}"
            )
        layer = ViTCompensation(
            num_channels, cond_dim, grid, config, options["num_layers_to_keep"], **layer_options
        )
        _build(layer, grid, num_channels, cond_dim)
        layer.load_pretrained(weights_dir)
        return layer

    h, w = grid
    sizes = {k: options[k] for k in ("hidden_dim", "num_layers", "num_heads", "intermediate_dim")}
    config = {**get_preset("vit-small"), **sizes, "image_size": max(h, w)}
    layer = ViTCompensation(num_channels, cond_dim, grid, config, sizes["num_layers"], **layer_options)
    _build(layer, grid, num_channels, cond_dim)
    return layer


def _build(layer: ViTCompensation, grid, num_channels: int, cond_dim: int) -> None:
    layer.build((None, *grid, num_channels), (None, cond_dim))
