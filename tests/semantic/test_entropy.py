"""2D entropy: hand-computed values, an independent loop-based NumPy reference, XLA."""

import numpy as np
import pytest
import tensorflow as tf

from semsim.semantic.entropy import entropy_2d, neighbourhood_mean, quantize_maps


def _numpy_entropy_2d(m: np.ndarray, levels: int) -> float:
    """Loop-based reference for one map ``[h, w]`` (module docstring definition)."""
    lo, hi = m.min(), m.max()
    q = np.zeros(m.shape, int) if hi == lo else np.floor((m - lo) / (hi - lo) * levels)
    q = np.clip(q, 0, levels - 1).astype(int)
    h, w = m.shape
    pairs = []
    for r in range(h):
        for c in range(w):
            window = q[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2]
            j = int(np.floor(window.sum() / window.size + 0.5))
            pairs.append((q[r, c], j))
    _, counts = np.unique(np.array(pairs), axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def test_constant_map_has_zero_entropy():
    maps = tf.fill([2, 4, 4, 3], 0.7)
    np.testing.assert_array_equal(entropy_2d(maps).numpy(), np.zeros((2, 3)))


def test_checkerboard_hand_computed():
    # 4x4 two-level checkerboard, G = 256 -> gray levels 0 and 255.
    # Interior pixels (4): 5 same + 4 opposite in the 3x3 window:
    #   255 -> mean 5*255/9 = 141.67 -> 142 ; 0 -> 4*255/9 = 113.33 -> 113  (2 pixels each)
    # Edge pixels (8, 6 in-map neighbours incl. itself: 3 of each level) and corners
    #   (4, 4 in-map: 2 of each): mean 127.5 -> 128, 6 pixels of each level.
    # Pairs: (255,142) x2, (0,113) x2, (255,128) x6, (0,128) x6 out of 16:
    # H = -2 (2/16) log2(2/16) - 2 (6/16) log2(6/16) = 0.75 + 0.75 log2(8/3) bits.
    board = (np.indices((4, 4)).sum(0) % 2).astype(np.float32)
    expected = 0.75 + 0.75 * np.log2(8.0 / 3.0)
    got = entropy_2d(tf.constant(board[None, :, :, None])).numpy()
    np.testing.assert_allclose(got, [[expected]], rtol=1e-6)


def test_neighbourhood_mean_border_truncation():
    q = tf.constant(np.arange(9, dtype=np.int32).reshape(1, 3, 3, 1))
    got = neighbourhood_mean(q).numpy()[0, :, :, 0]
    # corner (0,0): mean(0,1,3,4) = 2 ; edge (0,1): mean(0,1,2,3,4,5) = 2.5 -> 3 ; centre: 4
    assert got[0, 0] == 2 and got[0, 1] == 3 and got[1, 1] == 4 and got[2, 2] == 6


@pytest.mark.parametrize("levels", [4, 256])
def test_matches_loop_reference_on_random_maps(levels):
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(3, 5, 6, 4)).astype(np.float32)
    maps[1, ..., 2] = np.round(maps[1, ..., 2])  # repeated values
    got = entropy_2d(tf.constant(maps), levels).numpy()
    expected = [[_numpy_entropy_2d(maps[b, ..., c], levels) for c in range(4)] for b in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_xla_matches_eager_and_no_gradient():
    maps = tf.random.normal([4, 8, 8, 16])
    eager = entropy_2d(maps).numpy()
    xla = tf.function(entropy_2d, jit_compile=True)(maps).numpy()
    np.testing.assert_allclose(xla, eager, atol=1e-5)
    assert np.all(eager <= np.log2(64) + 1e-5)
    with tf.GradientTape() as tape:
        tape.watch(maps)
        total = tf.reduce_sum(entropy_2d(maps))
    assert tape.gradient(total, maps) is None


def test_quantize_range_and_bad_levels():
    q = quantize_maps(tf.constant([[[[0.0], [0.5]], [[0.999], [1.0]]]]), 4).numpy().ravel()
    np.testing.assert_array_equal(q, [0, 2, 3, 3])
    with pytest.raises(ValueError, match="levels"):
        entropy_2d(tf.zeros([1, 2, 2, 1]), levels=1)
