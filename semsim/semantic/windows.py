"""Window arithmetic of the Swin blocks (:mod:`semsim.semantic.swin`): partitioning a token
grid ``[B, H, W, C]`` into windows and back, the relative-position index of a window, and
the additive attention mask of shifted and padded windows. Plain tensors and NumPy arrays;
no layers, no weights."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

#: Additive attention-mask value for forbidden (query, key) pairs (softmax weight ~ e^-100).
MASK_VALUE = -100.0


def window_partition(x: tf.Tensor, window_size: int) -> tf.Tensor:
    """Split ``x`` ``[B, H, W, C]`` into windows ``[B * nW, window_size**2, C]``.

    ``H`` and ``W`` must be multiples of ``window_size``. Windows are ordered row-major over the
    grid of windows, tokens row-major inside each window.
    """
    _, h, w, c = x.shape
    ws = window_size
    x = tf.reshape(x, [-1, h // ws, ws, w // ws, ws, c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, ws * ws, c])


def window_reverse(windows: tf.Tensor, window_size: int, height: int, width: int) -> tf.Tensor:
    """Inverse of :func:`window_partition`: ``[B * nW, ws**2, C]`` -> ``[B, H, W, C]``."""
    ws = window_size
    c = windows.shape[-1]
    x = tf.reshape(windows, [-1, height // ws, width // ws, ws, ws, c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, height, width, c])


def relative_position_index(window_size: int) -> np.ndarray:
    """Index into the relative-position bias table for every (query, key) pair of a window.

    Returns an ``int32`` array ``[ws**2, ws**2]`` with values in ``[0, (2 ws - 1)**2)``: the
    row/column offsets ``(dr, dc)`` of key minus query, each in ``[-(ws-1), ws-1]``, are
    shifted to be non-negative and combined as ``(dr + ws - 1) * (2 ws - 1) + (dc + ws - 1)``.
    """
    ws = window_size
    rows, cols = np.meshgrid(np.arange(ws), np.arange(ws), indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    dr = rows[None, :] - rows[:, None] + ws - 1
    dc = cols[None, :] - cols[:, None] + ws - 1
    return (dr * (2 * ws - 1) + dc).astype(np.int32)


def attention_mask(height: int, width: int, window_size: int, shift_size: int) -> np.ndarray | None:
    """Additive attention mask for (shifted) windows on a ``height x width`` grid.

    The grid is padded to multiples of ``window_size`` (bottom/right) and cyclically shifted by
    ``-shift_size`` in both directions, as in the block. In the shifted frame, the last
    ``shift_size`` rows (columns) hold tokens that wrapped around from the top (left); two
    tokens of one window may attend to each other only when both or neither wrapped, in rows
    and in columns (Swin's shifted-window rule), and the key is not padding. Returns ``float32``
    ``[nW, ws**2, ws**2]`` with ``0`` (allowed) or :data:`MASK_VALUE`, or ``None`` when every
    pair is allowed (no shift, no padding).
    """
    ws = window_size
    hp, wp = -(-height // ws) * ws, -(-width // ws) * ws
    if shift_size == 0 and (hp, wp) == (height, width):
        return None
    region = np.zeros((hp, wp), np.int64)
    if shift_size > 0:
        bounds = (slice(0, -ws), slice(-ws, -shift_size), slice(-shift_size, None))
        label = 0
        for rs in bounds:
            for cs in bounds:
                region[rs, cs] = label
                label += 1
    padding = np.zeros((hp, wp), bool)
    padding[height:, :] = True
    padding[:, width:] = True
    padding = np.roll(padding, (-shift_size, -shift_size), axis=(0, 1))

    def windows(a: np.ndarray) -> np.ndarray:
        a = a.reshape(hp // ws, ws, wp // ws, ws).transpose(0, 2, 1, 3)
        return a.reshape(-1, ws * ws)

    reg, pad = windows(region), windows(padding)
    allowed = (reg[:, :, None] == reg[:, None, :]) & ~pad[:, None, :]
    return np.where(allowed, 0.0, MASK_VALUE).astype(np.float32)
