"""The one mapping of a system's symbols onto transmit antennas and channel uses.

Every system of semsim, learned or classic, puts its symbols on the link with these
functions, so that every system of a scenario loads the antennas the same way and the
detector sees the same number of interfering streams.

Counts
------
``R`` real values per sender and transmission give ``N = ceil(R / 2)`` complex symbols
(consecutive pairs ``z[2i] + j z[2i+1]``, :func:`semsim.phy.reals_to_complex`; an odd
``R`` gets one zero imaginary part); ``N`` complex symbols on ``A`` antennas occupy
``L = ceil(N / A)`` channel uses. CR counts *real* symbols (2 per sent complex symbol),
channel uses count complex ones per antenna.

Layout
------
1. **Compaction.** Only kept values are sent, moved to the front in their order (stable):
   kept value ``j`` becomes stream entry ``j`` (:func:`compact`; the receiver, which knows
   the mask, undoes it with :func:`expand`). A pruned value never occupies a slot, so no
   system sends zeros in a channel use where the detector then sees fewer interfering
   streams; only the last used channel use may be partly filled.
2. **Placement.** Complex symbol ``n`` of a sender goes to antenna ``n mod A`` in channel
   use ``n // A`` (round robin over the antennas, channel use after channel use); the
   ``A L - N_sent`` trailing slots are not sent (zero, ``sent = 0``).

Shapes: single user ``[B, Nt, L]`` (``A = Nt``); multi-user uplink ``[B, K, A, L]`` (every
user ``k`` lays out its own symbols on its own ``A`` antennas; the users' channel uses
coincide). All functions take any leading dimensions ``[...]`` before the last axis.
"""

from __future__ import annotations

import tensorflow as tf

from semsim.phy.utils import complex_to_reals, reals_to_complex


