"""Load InternViT weights from a local Hugging Face snapshot of InternVL.

Two key layouts are understood (detected from the tensor names):

* ``original`` (``OpenGVLab/InternVL3_5-1B``): ``vision_model.embeddings.{class_embedding,
  position_embedding, patch_embedding}``, ``vision_model.encoder.layers.N.{norm1, norm2,
  attn.qkv, attn.q_norm, attn.k_norm, attn.proj, ls1, ls2, mlp.fc1, mlp.fc2}``;
* ``hf`` (``OpenGVLab/InternVL3_5-1B-HF``, transformers' ``InternVLVisionModel``):
  ``[model.]vision_tower.embeddings.{cls_token, position_embeddings,
  patch_embeddings.projection}``, ``...encoder.layer.N.{layernorm_before,
  layernorm_after, attention.{q,k,v}_proj, attention.{q,k}_norm,
  attention.projection_layer, lambda_1, lambda_2, mlp.fc1, mlp.fc2}``.

Only the vision-tower tensors of the kept blocks are read, key by key (the language
model is never loaded). Tensors are converted to ``float32`` (``BF16`` included);
PyTorch Linear weights ``[out, in]`` are transposed to Keras kernels ``[in, out]``,
conv weights OIHW to HWIO, split ``q/k/v`` projections are fused in the order
``[q, k, v]``. Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
from safetensors import safe_open

from semsim.semantic.internvit.presets import CHECKPOINTS

INDEX_FILE = "model.safetensors.index.json"

_LAYOUT_MARKERS = {
    "original": "embeddings.patch_embedding.weight",
    "hf": "embeddings.patch_embeddings.projection.weight",
}


def download_hint(directory: str | Path) -> str:
    """What to download and where to put it (used in error messages)."""
    return (
        f"download the snapshot {CHECKPOINTS['original']!r} (or {CHECKPOINTS['hf']!r}) once, "
        f"e.g. `hf download {CHECKPOINTS['original']} --include '*.json' '*.safetensors' "
        f"--local-dir {directory}`, so that {directory} holds config.json and the "
        "*.safetensors files (see docs/internvit.md); semsim never downloads weights"
    )


class SafetensorsSnapshot:
    """Lazy, key-by-key reader of the ``*.safetensors`` files of one directory.

    ``keys`` maps every tensor name to its file (from ``model.safetensors.index.json``
    when present, otherwise from the headers of all ``*.safetensors`` files).
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise FileNotFoundError(
                f"weights directory {self.directory} does not exist: {download_hint(directory)}"
            )
        index = self.directory / INDEX_FILE
        if index.is_file():
            weight_map = json.loads(index.read_text())["weight_map"]
            self.keys = {key: self.directory / name for key, name in weight_map.items()}
        else:
            self.keys = {}
            for path in sorted(self.directory.glob("*.safetensors")):
                with safe_open(path, framework="numpy") as f:
                    self.keys.update(dict.fromkeys(f.keys(), path))
        if not self.keys:
            raise FileNotFoundError(
                f"no *.safetensors weights in {self.directory}: {download_hint(directory)}"
            )

    def shape(self, key: str) -> tuple[int, ...]:
        with safe_open(self.keys[key], framework="numpy") as f:
            return tuple(f.get_slice(key).get_shape())

    def read(self, key: str) -> np.ndarray:
        """Tensor ``key`` as a ``float32`` numpy array (BF16, F16, F32, F64 accepted)."""
        path = self.keys[key]
        with safe_open(path, framework="numpy") as f:
            dtype = f.get_slice(key).get_dtype()
            if dtype != "BF16":
                return np.asarray(f.get_tensor(key), dtype=np.float32)
        return _read_bf16(path, key)


def _read_bf16(path: Path, key: str) -> np.ndarray:
    """Read one BF16 tensor from its byte range (numpy has no bfloat16 dtype, so
    ``safe_open(framework="numpy")`` cannot return it): a bfloat16 is the upper half of
    a float32."""
    with open(path, "rb") as f:
        header_size = int.from_bytes(f.read(8), "little")
        entry = json.loads(f.read(header_size))[key]
        start, end = entry["data_offsets"]
        f.seek(8 + header_size + start)
        raw = np.frombuffer(f.read(end - start), dtype="<u2")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(entry["shape"])


