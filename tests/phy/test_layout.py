"""The one symbol layout (semsim.phy.layout): compaction, antenna placement, real pairing."""

import numpy as np
import pytest
import tensorflow as tf

from semsim.phy import layout


def test_place_deals_round_robin_and_marks_the_tail_unsent():
    # 5 symbols on 2 antennas -> 3 channel uses: symbol n on antenna n % 2, use n // 2.
    s = tf.constant([[1, 2, 3, 4, 5]], tf.complex64)
    x, sent = layout.place(s, 2)
    np.testing.assert_array_equal(x.numpy()[0], [[1, 3, 5], [2, 4, 0]])
    np.testing.assert_array_equal(sent.numpy()[0], [[1, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(layout.unplace(x, 5).numpy(), s.numpy())
    assert layout.num_channel_uses(5, 2) == 3 and layout.num_channel_uses(6, 3) == 2


def test_pruned_symbols_take_no_channel_use():
    # Keeping 4 of 6 symbols on 2 antennas fills 2 channel uses completely: both streams
    # interfere in every use (no zero holes), the third use is not sent.
    s = tf.constant([[1, 2, 3, 4, 5, 6]], tf.complex64)
    keep = tf.constant([[1.0, 0, 1, 1, 0, 1]])
    x, sent = layout.place(s, 2, keep)
    np.testing.assert_array_equal(x.numpy()[0], [[1, 4, 0], [3, 6, 0]])
    np.testing.assert_array_equal(sent.numpy()[0], [[1, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(layout.unplace(x, 6, keep).numpy(), [[1, 0, 3, 4, 0, 6]])


def test_pack_reals_pairs_kept_reals_and_round_trips():
    z = tf.constant(np.arange(1, 12, dtype=np.float32)[None])  # R = 11 reals
    keep = tf.constant([[1.0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1]])  # 8 kept -> 4 complex symbols
    x, sent = layout.pack_reals(z, 2, keep)
    assert x.shape == (1, 2, 3)  # ceil(ceil(11 / 2) / 2) channel uses
    np.testing.assert_array_equal(x.numpy()[0], [[1 + 3j, 7 + 8j, 0], [4 + 6j, 10 + 11j, 0]])
    np.testing.assert_array_equal(sent.numpy()[0], [[1, 1, 0], [1, 1, 0]])
    back = layout.unpack_reals(x, 11, keep).numpy()
    np.testing.assert_array_equal(back, (z * keep).numpy())
    # Without a mask: consecutive pairs, odd R padded with one zero imaginary part.
    x, sent = layout.pack_reals(z, 2)
    np.testing.assert_array_equal(x.numpy()[0], [[1 + 2j, 5 + 6j, 9 + 10j], [3 + 4j, 7 + 8j, 11]])
    assert sent.numpy().sum() == 6
    np.testing.assert_array_equal(layout.unpack_reals(x, 11).numpy(), z.numpy())


def test_odd_kept_count_sends_half_a_symbol_and_multi_user_shapes():
    z = tf.random.normal([3, 2, 10], seed=1)  # [B, K, R]: each user lays out its own reals
    keep = tf.constant(np.tile([1.0] * 5 + [0.0] * 5, (3, 2, 1)), tf.float32)
    x, sent = layout.pack_reals(z, 1, keep)
    assert x.shape == (3, 2, 1, 5)
    np.testing.assert_array_equal(sent.numpy().sum(axis=(2, 3)), np.full((3, 2), 3))
    np.testing.assert_allclose(layout.unpack_reals(x, 10, keep).numpy(), (z * keep).numpy())


def test_gradients_reach_kept_values_only():
    z = tf.Variable(tf.ones([1, 6]))
    keep = tf.constant([[1.0, 1, 0, 1, 0, 0]])
    with tf.GradientTape() as tape:
        x, _ = layout.pack_reals(z * keep, 2, keep)
        loss = tf.reduce_sum(tf.abs(x) ** 2)
    np.testing.assert_array_equal(tape.gradient(loss, z).numpy(), 2 * keep.numpy())


def test_layout_rejects_a_dynamic_length():
    fn = tf.function(lambda s: layout.place(s, 2)[0])
    with pytest.raises(ValueError, match="static"):
        fn.get_concrete_function(tf.TensorSpec([1, None], tf.complex64))


def _numpy_place(symbols: np.ndarray, antennas: int, keep: np.ndarray):
    """Independent reference of place: the kept symbols of each row in order, dealt round
    robin (symbol n on antenna n % A, channel use n // A)."""
    n = symbols.shape[-1]
    length = -(-n // antennas)
    x = np.zeros((*symbols.shape[:-1], antennas, length), np.complex64)
    sent = np.zeros(x.shape, np.float32)
    for row in np.ndindex(symbols.shape[:-1]):
        kept = symbols[row][keep[row] > 0]
        for i, value in enumerate(kept):
            x[row][i % antennas, i // antennas] = value
            sent[row][i % antennas, i // antennas] = 1.0
    return x, sent


def test_place_and_pack_reals_match_references_on_random_masks():
    # One sort per placement (pack_reals: none, its reals are compacted already): the
    # values and gradients are those of the reference layout, exactly.
    rng = np.random.default_rng(5)
    symbols = (rng.normal(size=(4, 3, 13)) + 1j * rng.normal(size=(4, 3, 13))).astype(np.complex64)
    keep = (rng.random((4, 3, 13)) < 0.6).astype(np.float32)
    x, sent = layout.place(tf.constant(symbols), 3, tf.constant(keep))
    ref_x, ref_sent = _numpy_place(symbols, 3, keep)
    np.testing.assert_array_equal(x.numpy(), ref_x)
    np.testing.assert_array_equal(sent.numpy(), ref_sent)

    z = tf.Variable(rng.normal(size=(4, 3, 21)).astype(np.float32))
    keep = tf.constant((rng.random((4, 3, 21)) < 0.5).astype(np.float32))
    weights = tf.constant(rng.normal(size=(4, 3, 2, 6)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        x, sent = layout.pack_reals(z, 2, keep)
        # reference: compact the kept reals, pair them, place with the real compaction path
        kept = layout.compact(z * keep, keep)
        pairs = tf.complex(tf.pad(kept, [[0, 0], [0, 0], [0, 1]])[..., 0::2],
                           tf.pad(kept, [[0, 0], [0, 0], [0, 1]])[..., 1::2])
        count = tf.reduce_sum(keep, -1, keepdims=True)
        pair_keep = tf.cast(tf.range(11, dtype=tf.float32) < tf.math.ceil(count / 2), tf.float32)
        ref_x, ref_sent = layout.place(pairs, 2, pair_keep)
        loss, ref_loss = (tf.reduce_sum(weights * tf.abs(t) ** 2) for t in (x, ref_x))
    np.testing.assert_array_equal(x.numpy(), ref_x.numpy())
    np.testing.assert_array_equal(sent.numpy(), ref_sent.numpy())
    np.testing.assert_array_equal(tape.gradient(loss, z).numpy(), tape.gradient(ref_loss, z).numpy())