def num_channel_uses(num_symbols: int, antennas: int) -> int:
    """``L = ceil(N / A)`` channel uses for ``N`` complex symbols on ``A`` antennas."""
    if antennas < 1 or num_symbols < 0:
        raise ValueError(f"need antennas >= 1 and num_symbols >= 0, got {antennas}, {num_symbols}")
    return -(-int(num_symbols) // int(antennas))


def _static_last(t: tf.Tensor, name: str) -> int:
    size = t.shape[-1]
    if size is None:
        raise ValueError(f"the last axis of {name} must be static, got shape {t.shape}")
    return int(size)


def _pad_last(t: tf.Tensor, count: int) -> tf.Tensor:
    """Append ``count`` zeros to the last axis of ``t``."""
    return tf.pad(t, [[0, 0]] * (t.shape.rank - 1) + [[0, count]]) if count else t


def compact(values: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
    """Move the entries of ``values`` ``[..., P]`` whose ``keep`` (0/1, hard, same shape) is
    1 to the front, in order; the tail holds the others (zero when ``values`` is masked).
    Gradients reach ``values``; ``keep`` only orders them."""
    return tf.gather(values, _compaction_order(keep), batch_dims=values.shape.rank - 1)


def _compaction_order(keep: tf.Tensor) -> tf.Tensor:
    """The permutation :func:`compact` applies: kept positions first, each group in order."""
    return tf.argsort(tf.cast(1.0 - tf.stop_gradient(tf.cast(keep, tf.float32)), tf.int32),
                      axis=-1, stable=True)


def expand(stream: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
    """Inverse of :func:`compact` as a receiver does it: stream entry ``j`` goes to the
    ``j``-th position where ``keep`` ``[..., P]`` (hard 0/1) is 1; other positions are 0."""
    keep = tf.stop_gradient(tf.cast(keep, tf.float32))
    rank = tf.cast(tf.cumsum(keep, axis=-1), tf.int32) - 1
    gathered = tf.gather(stream, tf.maximum(rank, 0), batch_dims=stream.shape.rank - 1)
    return gathered * tf.cast(keep, gathered.dtype)


def place(symbols: tf.Tensor, antennas: int, keep: tf.Tensor | None = None):
    """Complex symbols ``[..., N]`` -> transmit block ``x`` ``[..., A, L]`` and its ``sent``
    mask (float32 0/1, same shape), ``L = ceil(N / A)``.

    ``keep`` (optional ``[..., N]`` hard 0/1) selects the symbols to send; they are
    compacted first (module docstring). Unsent slots of ``x`` are zero.
    """
    return _place(symbols, antennas, keep, compacted=keep is None)


def _place(symbols: tf.Tensor, antennas: int, keep: tf.Tensor | None, compacted: bool):
    """:func:`place`; ``compacted``: ``keep`` is known to be a prefix mask already (all
    ones, or the mask of symbols :func:`pack_reals` compacted), so the compaction, an
    identity permutation then, is skipped (same values and gradients, one sort less)."""
    symbols = tf.cast(symbols, tf.complex64)
    n = _static_last(symbols, "symbols")
    keep = tf.ones(tf.shape(symbols), tf.float32) if keep is None else tf.cast(keep, tf.float32)
    keep = tf.stop_gradient(keep)
    symbols = symbols * tf.cast(keep, tf.complex64)
    if not compacted:  # one permutation for the symbols and their mask
        order = _compaction_order(keep)
        symbols = tf.gather(symbols, order, batch_dims=symbols.shape.rank - 1)
        keep = tf.gather(keep, order, batch_dims=keep.shape.rank - 1)
    length = num_channel_uses(n, antennas)
    pad = antennas * length - n

    def to_block(t):
        t = _pad_last(t, pad)
        t = tf.reshape(t, tf.concat([tf.shape(t)[:-1], [length, antennas]], 0))
        t = tf.linalg.matrix_transpose(t)
        t.set_shape(symbols.shape[:-1].concatenate([antennas, length]))
        return t

    return to_block(symbols), to_block(keep)


def unplace(x: tf.Tensor, num_symbols: int, keep: tf.Tensor | None = None) -> tf.Tensor:
    """Inverse of :func:`place`: ``[..., A, L]`` -> ``[..., N]`` (``N = num_symbols``); with
    ``keep`` the stream is expanded back to its positions (pruned ones are 0)."""
    flat = tf.linalg.matrix_transpose(x)
    flat = tf.reshape(flat, tf.concat([tf.shape(flat)[:-2], [-1]], 0))[..., :num_symbols]
    return flat if keep is None else expand(flat, keep)


def _pair_keep(keep: tf.Tensor, num_reals: int) -> tf.Tensor:
    """Real keep mask ``[..., R]`` -> complex one ``[..., ceil(R/2)]`` after compaction:
    the first ``ceil(kept / 2)`` symbols are sent."""
    kept = tf.reduce_sum(tf.cast(keep, tf.float32), axis=-1, keepdims=True)
    index = tf.range((num_reals + 1) // 2, dtype=tf.float32)
    return tf.cast(index < tf.math.ceil(kept / 2.0), tf.float32)


def pack_reals(z: tf.Tensor, antennas: int, keep: tf.Tensor | None = None):
    """Real values ``[..., R]`` -> ``(x [..., A, L], sent [..., A, L])``.

    Kept reals (``keep`` ``[..., R]`` hard 0/1, all when ``None``) are compacted, paired
    into ``ceil(kept / 2)`` complex symbols and placed (:func:`place`);
    ``L = ceil(ceil(R / 2) / A)``.
    """
    z = tf.convert_to_tensor(z, tf.float32)
    r = _static_last(z, "z")
    if keep is not None:
        keep = tf.stop_gradient(tf.broadcast_to(tf.cast(keep, tf.float32), tf.shape(z)))
        z = compact(z * keep, keep)
    z = _pad_last(z, r % 2)
    symbols = reals_to_complex(z)
    symbols.set_shape(z.shape[:-1].concatenate([(r + 1) // 2]))
    sent = None if keep is None else _pair_keep(keep, r)
    return _place(symbols, antennas, sent, compacted=True)  # the kept reals lead already


def unpack_reals(x: tf.Tensor, num_reals: int, keep: tf.Tensor | None = None) -> tf.Tensor:
    """Inverse of :func:`pack_reals`: ``[..., A, L]`` -> float32 ``[..., R]``
    (``R = num_reals``; pruned reals are 0)."""
    z = complex_to_reals(unplace(x, (num_reals + 1) // 2))[..., :num_reals]
    return z if keep is None else expand(z, keep)