def detect_layout(keys: Sequence[str]) -> tuple[str, str]:
    """``(layout, prefix)`` of the vision tower in a checkpoint's tensor names.

    ``layout`` is ``"original"`` or ``"hf"``; ``prefix`` is what precedes
    ``embeddings.`` (e.g. ``"vision_model."`` or ``"model.vision_tower."``).
    """
    found = []
    for layout, marker in _LAYOUT_MARKERS.items():
        for key in keys:
            if key.endswith(marker):
                prefix = key[: -len(marker)]
                if layout == "original" and not prefix.endswith("vision_model."):
                    continue
                found.append((layout, prefix))
    if len(found) != 1:
        raise ValueError(
            "cannot find exactly one InternViT vision tower in the checkpoint "
            f"(found {found or 'none'}); expected a tensor ending in "
            f"'vision_model.{_LAYOUT_MARKERS['original']}' (original layout) or "
            f"'vision_tower.{_LAYOUT_MARKERS['hf']}' (HF layout)"
        )
    return found[0]


def read_vision_config(directory: str | Path) -> dict:
    """Backbone keyword arguments from the ``vision_config`` of ``config.json``.

    Understands both the original InternVL chat config (``qkv_bias``,
    ``qk_normalization``) and transformers' ``InternVLConfig`` (``attention_bias``,
    ``use_qk_norm``, ``layer_scale_init_value``).
    """
    path = Path(directory).expanduser() / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json in {directory}: {download_hint(directory)}")
    config = json.loads(path.read_text())
    vision = config.get("vision_config", config)

    def scalar(value):
        if isinstance(value, list | tuple):
            if len(set(value)) != 1:
                raise ValueError(f"non-square image_size/patch_size {value} is not supported")
            return value[0]
        return value

    required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    missing = [name for name in required if name not in vision]
    if missing:
        raise ValueError(f"{path}: vision_config lacks {missing}; is this an InternVL config?")
    act = vision.get("hidden_act", "gelu")
    if act != "gelu":
        raise ValueError(f"{path}: hidden_act={act!r} is not supported (only 'gelu')")
    return {
        "image_size": int(scalar(vision.get("image_size", 448))),
        "patch_size": int(scalar(vision.get("patch_size", 14))),
        "num_channels": int(vision.get("num_channels", 3)),
        "hidden_dim": int(vision["hidden_size"]),
        "num_layers": int(vision["num_hidden_layers"]),
        "num_heads": int(vision["num_attention_heads"]),
        "intermediate_dim": int(vision["intermediate_size"]),
        "layer_norm_epsilon": float(vision.get("layer_norm_eps", 1e-6)),
        "norm_type": vision.get("norm_type", "layer_norm"),
        "use_qk_norm": bool(vision.get("qk_normalization", vision.get("use_qk_norm", False))),
        "qkv_bias": bool(vision.get("qkv_bias", vision.get("attention_bias", True))),
        "layer_scale_init": float(vision.get("layer_scale_init_value", 0.1)),
    }


@dataclasses.dataclass
class _Entry:
    """One Keras variable and how to make its value from checkpoint tensors."""

    variable: keras.Variable
    keys: tuple[str, ...]
    transform: Callable[..., np.ndarray]


def _linear(w):  # torch Linear [out, in] -> Keras kernel [in, out]
    return w.T


def _fused_linear(wq, wk, wv):
    return np.concatenate([wq, wk, wv], axis=0).T


def _concat(*parts):
    return np.concatenate(parts, axis=0)


def _flat(x):
    return x.reshape(x.shape[-1])


def _table(x):
    return x.reshape(x.shape[-2], x.shape[-1])


def _conv(w):  # OIHW -> HWIO
    return w.transpose(2, 3, 1, 0)


def _same(x):
    return x


def _norm_entries(norm: keras.layers.Layer, key: str) -> list[_Entry]:
    if isinstance(norm, keras.layers.LayerNormalization):
        return [
            _Entry(norm.gamma, (f"{key}.weight",), _same),
            _Entry(norm.beta, (f"{key}.bias",), _same),
        ]
    return [_Entry(norm.weight, (f"{key}.weight",), _same)]


