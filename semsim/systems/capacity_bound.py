"""Capacity bound of separate source and channel coding (type ``"capacity_bound"``).

Per image, ``bits = U * log2 det(I + (snr / A) H H^H)`` with the image's own realization
``H`` (true channel, ``A`` = antennas per user, ``Nt`` for a single user: each stream
gets ``Es/N0 = snr / A`` under the link's SNR convention), i.e. the channel uses of the
target CR at the Shannon limit. Multi-user uplink (image ``n`` sent by user ``n % K`` in
realization ``n // K``, :mod:`semsim.systems.users`, as in
:mod:`semsim.systems.separation`): every user of a realization gets the symmetric rate
of the multiple-access channel's capacity region,
``bits = U * min_S log2 det(I + (snr / A) H_S H_S^H) / |S|`` over the non-empty user
subsets ``S`` (``H_S`` their columns), the largest rate all ``K`` users can have at once.
HEVC intra at the highest quality whose payload fits ``bits`` is decoded error-free; if
nothing fits, the fallback (:class:`~semsim.systems.codec_common.FallbackMixin`) is used.
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import numpy as np
import tensorflow as tf

from semsim.codecs import make_codec
from semsim.phy.channel import make_channel
from semsim.phy.precoding import water_filling
from semsim.systems import users as users_lib
from semsim.systems.base import LinkSpec, System, TransmitResult, check_images
from semsim.systems.codec_common import FallbackMixin, channel_uses_per_image
from semsim.systems.params import CapacityBoundParams


class CapacityBoundSystem(FallbackMixin, System):
    """HEVC intra at the MIMO capacity of each image's channel (error-free; multi-user:
    the symmetric rate of the realization's multiple-access channel)."""

    type_name: ClassVar[str] = "capacity_bound"
    trainable: ClassVar[bool] = False

    def __init__(self, link: LinkSpec, cr: float | None = None, codec: str = "hevc"):
        self.link = link
        self.cr = cr
        self.codec = make_codec(codec)
        self.fallback = None
        if link.fading == "fast":
            raise ValueError("capacity_bound needs block fading or fading 'none'; got 'fast'")
        self.channel = make_channel(link)

    def capacity_bits(self, h: np.ndarray, snr_db: float, uses: int) -> np.ndarray:
        """Bits per user for realizations ``h`` ``[R, Nr, Nt]``: ``[R]`` for a single user,
        ``uses * log2 det(I + (Es / no) H H^H)``; ``[R, K]`` (equal for all users) on a
        multi-user uplink, ``uses * min_S log2 det(I + (Es / no) H_S H_S^H) / |S|``, with
        ``no`` the noise variance the link's channel layer draws for unit-energy symbols
        (``Es / no = snr / A`` under the ``"average"`` SNR definition with fading). With
        ``precoding: svd`` (single user) the capacity with transmitter CSI,
        ``uses * sum_i log2(1 + p_i s_i^2 Es / no)``, water-filling ``sum_i p_i = Nt``."""
        no = self.channel.noise_variance(tf.constant(h, tf.complex64), float(snr_db)).numpy()
        h = np.asarray(h, np.complex128)
        snr = (1.0 / no.astype(np.float64))[:, None, None]
        users, ant = self.link.users, self.link.antennas_per_user

        def log_det(cols):
            hs = h[..., cols]
            gram = np.eye(h.shape[1]) + snr * hs @ np.conj(np.swapaxes(hs, 1, 2))
            return np.linalg.slogdet(gram)[1] / np.log(2.0)

        if users == 1 and self.link.precoding == "svd":  # transmitter CSI: water-filling
            gains = np.linalg.svd(h, compute_uv=False) ** 2 * snr[:, 0]
            power = water_filling(tf.constant(gains, tf.float32), h.shape[2]).numpy()
            return uses * np.sum(np.log2(1.0 + power * gains), axis=1)
        if users == 1:
            return uses * log_det(slice(None))
        rate = np.full(len(h), np.inf)
        for size in range(1, users + 1):
            for subset in itertools.combinations(range(users), size):
                cols = [k * ant + a for k in subset for a in range(ant)]
                rate = np.minimum(rate, log_det(cols) / size)
        return uses * np.repeat(rate[:, None], users, axis=1)

    def transmit(self, images, snr_db, h=None, target_cr=None) -> TransmitResult:
        images = check_images(images)
        batch, shape = len(images), images.shape[1:3]
        cr = self._target(target_cr)
        users = self.link.users
        realizations = users_lib.num_realizations(batch, users)
        uses = channel_uses_per_image(cr, shape, self.link.antennas_per_user)
        if h is None:
            h = self.channel.sample_channel(batch).numpy()
        if np.ndim(h) != 3:
            raise ValueError(f"h must be [batch, Nr, Nt] (block fading); got shape {np.shape(h)}")
        h = np.asarray(users_lib.realization_h(h, users))
        bits = self.capacity_bits(h, snr_db, uses).reshape(realizations * users)
        images_hat = np.empty_like(images)
        failed = np.zeros(batch, np.float32)
        source_bits = np.zeros(batch, np.float32)
        for i, image in enumerate(images):
            enc = self.codec.encode_to_fit(image, int(math.floor(bits[i])))
            if enc is None:
                failed[i] = 1.0
                images_hat[i] = self._fallback_image(shape)
            else:
                source_bits[i] = enc.bits
                images_hat[i] = self.codec.decode(enc.payload, shape)
        cr_used = np.full(batch, 2 * uses * self.link.antennas_per_user / (3 * shape[0] * shape[1]))
        extras = {"failed": failed, "source_bits": source_bits, "capacity_bits": bits}
        return TransmitResult(images_hat, cr_used.astype(np.float32), extras)


def build_capacity_bound(params: CapacityBoundParams, link: LinkSpec, image_size, seed: int):
    """HEVC intra at the per-image MIMO capacity (upper bound of separation)."""
    return CapacityBoundSystem(link, **params.model_dump())
