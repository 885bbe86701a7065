"""Separate source and channel coding: image codec + LDPC + QAM on the shared MIMO link,
and its capacity bound.

Separation chain (type ``"separation"``)
----------------------------------------
Per transmit call (one batch of ``B`` images, one SNR):

1. **Channel budget.** Target CR ``r`` (``target_cr`` from ``match_cr_of``, else the
   ``cr`` param) gives each image ``U = floor(r * 3HW / (2 Nt))`` complex channel uses of
   all ``Nt`` antennas, i.e. ``U Nt`` QAM symbols. The batch's ``B U Nt m`` code-bit slots
   (``m`` bits per symbol) hold ``C = floor(B U Nt m / n)`` whole codewords of ``n`` bits.
   ``ldpc5g``: ``n = U Nt m``, ``k = n / 2`` (one codeword per image, short-packet
   alternative). ``dvbs2``: the rate-1/2 DVB-S2 code (``frame`` normal: n = 64800, short:
   16200); codewords span consecutive images (the papers' setting), so the batch must
   be large enough to fill one codeword.
2. **Source coding.** The ``C k`` information bits are split into equal shares of
   ``floor(C k / B)`` bits, one per image. A share holds a 16-bit payload length
   (:data:`LENGTH_FIELD_BITS`), the codec payload (:mod:`semsim.codecs`, highest quality
   that fits) and zero padding. The bitstreams of consecutive images are concatenated
   into the codewords, so a codeword in error corrupts every image whose share it overlaps.
3. **Channel.** Codewords -> Gray QAM -> symbols laid out image after image, ``U`` channel
   uses per image (symbol ``j`` of an image on antenna ``j mod Nt`` in use ``j // Nt``,
   as :class:`semsim.phy.digital.DigitalLink` does), unused trailing slots not sent ->
   each image through its own channel ``h`` (block fading, the scenario's realization
   when given) -> the scenario's CSI estimate -> unbiased LMMSE (or ZF) -> soft APP
   demapping -> belief-propagation decoding. All of it with the blocks of a
   :class:`~semsim.phy.digital.DigitalLink` built from the scenario's link (its SNR
   convention: ``snr_mode="average"``, per-receive-antenna SNR).
4. **Decoding.** A codeword counts as failed when its decoded information bits differ
   from the sent ones (ideal error detection, as a CRC would give). An image whose share
   touches a failed codeword, whose payload did not fit even at the lowest quality, or
   whose payload the codec cannot decode is reconstructed as the **fallback**: the
   per-channel mean colour of the training set (computed in :meth:`prepare`), and is
   counted in the extra ``"failed"`` (1.0 per failed image).

Reported CR = the real symbols of all sent codewords / ``B`` / ``3HW`` (the same for every
image of the batch), never above the target. Pilots are not counted.

Modulation choice (``modulation="auto"``): the highest QAM order whose required SNR
(:data:`REQUIRED_SNR_DB` of the code, or the ``required_snr_db`` param) is at most the SNR. With a
threshold model the expected PSNR ``(1 - p_fail) PSNR(bits) + p_fail PSNR(fallback)`` is
best for the largest bit budget that still decodes, i.e. that order; below every
threshold QPSK is used.

Capacity bound (type ``"capacity_bound"``)
------------------------------------------
Per image, ``bits = U * log2 det(I + (snr / A) H H^H)`` with the image's own realization
``H`` (true channel, ``A`` = antennas per user, ``Nt`` for a single user: each stream
gets ``Es/N0 = snr / A`` under the link's SNR convention), i.e. the channel uses of the
target CR at the Shannon limit. HEVC intra at the highest quality whose payload fits
``bits`` is decoded error-free; if nothing fits, the fallback is used.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pydantic
import tensorflow as tf

from semsim.codecs import DecodeError, ImageCodec, make_codec
from semsim.phy.channel import MultiUserUplinkChannel, RayleighMIMOChannel
from semsim.phy.digital import DigitalLink
from semsim.phy.qam import bits_per_symbol
from semsim.systems.base import LinkSpec, System, TrainSpec, TransmitResult
from semsim.systems.registry import register_system

#: Bits of the payload-length field at the start of each image's share.
LENGTH_FIELD_BITS = 16
#: QAM orders tried by ``modulation="auto"``, lowest first.
AUTO_MODULATIONS = ("qpsk", "16qam", "64qam", "256qam")
#: Per-receive-antenna SNR (dB) from which each QAM order with the rate-1/2 code decodes
#: with a codeword error rate of at most about 10 %, measured with this chain (2x2
#: Rayleigh block fading, one realization per image, perfect CSI, unbiased LMMSE, APP
#: demapping, CR 0.2 on 32x32 images, 2 dB grid; ``python benchmarks/separation_rd.py
#: --thresholds``). DVB-S2 (short frame) codewords span ~10-50 images and average over
#: their fades; a 5G codeword sees one fade (outage), hence the higher thresholds.
#: Used by ``modulation="auto"``; override with the ``required_snr_db`` param.
REQUIRED_SNR_DB: dict[str, dict[str, float]] = {
    "dvbs2": {"qpsk": 4.0, "16qam": 11.0, "64qam": 16.0, "256qam": 21.0},
    "ldpc5g": {"qpsk": 10.0, "16qam": 16.0, "64qam": 24.0, "256qam": 26.0},
}


def fallback_mean(train_data: Any) -> np.ndarray:
    """Per-channel mean ``[3]`` float32 of a data set of ``[B, H, W, 3]`` images (or of
    ``(images, labels)`` pairs); exact running sums over all pixels."""
    total = np.zeros(3, np.float64)
    count = 0
    for batch in train_data:
        images = batch[0] if isinstance(batch, tuple | list) else batch
        images = np.asarray(images, np.float64).reshape(-1, 3)
        total += images.sum(axis=0)
        count += len(images)
    if count == 0:
        raise ValueError("train_data holds no images; cannot compute the fallback mean")
    return (total / count).astype(np.float32)


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [batch, H, W, 3]; got shape {images.shape}")
    return images


def channel_uses_per_image(target_cr: float, image_shape: tuple[int, int], num_tx_ant: int) -> int:
    """``U = floor(target_cr * 3HW / (2 Nt))`` complex channel uses of all ``Nt`` antennas."""
    if not 0 < target_cr <= 10:
        raise ValueError(f"target_cr must lie in (0, 10]; got {target_cr!r}")
    height, width = image_shape
    return int(math.floor(target_cr * 3 * height * width / (2 * num_tx_ant) + 1e-9))


def _bytes_to_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, np.uint8))


def _bits_to_bytes(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


class _FallbackMixin:
    fallback: np.ndarray | None

    def prepare(self, train_data: Any, train: TrainSpec, workdir: Path, resume: bool) -> None:
        """Compute the fallback (per-channel training-set mean); nothing is trained."""
        self.fallback = fallback_mean(train_data)

    def _fallback_image(self, shape: tuple[int, int]) -> np.ndarray:
        if self.fallback is None:
            raise RuntimeError(f"{type(self).__name__}.prepare() must run before transmit()")
        return np.broadcast_to(self.fallback, (*shape, 3)).astype(np.float32)

    def _target(self, target_cr: float | None) -> float:
        cr = target_cr if target_cr is not None else self.cr
        if cr is None:
            raise ValueError(
                f"{self.type_name}: no target CR; set params.cr or give the system a match_cr_of"
            )
        return float(cr)


class SeparationSystem(_FallbackMixin, System):
    """Image codec + LDPC (DVB-S2 or 5G) + QAM over the scenario's MIMO link.

    Parameters
    ----------
    link : LinkSpec
    codec : ``"hevc"`` | ``"jpeg"`` | ``"jpeg2000"``
    code : ``"dvbs2"`` | ``"ldpc5g"``
    frame : ``"normal"`` | ``"short"`` (DVB-S2 frame length)
    modulation : ``"auto"`` or a fixed ``"qpsk"``/``"16qam"``/``"64qam"``/``"256qam"``
    cr : float | None
        Target CR when ``transmit`` gets no ``target_cr``.
    required_snr_db : dict | None
        Overrides :data:`REQUIRED_SNR_DB` (per modulation, dB).
    num_iter : int | None
        BP iterations (None: DigitalLink's default, 50 DVB-S2 / 20 5G).
    """

    type_name: ClassVar[str] = "separation"
    trainable: ClassVar[bool] = False

    def __init__(
        self,
        link: LinkSpec,
        codec: str = "hevc",
        code: str = "dvbs2",
        frame: str = "normal",
        modulation: str = "auto",
        cr: float | None = None,
        required_snr_db: dict[str, float] | None = None,
        num_iter: int | None = None,
    ):
        if code not in ("dvbs2", "ldpc5g"):
            raise ValueError(f"code must be 'dvbs2' or 'ldpc5g'; got {code!r}")
        if modulation != "auto":
            bits_per_symbol(modulation)
        self.link = link
        self.codec: ImageCodec = make_codec(codec)
        self.code = code
        self.frame = frame
        self.modulation = modulation
        self.cr = cr
        self.required_snr_db = dict(REQUIRED_SNR_DB[code], **(required_snr_db or {}))
        self.num_iter = num_iter
        self.fallback = None
        self._links: dict[tuple, DigitalLink] = {}

    def choose_modulation(self, snr_db: float) -> str:
        """The fixed modulation, or for ``"auto"`` the highest order whose required SNR
        is at most ``snr_db`` (QPSK below all thresholds)."""
        if self.modulation != "auto":
            return self.modulation
        usable = [m for m in AUTO_MODULATIONS if self.required_snr_db[m] <= snr_db]
        return usable[-1] if usable else AUTO_MODULATIONS[0]

    def digital_link(self, modulation: str, slots_bits: int) -> DigitalLink:
        """The :class:`DigitalLink` whose blocks run the chain (cached). ``slots_bits``:
        code bits of one image's channel uses (``n`` of the 5G code)."""
        if self.code == "dvbs2":
            key = (modulation, self.frame)
            kwargs = dict(frame=self.frame)
        else:
            key = (modulation, slots_bits)
            kwargs = dict(k=slots_bits // 2, n=slots_bits)
        if key not in self._links:
            if self.num_iter is not None:
                kwargs["num_iter"] = self.num_iter
            self._links[key] = DigitalLink.from_spec(self.link, modulation, self.code, **kwargs)
        return self._links[key]

    def transmit(self, images, snr_db, h=None, target_cr=None) -> TransmitResult:
        images = _check_images(images)
        batch, shape = len(images), images.shape[1:3]
        cr = self._target(target_cr)
        nt = self.link.num_tx_ant
        uses = channel_uses_per_image(cr, shape, nt)
        modulation = self.choose_modulation(float(snr_db))
        m = bits_per_symbol(modulation)
        dlink = self.digital_link(modulation, uses * nt * m)
        n, k = dlink.n, dlink.k
        num_codewords = batch * uses * nt * m // n
        if num_codewords == 0:
            raise ValueError(
                f"{batch} images at CR {cr} carry {batch * uses * nt * m} code bits with "
                f"{modulation}: fewer than one {self.code} codeword (n={n}); use more images per "
                "batch, frame='short' or code='ldpc5g'"
            )
        share = num_codewords * k // batch
        info = np.zeros(num_codewords * k, np.uint8)
        failed = np.zeros(batch, np.float32)
        source_bits = np.zeros(batch, np.float32)
        for i, image in enumerate(images):
            enc = self.codec.encode_to_fit(image, share - LENGTH_FIELD_BITS)
            if enc is None:
                failed[i] = 1.0
                continue
            source_bits[i] = enc.bits + LENGTH_FIELD_BITS
            bits = np.concatenate(
                [_bytes_to_bits(len(enc.payload).to_bytes(2, "big")), _bytes_to_bits(enc.payload)]
            )
            info[i * share : i * share + len(bits)] = bits
        info_hat = self._send(dlink, info.reshape(num_codewords, k), snr_db, h, batch, uses)
        cw_failed = np.any(info_hat != info.reshape(num_codewords, k), axis=1)
        images_hat = np.empty_like(images)
        for i in range(batch):
            first, last = i * share // k, ((i + 1) * share - 1) // k
            if failed[i] or cw_failed[first : last + 1].any():
                failed[i] = 1.0
                images_hat[i] = self._fallback_image(shape)
                continue
            bits = info_hat.reshape(-1)[i * share : (i + 1) * share]
            length = int.from_bytes(_bits_to_bytes(bits[:LENGTH_FIELD_BITS]), "big")
            payload = _bits_to_bytes(bits[LENGTH_FIELD_BITS:])[:length]
            try:
                images_hat[i] = self.codec.decode(payload, shape)
            except DecodeError:
                failed[i] = 1.0
                images_hat[i] = self._fallback_image(shape)
        sent_reals = 2 * num_codewords * n / m
        cr_used = np.full(batch, sent_reals / batch / (3 * shape[0] * shape[1]), np.float32)
        extras = {
            "failed": failed,
            "source_bits": source_bits,
            "bits_per_symbol": np.full(batch, m, np.float32),
        }
        return TransmitResult(images_hat, cr_used, extras)

    def _send(self, dlink: DigitalLink, info: np.ndarray, snr_db, h, batch: int, uses: int):
        """Codewords ``[C, k]`` -> QAM -> per-image channel uses -> detected info bits."""
        nt, a = self.link.num_tx_ant, self.link.antennas_per_user
        code_bits = dlink.encode(tf.constant(info, tf.float32))  # [C, n]
        symbols = dlink.mapper(tf.reshape(code_bits, [1, -1]))[0]  # [C n / m]
        num_sent = int(symbols.shape[0])
        slots = tf.pad(symbols, [[0, batch * uses * nt - num_sent]])
        x = tf.transpose(tf.reshape(slots, [batch, uses, nt]), [0, 2, 1])  # [B, Nt, U]
        if self.link.users > 1:
            x = tf.reshape(x, [batch, self.link.users, a, uses])
        snr = tf.fill([batch], tf.constant(float(snr_db), tf.float32))
        h = None if h is None else tf.constant(np.asarray(h), tf.complex64)
        y, h, no = dlink.channel(x, snr, h=h)
        h_hat, _ = dlink.csi(h, dlink.channel.noise_variance(h, snr))
        x_hat, no_eff = dlink.detector(y, h_hat, no)  # [B, Nt, U]
        x_hat = tf.reshape(tf.transpose(x_hat, [0, 2, 1]), [-1])[:num_sent]
        no_eff = tf.reshape(tf.transpose(no_eff, [0, 2, 1]), [-1])[:num_sent]
        llr = dlink.demapper(x_hat[tf.newaxis], no_eff[tf.newaxis])
        llr = tf.reshape(llr, [-1, dlink.n])
        return dlink.decode(llr).numpy().astype(np.uint8)


class CapacityBoundSystem(_FallbackMixin, System):
    """HEVC intra at the MIMO capacity of each image's channel (error-free)."""

    type_name: ClassVar[str] = "capacity_bound"
    trainable: ClassVar[bool] = False

    def __init__(self, link: LinkSpec, cr: float | None = None, codec: str = "hevc"):
        self.link = link
        self.cr = cr
        self.codec = make_codec(codec)
        self.fallback = None
        if link.fading == "fast":
            raise ValueError("capacity_bound needs block fading or fading 'none'; got 'fast'")
        common = dict(fading=link.fading)
        if link.users > 1:
            self.channel = MultiUserUplinkChannel(
                link.users, link.num_rx_ant, link.antennas_per_user, **common
            )
        else:
            self.channel = RayleighMIMOChannel(link.num_rx_ant, link.num_tx_ant, **common)

    def capacity_bits(self, h: np.ndarray, snr_db: float, uses: int) -> np.ndarray:
        """``[B]`` bits: ``uses * log2 det(I + (snr / A) H H^H)`` for ``h`` ``[B, Nr, Nt]``."""
        h = np.asarray(h, np.complex128)
        snr = 10.0 ** (float(snr_db) / 10.0) / self.link.antennas_per_user
        gram = np.eye(h.shape[1]) + snr * h @ np.conj(np.swapaxes(h, 1, 2))
        return uses * np.linalg.slogdet(gram)[1] / np.log(2.0)

    def transmit(self, images, snr_db, h=None, target_cr=None) -> TransmitResult:
        images = _check_images(images)
        batch, shape = len(images), images.shape[1:3]
        cr = self._target(target_cr)
        uses = channel_uses_per_image(cr, shape, self.link.num_tx_ant)
        if h is None:
            h = self.channel.sample_channel(batch).numpy()
        if np.ndim(h) != 3:
            raise ValueError(f"h must be [batch, Nr, Nt] (block fading); got shape {np.shape(h)}")
        bits = self.capacity_bits(h, snr_db, uses)
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
        cr_used = np.full(batch, 2 * uses * self.link.num_tx_ant / (3 * shape[0] * shape[1]))
        extras = {"failed": failed, "source_bits": source_bits, "capacity_bits": bits}
        return TransmitResult(images_hat, cr_used.astype(np.float32), extras)


class SeparationParams(pydantic.BaseModel):
    """Scenario params of ``separation`` (see :class:`SeparationSystem`)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    codec: Literal["hevc", "jpeg", "jpeg2000"] = "hevc"
    code: Literal["dvbs2", "ldpc5g"] = "dvbs2"
    frame: Literal["normal", "short"] = "normal"
    modulation: Literal["auto", "qpsk", "16qam", "64qam", "256qam"] = "auto"
    cr: float | None = pydantic.Field(None, gt=0)
    required_snr_db: dict[Literal["qpsk", "16qam", "64qam", "256qam"], float] | None = None
    num_iter: int | None = pydantic.Field(None, ge=1)


class CapacityBoundParams(pydantic.BaseModel):
    """Scenario params of ``capacity_bound`` (see :class:`CapacityBoundSystem`)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    codec: Literal["hevc", "jpeg", "jpeg2000"] = "hevc"
    cr: float | None = pydantic.Field(None, gt=0)


@register_system("separation", params=SeparationParams)
def build_separation(params: SeparationParams, link: LinkSpec, image_size, seed: int):
    """Image codec + LDPC + QAM over the same MIMO link (classic digital baseline)."""
    return SeparationSystem(link, **params.model_dump())


@register_system("capacity_bound", params=CapacityBoundParams)
def build_capacity_bound(params: CapacityBoundParams, link: LinkSpec, image_size, seed: int):
    """HEVC intra at the per-image MIMO capacity (upper bound of separation)."""
    return CapacityBoundSystem(link, **params.model_dump())