def _entries(layout, prefix, position, blocks, patch) -> list[_Entry]:
    e = prefix + "embeddings."
    if layout == "original":
        out = [
            _Entry(position.class_embedding, (e + "class_embedding",), _flat),
            _Entry(position.position_embedding, (e + "position_embedding",), _table),
        ]
        if patch is not None:
            out += [
                _Entry(patch.conv.kernel, (e + "patch_embedding.weight",), _conv),
                _Entry(patch.conv.bias, (e + "patch_embedding.bias",), _same),
            ]
        for i, block in enumerate(blocks):
            b = f"{prefix}encoder.layers.{i}."
            out += _norm_entries(block.norm1, b + "norm1") + _norm_entries(block.norm2, b + "norm2")
            out.append(_Entry(block.qkv.kernel, (b + "attn.qkv.weight",), _linear))
            if block.qkv_bias:
                out.append(_Entry(block.qkv.bias, (b + "attn.qkv.bias",), _same))
            if block.use_qk_norm:
                out += _norm_entries(block.q_norm, b + "attn.q_norm")
                out += _norm_entries(block.k_norm, b + "attn.k_norm")
            for layer, name in ((block.proj, "attn.proj"), (block.fc1, "mlp.fc1"), (block.fc2, "mlp.fc2")):
                out.append(_Entry(layer.kernel, (f"{b}{name}.weight",), _linear))
                out.append(_Entry(layer.bias, (f"{b}{name}.bias",), _same))
            out.append(_Entry(block.ls1, (b + "ls1",), _same))
            out.append(_Entry(block.ls2, (b + "ls2",), _same))
        return out
    out = [
        _Entry(position.class_embedding, (e + "cls_token",), _flat),
        _Entry(position.position_embedding, (e + "position_embeddings",), _table),
    ]
    if patch is not None:
        out += [
            _Entry(patch.conv.kernel, (e + "patch_embeddings.projection.weight",), _conv),
            _Entry(patch.conv.bias, (e + "patch_embeddings.projection.bias",), _same),
        ]
    for i, block in enumerate(blocks):
        b = f"{prefix}encoder.layer.{i}."
        a = b + "attention."
        out += _norm_entries(block.norm1, b + "layernorm_before")
        out += _norm_entries(block.norm2, b + "layernorm_after")
        qkv = tuple(f"{a}{p}_proj.weight" for p in "qkv")
        out.append(_Entry(block.qkv.kernel, qkv, _fused_linear))
        if block.qkv_bias:
            out.append(_Entry(block.qkv.bias, tuple(f"{a}{p}_proj.bias" for p in "qkv"), _concat))
        if block.use_qk_norm:
            out += _norm_entries(block.q_norm, a + "q_norm")
            out += _norm_entries(block.k_norm, a + "k_norm")
        for layer, name in (
            (block.proj, "attention.projection_layer"),
            (block.fc1, "mlp.fc1"),
            (block.fc2, "mlp.fc2"),
        ):
            out.append(_Entry(layer.kernel, (f"{b}{name}.weight",), _linear))
            out.append(_Entry(layer.bias, (f"{b}{name}.bias",), _same))
        out.append(_Entry(block.ls1, (b + "lambda_1",), _same))
        out.append(_Entry(block.ls2, (b + "lambda_2",), _same))
    return out


def load_internvit_weights(
    directory: str | Path,
    position_embedding,
    blocks: Sequence,
    patch_embedding=None,
) -> str:
    """Assign checkpoint tensors to built InternViT layers; returns the layout found.

    ``position_embedding``: an :class:`InternViTPositionEmbedding` (class token and
    position table); ``blocks``: the kept :class:`InternViTBlock` layers, filled from
    checkpoint blocks ``0 .. len(blocks) - 1``; ``patch_embedding``: an optional
    :class:`InternViTPatchEmbedding` (the compensation module has none). Every tensor is
    checked before any is assigned; all missing or mis-shaped tensors are reported in
    one ``ValueError`` naming the key, the checkpoint shape and the expected shape.
    """
    snapshot = SafetensorsSnapshot(directory)
    layout, prefix = detect_layout(list(snapshot.keys))
    entries = _entries(layout, prefix, position_embedding, list(blocks), patch_embedding)
    problems = [
        f"missing tensor {key!r}" for entry in entries for key in entry.keys if key not in snapshot.keys
    ]
    if problems:
        raise ValueError(_report(directory, layout, problems))
    for entry in entries:  # shapes only: zero-stride stand-ins, nothing is read yet
        stand_ins = [np.broadcast_to(np.float32(0), snapshot.shape(key)) for key in entry.keys]
        expected = tuple(entry.variable.shape)
        try:
            converted = entry.transform(*stand_ins).shape
        except ValueError:
            converted = None
        if converted != expected:
            shapes = ", ".join(f"{k!r} {p.shape}" for k, p in zip(entry.keys, stand_ins, strict=True))
            got = "" if converted is None else f" (converted {converted})"
            problems.append(f"{shapes}{got}; model expects {expected} for {entry.variable.path}")
    if problems:
        raise ValueError(_report(directory, layout, problems))
    for entry in entries:
        entry.variable.assign(entry.transform(*[snapshot.read(key) for key in entry.keys]))
    return layout


def _report(directory, layout, problems) -> str:
    shown = "\n  ".join(problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    return (
        f"checkpoint in {directory} ({layout} layout) does not match the InternViT "
        f"configuration ({len(problems)} problem(s)):\n  {shown}{more}"
    )
