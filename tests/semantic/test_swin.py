"""Swin blocks: window plumbing, relative position bias, shifted-window mask, stages."""

import numpy as np
import pytest
import tensorflow as tf

from semsim.semantic.swin import (
    PatchMerging,
    PatchReverseMerging,
    SwinBlock,
    SwinDecoder,
    SwinEncoder,
    SwinStage,
    WindowAttention,
)
from semsim.semantic.windows import (
    MASK_VALUE,
    attention_mask,
    relative_position_index,
    window_partition,
    window_reverse,
)

TINY = dict(dims=(8, 12), depths=(1, 2), heads=(2, 3), window_size=2)


def test_window_partition_layout_and_round_trip():
    x = np.arange(2 * 4 * 6 * 3, dtype=np.float32).reshape(2, 4, 6, 3)
    windows = window_partition(tf.constant(x), 2).numpy()
    assert windows.shape == (2 * 2 * 3, 4, 3)
    # Window (image 1, window row 1, window col 2) holds pixels rows 2..3, cols 4..5.
    expected = x[1, 2:4, 4:6].reshape(4, 3)
    np.testing.assert_array_equal(windows[1 * 6 + 1 * 3 + 2], expected)
    np.testing.assert_array_equal(window_reverse(tf.constant(windows), 2, 4, 6).numpy(), x)


def test_relative_position_index_decodes_to_coordinate_offsets():
    ws = 3
    index = relative_position_index(ws)
    coords = [(r, c) for r in range(ws) for c in range(ws)]
    for i, (ri, ci) in enumerate(coords):
        for j, (rj, cj) in enumerate(coords):
            dr, dc = divmod(int(index[i, j]), 2 * ws - 1)
            assert (dr - (ws - 1), dc - (ws - 1)) == (rj - ri, cj - ci)
    assert index.max() == (2 * ws - 1) ** 2 - 1


