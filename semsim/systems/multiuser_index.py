"""The index side channel of the multi-user system (:mod:`semsim.systems.multiuser`).

The receiver must know where each user's kept real values go. The binary index row of
every selected complex map (``2L`` bits, 1 = kept; 128 bits for 32x32 images, as
published) is LDPC-coded: one 5G codeword per map, ``k = 2L``, ``n`` = the smallest
multiple of the QAM bits per symbol with ``k / n <= index_code_rate``
(:func:`semsim.systems.multiuser_layers.index_code_length`; 64-QAM, rate 3/4: ``k = 128``
-> ``n = 174``, ``L' = 29`` symbols, since the exact rate 3/4 would need ``n = 170.7``).
The codewords are mapped to QAM and sent over the same channel as the analog symbols
(same ``H``, joint LMMSE, their own channel uses, compacted like them, not
power-rescaled). Ratio 0 needs no index (``L' = 0``).

The count of selected maps and the ratio choice are control information assumed known at
the receiver (not sent, not in CR; reported as ``side_info_bits``, the entropy of the pair
over the test set, :func:`semsim.systems.base.side_info_bits`). The index rows, which are
sent, count in CR and are reported as ``"index_bits"``. At evaluation the receiver
scatters the detected stream with the *decoded* index rows: a decoding error misplaces
symbols, and that is what the semantic decoder sees (``failed`` = some index bit of the
image decoded wrongly). In training the side channel is not simulated (it carries no
gradient); the model adds its planned symbols to the rate instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tensorflow as tf

from semsim.phy import ChannelState
from semsim.phy.layout import compact, expand

if TYPE_CHECKING:
    from semsim.systems.multiuser import MultiUserSemCom


def send_index_rows(model: MultiUserSemCom, tx: dict, state: ChannelState, snr_db):
    """Send every user's index rows (selected maps with a ratio > 0) over ``state``.

    ``tx`` holds the transmitter's per-user lists (``K`` entries each): ``"keep"``
    ``[B, C/2, 2L]`` (the 0/1 index rows), ``"map_mask"`` ``[B, C/2]`` (selected maps),
    ``"index"`` ``[B]`` (1.0 when the chosen ratio needs an index). ``snr_db`` ``[B]`` per
    channel realization, in dB. Returns the receiver's scatter mask ``[B, K, C/2 * 2L]``
    (the decoded index rows of the selected maps, all ones for unpruned maps), ``failed``
    ``[B, K]`` (1.0 = an index bit decoded wrong) and the real symbols each user put into
    the channel for its index ``[B, K]``.
    """
    codec, length = model.codec, model.length
    half, users = model.num_maps // 2, model.num_users
    batch = tf.shape(tx["keep"][0])[0]
    bits = tf.stack(tx["keep"], axis=1)  # [B, K, C/2, 2L]
    map_mask = tf.stack(tx["map_mask"], axis=1)  # [B, K, C/2]
    sends = map_mask * tf.stack(tx["index"], axis=1)[..., None]  # rows carrying an index
    symbols = model.mapper(codec.encode(bits))  # [B, K, C/2, L']
    l_idx = symbols.shape[-1]
    row_mask = tf.broadcast_to(sends[..., None], tf.shape(symbols))
    flat = lambda t: tf.reshape(t, [batch, users, half * l_idx])
    stream_mask = flat(row_mask)
    stream = compact(flat(symbols), stream_mask)
    y_hat, no_eff, sent_reals = model.through_channel(
        stream, compact(stream_mask, stream_mask), state, snr_db, normalize=False)
    y_rows = tf.reshape(expand(y_hat, stream_mask), tf.shape(symbols))
    no_rows = tf.reshape(expand(no_eff, stream_mask) + (1.0 - stream_mask), tf.shape(symbols))
    decoded = codec.decode(model.demapper(y_rows, no_rows))  # [B, K, C/2, 2L]
    wrong = tf.reduce_max(tf.abs(decoded - bits) * sends[..., None], axis=[2, 3])
    rows = tf.where(sends[..., None] > 0, decoded, 1.0) * map_mask[..., None]
    return tf.reshape(rows, [batch, users, half * 2 * length]), wrong, sent_reals
