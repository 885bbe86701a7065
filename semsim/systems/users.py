"""The one mapping from a batch of images to the users of a multi-user uplink.

Every system (learned or classic) that runs on a link with ``K = link.users`` users uses
these functions, so that all systems of a scenario send the same image from the same user
over the same channel:

* image ``n`` of a batch of ``N`` images is sent by user ``k = n % K`` in channel
  realization ``b = n // K``; the ``K`` consecutive images ``bK .. bK + K - 1`` are sent
  at the same time over one realization (``N`` must be a multiple of ``K``);
* ``h``: the runner draws one matrix per image, ``[N, M, K A]`` complex64 (block fading;
  ``[N, L, M, K A]`` for fast fading); realization ``b`` uses ``h[b K]``;
* ``snr_db`` (``[N]`` float32 dB, or a scalar): realization ``b`` uses ``snr_db[b K]``;
* every user transmits on its own ``A = link.antennas_per_user`` antennas; the rate (CR)
  and the power constraint are per image, i.e. per user.

With one user (``K = 1``) every function is the identity (``[N, ...]`` <-> ``[N, 1, ...]``
for :func:`group` / :func:`ungroup`), so single-user links are unchanged.
"""

from __future__ import annotations

import tensorflow as tf


def num_realizations(num_images: int, users: int) -> int:
    """``N / K`` channel realizations for ``num_images = N`` images; ``ValueError`` when
    ``N`` is not a multiple of ``K``."""
    if users < 1:
        raise ValueError(f"users must be >= 1, got {users!r}")
    if num_images % users:
        raise ValueError(f"the image batch ({num_images}) must be a multiple of the number of "
                         f"users K = {users} (image n is sent by user n % K)")
    return num_images // users


def check_batch(x, users: int) -> None:
    """``ValueError`` when the (static) batch size of ``x`` ``[N, ...]`` is not a multiple of
    ``users``; a batch size unknown at trace time is not checked."""
    n = x.shape[0]
    if n is not None:
        num_realizations(int(n), users)


def group(x, users: int) -> tf.Tensor:
    """Per-image ``[N, ...]`` -> per-realization ``[N/K, K, ...]`` (user ``k`` of realization
    ``b`` is image ``b K + k``)."""
    x = tf.convert_to_tensor(x)
    check_batch(x, users)
    return tf.reshape(x, tf.concat([[-1, users], tf.shape(x)[1:]], axis=0))


def ungroup(x) -> tf.Tensor:
    """Inverse of :func:`group`: ``[N/K, K, ...]`` -> ``[N, ...]``."""
    x = tf.convert_to_tensor(x)
    return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))


def realization_values(x, users: int) -> tf.Tensor:
    """The value of each realization's first image: ``[N, ...]`` -> ``[N/K, ...]``
    (``x[::K]``); used for ``h`` and per-image ``snr_db``."""
    x = tf.convert_to_tensor(x)
    check_batch(x, users)
    return x[::users]


def realization_snr(snr_db, num_images, users: int) -> tf.Tensor:
    """``snr_db`` (scalar or ``[N]``, dB) -> float32 ``[N/K]``: the SNR of each realization
    (that of its first image)."""
    snr = tf.broadcast_to(tf.cast(snr_db, tf.float32), tf.reshape(num_images, [1]))
    return realization_values(snr, users)


def realization_h(h, users: int) -> tf.Tensor | None:
    """Per-image channels ``[N, M, K A]`` (or ``[N, L, M, K A]``) -> complex64 ``[N/K, ...]``,
    realization ``b`` = ``h[b K]``; ``None`` passes through (the system draws its own)."""
    if h is None:
        return None
    h = tf.convert_to_tensor(h, tf.complex64)
    if h.shape.rank not in (3, 4):
        raise ValueError(f"h must be [N, M, K*A] (block) or [N, L, M, K*A] (fast) per image, "
                         f"got shape {h.shape}")
    return realization_values(h, users)


def per_image(x, users: int) -> tf.Tensor:
    """Per-realization ``[N/K, ...]`` -> per-image ``[N, ...]`` (every user of a realization
    gets its value, e.g. the fed-back SNR estimate)."""
    return tf.repeat(tf.convert_to_tensor(x), users, axis=0)
