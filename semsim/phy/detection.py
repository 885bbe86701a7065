"""Linear MIMO detection (LMMSE, ZF) with the receiver's channel estimate.

Both detectors use Sionna's filters (``lmmse_matrix`` and ``matrix_pinv``); with block
fading the filter is computed once per example and applied to all ``L`` channel uses.

Call ``(y, h_hat, no) -> (x_hat, no_eff)``:

* ``y``: complex64 ``[B, Nr, L]``
* ``h_hat``: complex64 ``[B, Nr, Nt]`` (block) or ``[B, L, Nr, Nt]`` (fast)
* ``no``: float32 ``[B]`` or scalar, noise variance per complex receive sample
* ``x_hat``: complex64 ``[B, Nt, L]``
* ``no_eff``: float32 ``[B, Nt, L]``, error variance of each estimate, in the same
  units as ``|x|^2`` (what a soft demapper needs with ``unbiased=True``).

``symbol_energy`` ``Es`` is the average energy of each transmitted stream's symbols
(1.0 after :class:`~semsim.phy.PowerNormalization` with its default power).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from sionna.phy.mimo import lmmse_matrix
from sionna.phy.utils import matrix_pinv

from semsim.phy.layer import PhyLayer
from semsim.phy.utils import as_complex, per_example


def _blocks(y, h):
    """Put ``y``/``h`` in filter-friendly form: ``h`` ``[B, T, Nr, Nt]``, ``y``
    ``[B, T, Nr, C]`` with ``T = 1, C = L`` (block) or ``T = L, C = 1`` (fast)."""
    if h.shape.rank == 3:
        return h[:, tf.newaxis], y[:, tf.newaxis]
    if h.shape.rank == 4:
        return h, tf.transpose(y, [0, 2, 1])[..., tf.newaxis]
    raise ValueError(f"h must have shape [B, Nr, Nt] or [B, L, Nr, Nt], got {h.shape}")


class _LinearDetector(PhyLayer):
    def __init__(self, symbol_energy: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if symbol_energy <= 0:
            raise ValueError(f"symbol_energy must be positive, got {symbol_energy}")
        self.symbol_energy = float(symbol_energy)

    def _estimate(self, h, y, no):
        """Unit-energy estimate: ``h`` ``[B, T, Nr, Nt]``, ``y`` ``[B, T, Nr, C]``,
        ``no`` ``[B]`` -> ``x_hat`` ``[B, T, Nt, C]``, error variance ``[B, T, Nt]``."""
        raise NotImplementedError

    def call(self, y, h_hat, no):
        y = tf.cast(y, tf.complex64)
        h_hat = tf.cast(h_hat, tf.complex64)
        scale = self.symbol_energy**0.5
        h_blocks, y_blocks = _blocks(y, h_hat * scale)
        no = per_example(no, tf.shape(y)[0], "no")
        x_hat, no_eff = self._estimate(h_blocks, y_blocks, no)
        if h_hat.shape.rank == 4:
            x_hat = tf.transpose(x_hat[..., 0], [0, 2, 1])
            no_eff = tf.transpose(no_eff, [0, 2, 1])
        else:
            x_hat = x_hat[:, 0]
            no_eff = tf.broadcast_to(no_eff[:, 0, :, tf.newaxis], tf.shape(x_hat))
        return x_hat * scale, no_eff * self.symbol_energy

    def get_config(self):
        return {**super().get_config(), "symbol_energy": self.symbol_energy}


@keras.saving.register_keras_serializable(package="semsim.phy")
class LMMSEDetector(_LinearDetector):
    """Linear MMSE detector.

    ``unbiased=False`` (default) returns the MMSE estimate
    ``x_hat = Es H^H (Es H H^H + no I)^-1 y`` (best for continuous-valued JSCC symbols);
    ``unbiased=True`` divides each stream by its gain ``diag(G H)`` as Sionna's
    ``lmmse_equalizer`` does (what a soft QAM demapper expects).
    ``no_eff`` is the error variance of the returned estimate.
    """

    def __init__(self, unbiased: bool = False, symbol_energy: float = 1.0, **kwargs):
        super().__init__(symbol_energy, **kwargs)
        self.unbiased = bool(unbiased)

    def _estimate(self, h, y, no):
        if h.shape[-2] is not None and h.shape[-1] is not None and h.shape[-2] >= h.shape[-1]:
            # Nr >= Nt: the Nt x Nt form (H^H H + no I)^-1 H^H, computed by Sionna on the
            # noise-whitened channel, stays well conditioned as no -> 0.
            inv_std = as_complex(tf.math.rsqrt(tf.maximum(no, 1e-30)))[:, tf.newaxis, tf.newaxis, tf.newaxis]
            g = lmmse_matrix(h * inv_std) * inv_std
        else:
            eye = tf.eye(tf.shape(h)[-2], dtype=tf.complex64)
            s = as_complex(no)[:, tf.newaxis, tf.newaxis, tf.newaxis] * eye
            g = lmmse_matrix(h, tf.broadcast_to(s, tf.concat([tf.shape(h)[:-1], tf.shape(h)[-2:-1]], 0)))
        gy = tf.matmul(g, y)
        d = tf.math.real(tf.linalg.diag_part(tf.matmul(g, h)))
        d = tf.maximum(d, 1e-12)
        if self.unbiased:
            return gy / as_complex(d[..., tf.newaxis]), 1.0 / d - 1.0
        # Biased MMSE estimate: error variance 1 - d per unit-energy symbol.
        return gy, tf.maximum(1.0 - d, 0.0)

    def get_config(self):
        return {**super().get_config(), "unbiased": self.unbiased}


@keras.saving.register_keras_serializable(package="semsim.phy")
class ZFDetector(_LinearDetector):
    """Zero-forcing detector ``x_hat = H^+ y`` (needs ``Nr >= Nt``); ``no_eff`` is
    ``no * diag((H^H H)^-1)``."""

    def _estimate(self, h, y, no):
        if h.shape[-2] is not None and h.shape[-1] is not None and h.shape[-2] < h.shape[-1]:
            raise ValueError(
                f"zero forcing needs num_rx_ant >= streams, got {h.shape[-2]} < {h.shape[-1]}"
            )
        g = matrix_pinv(h)
        gram_inv = tf.math.real(tf.linalg.diag_part(tf.matmul(g, g, adjoint_b=True)))
        return tf.matmul(g, y), no[:, tf.newaxis, tf.newaxis] * gram_inv
