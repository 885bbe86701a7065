"""Channel-aware rate-distortion loss of the reference system.

``loss = MSE(X, X_hat) + lambda * mean(w(SNR) * CR) + mu * ||Z0 - Z_refined||^2 / numel``

* ``MSE`` over all pixels and images, images in ``[0, 1]``.
* ``CR`` ``[B]``: real symbols sent / ``3 H W`` per image (differentiable through the
  straight-through policy masks).
* ``w(SNR)``: the SNR weight of the rate term. With ``g = (SNR - SNR_min) / (SNR_max -
  SNR_min)`` clipped to ``[0, 1]``, the default ``"linear"`` weight is ``w = 1 + beta g``: at
  high SNR every sent symbol is reliable, so symbols are made dearer there and the policies
  learn to send fewer; at low SNR redundancy is cheap. The source paper's exact formula is not
  recoverable; this choice is ours and swappable (:data:`SNR_WEIGHTS`, or pass any callable to
  :func:`rate_distortion_loss`). ``"constant"`` (``w = 1``) is the SNR-blind ablation.
* The feature term compares the encoder output before masking, ``Z0`` (scaled by the same
  per-image factor as the transmitted symbols, and held fixed with ``stop_gradient``), with the
  receiver's latent after the compensation slot, ``Z_refined`` (equal to the zero-padded
  detected latent ``Z_hat`` when there is no compensation). ``numel`` = elements per batch.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

SnrWeight = Callable[[tf.Tensor, float, float, float], tf.Tensor]


def snr_fraction(snr_db: tf.Tensor, snr_min_db: float, snr_max_db: float) -> tf.Tensor:
    """``g = (snr - min) / (max - min)`` clipped to ``[0, 1]``; float32, shape of ``snr_db``.
    ``snr_max_db == snr_min_db`` (training at one SNR) gives ``g = 0``."""
    snr_db = tf.cast(snr_db, tf.float32)
    span = float(snr_max_db - snr_min_db)
    if span < 0:
        raise ValueError(f"snr_max_db ({snr_max_db}) must be >= snr_min_db ({snr_min_db})")
    if span == 0:
        return tf.zeros_like(snr_db)
    return tf.clip_by_value((snr_db - snr_min_db) / span, 0.0, 1.0)


def linear_snr_weight(snr_db, snr_min_db: float, snr_max_db: float, beta: float):
    """``w = 1 + beta * g`` (see the module docstring); float32, shape of ``snr_db``."""
    return 1.0 + beta * snr_fraction(snr_db, snr_min_db, snr_max_db)


def constant_snr_weight(snr_db, snr_min_db: float, snr_max_db: float, beta: float):
    """``w = 1`` whatever the SNR (ablation of the SNR-aware weight)."""
    return tf.ones_like(tf.cast(snr_db, tf.float32))


#: Named SNR weights selectable from a system's parameters.
SNR_WEIGHTS: dict[str, SnrWeight] = {
    "linear": linear_snr_weight,
    "constant": constant_snr_weight,
}


def rate_distortion_loss(
    images: tf.Tensor,
    images_hat: tf.Tensor,
    cr: tf.Tensor,
    snr_db: tf.Tensor,
    z0: tf.Tensor,
    z_refined: tf.Tensor,
    lam: float,
    mu: float,
    beta: float,
    snr_range_db: tuple[float, float],
    snr_weight: SnrWeight | str = "linear",
) -> dict[str, tf.Tensor]:
    """The reference system's loss and its parts (float32 scalars).

    ``images``, ``images_hat`` ``[B, H, W, 3]`` in ``[0, 1]``; ``cr``, ``snr_db`` ``[B]``;
    ``z0``, ``z_refined`` ``[B, h, w, C]``. Returns ``{"loss", "mse", "rate", "feature"}`` with
    ``rate = mean(w * cr)`` and ``feature = mean((stop_gradient(z0) - z_refined)**2)``.
    """
    if isinstance(snr_weight, str):
        if snr_weight not in SNR_WEIGHTS:
            raise ValueError(f"snr_weight must be one of {sorted(SNR_WEIGHTS)}, got {snr_weight!r}")
        snr_weight = SNR_WEIGHTS[snr_weight]
    mse = tf.reduce_mean(tf.square(images - images_hat))
    w = snr_weight(snr_db, snr_range_db[0], snr_range_db[1], beta)
    rate = tf.reduce_mean(w * cr)
    feature = tf.reduce_mean(tf.square(tf.stop_gradient(z0) - z_refined))
    return {
        "loss": mse + lam * rate + mu * feature,
        "mse": mse,
        "rate": rate,
        "feature": feature,
    }