def _reference_mask(h, w, ws, shift):
    """Independent rule: after a cyclic shift by ``ws // 2``, two tokens of a window may
    attend iff neither or both of their original rows (and columns) wrapped around, and the
    key is not padding."""
    hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
    mask = []
    for wr in range(hp // ws):
        for wc in range(wp // ws):
            toks = [(wr * ws + r, wc * ws + c) for r in range(ws) for c in range(ws)]
            m = np.zeros((ws * ws, ws * ws), np.float32)
            for i, (ri, ci) in enumerate(toks):
                for j, (rj, cj) in enumerate(toks):
                    same = ((ri + shift >= hp) == (rj + shift >= hp)) and (
                        (ci + shift >= wp) == (cj + shift >= wp)
                    )
                    orig_r, orig_c = (rj + shift) % hp, (cj + shift) % wp
                    pad = orig_r >= h or orig_c >= w
                    m[i, j] = 0.0 if same and not pad else MASK_VALUE
            mask.append(m)
    return np.stack(mask)


@pytest.mark.parametrize("h, w, ws", [(8, 8, 4), (4, 6, 2), (6, 6, 4), (9, 9, 4)])
def test_attention_mask_matches_wrap_rule(h, w, ws):
    shift = ws // 2
    np.testing.assert_array_equal(attention_mask(h, w, ws, shift), _reference_mask(h, w, ws, shift))


def test_attention_mask_none_without_shift_or_padding():
    assert attention_mask(8, 8, 4, 0) is None
    assert attention_mask(6, 6, 4, 0) is not None  # padding keys must be masked


def test_window_attention_matches_numpy():
    tf.random.set_seed(0)
    ws, dim, heads = 2, 6, 2
    layer = WindowAttention(dim, heads, ws)
    x = tf.random.normal([3, ws * ws, dim])
    layer(x)
    table = np.random.default_rng(0).normal(size=layer.bias_table.shape).astype(np.float32)
    layer.bias_table.assign(table)
    mask = np.where(np.random.default_rng(1).random((3, 4, 4)) < 0.3, MASK_VALUE, 0.0)
    mask = mask.astype(np.float32)
    out = layer(x, attn_mask=mask).numpy()

    wq, bq = (v.numpy() for v in layer.qkv.weights)
    wp, bp = (v.numpy() for v in layer.proj.weights)
    xn = x.numpy()
    qkv = xn @ wq + bq  # [3, 4, 18]
    hd = dim // heads
    index = relative_position_index(ws)
    expected = np.zeros_like(xn)
    for b in range(3):
        head_out = []
        for hh in range(heads):
            q = qkv[b, :, hh * hd : (hh + 1) * hd]
            k = qkv[b, :, dim + hh * hd : dim + (hh + 1) * hd]
            v = qkv[b, :, 2 * dim + hh * hd : 2 * dim + (hh + 1) * hd]
            logits = q @ k.T / np.sqrt(hd) + table[index, hh] + mask[b]
            p = np.exp(logits - logits.max(-1, keepdims=True))
            head_out.append((p / p.sum(-1, keepdims=True)) @ v)
        expected[b] = np.concatenate(head_out, -1) @ wp + bp
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_regular_block_is_window_local():
    block = SwinBlock(8, 2, window_size=4, shifted=False)
    x = tf.random.normal([1, 8, 8, 8])
    base = block(x).numpy()
    bumped = block(tf.tensor_scatter_nd_add(x, [[0, 1, 1]], tf.random.normal([1, 8]))).numpy()
    changed = np.abs(bumped - base).max(-1)[0] > 1e-6
    expected = np.zeros((8, 8), bool)
    expected[:4, :4] = True  # the top-left window only
    np.testing.assert_array_equal(changed, expected)


def test_shifted_block_masks_wrapped_tokens():
    # Token (0, 0) lands, after the cyclic shift, in the bottom-right window next to
    # tokens of the far corner; the mask must keep it from influencing them.
    block = SwinBlock(8, 2, window_size=4, shifted=True)
    x = tf.random.normal([1, 8, 8, 8])
    base = block(x).numpy()
    bumped = block(tf.tensor_scatter_nd_add(x, [[0, 0, 0]], tf.random.normal([1, 8]))).numpy()
    changed = np.abs(bumped - base).max(-1)[0] > 1e-6
    expected = np.zeros((8, 8), bool)
    expected[:2, :2] = True  # its own (wrapped) region: original rows/cols 0..1
    np.testing.assert_array_equal(changed, expected)


def test_block_single_window_has_no_shift():
    block = SwinBlock(8, 2, window_size=8, shifted=True)
    block(tf.zeros([1, 4, 4, 8]))
    assert block.eff_window == 4 and block.eff_shift == 0 and block._mask is None


def test_patch_merging_order_and_reverse_shape():
    x = np.arange(1 * 4 * 4 * 2, dtype=np.float32).reshape(1, 4, 4, 2)
    layer = PatchMerging(3)
    layer(tf.constant(x))
    concat = np.concatenate([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    mean = concat.mean(-1, keepdims=True)
    normed = (concat - mean) / np.sqrt(concat.var(-1, keepdims=True) + 1e-5)
    expected = normed @ layer.reduction.kernel.numpy()
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert PatchReverseMerging(5, factor=2)(tf.zeros([2, 3, 4, 7])).shape == (2, 6, 8, 5)


@pytest.mark.parametrize("size", [32, 64, 36])
def test_encoder_decoder_shapes(size):
    enc = SwinEncoder(5, conditioned=True, **TINY)
    dec = SwinDecoder(dims=(12, 8), depths=(2, 1), heads=(3, 2), window_size=2, conditioned=True)
    c = tf.random.normal([2, 4])
    z = enc(tf.random.uniform([2, size, size, 3]), c)
    assert z.shape == (2, size // 4, size // 4, 5)
    y = dec(z, c).numpy()
    assert y.shape == (2, size, size, 3)
    assert np.all((y > 0) & (y < 1))


def test_stage_alternates_shift_and_requires_condition():
    stage = SwinStage(8, 3, 2, window_size=4, conditioned=True)
    assert [b.shifted for b in stage.blocks] == [False, True, False]
    with pytest.raises(ValueError, match="condition"):
        stage(tf.zeros([1, 8, 8, 8]))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="divisible"):
        WindowAttention(10, 3, 2)
    with pytest.raises(ValueError, match="equal length"):
        SwinEncoder(4, dims=(8, 8), depths=(1,), heads=(2, 2))
    with pytest.raises(ValueError, match="multiple of 4"):
        SwinEncoder(4, **TINY)(tf.zeros([1, 30, 30, 3]))
