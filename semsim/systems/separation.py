"""Separate source and channel coding: image codec + LDPC + QAM on the shared MIMO link
(its capacity bound: :mod:`semsim.systems.capacity_bound`).

Separation chain (type ``"separation"``)
----------------------------------------
Per transmit call (one batch of ``B`` images, one SNR):

1. **Channel budget.** Target CR ``r`` (``target_cr`` from ``match_cr_of``, else the
   ``cr`` param) gives each image ``U = floor(r * 3HW / (2 A))`` complex channel uses of
   the ``A`` antennas of its sender (``A = Nt`` for a single user, ``antennas_per_user``
   on a multi-user uplink), i.e. ``U A`` QAM symbols. The batch's ``B U A m`` code-bit slots
   (``m`` bits per symbol) hold ``C = floor(B U A m / n)`` whole codewords of ``n`` bits.
   ``ldpc5g``: ``n = U A m``, ``k = n / 2`` (one codeword per image, short-packet
   alternative). ``dvbs2``: the rate-1/2 DVB-S2 code (``frame`` normal: n = 64800, short:
   16200); codewords span consecutive images (the papers' setting), so the batch must
   be large enough to fill one codeword (see **Degradation** below).
2. **Source coding.** The ``C k`` information bits are split into equal shares of
   ``floor(C k / B)`` bits, one per image. A share holds a 16-bit payload length
   (:data:`LENGTH_FIELD_BITS`), the codec payload (:mod:`semsim.codecs`, highest quality
   that fits) and zero padding. The bitstreams of consecutive images are concatenated
   into the codewords, so a codeword in error corrupts every image whose share it overlaps.
3. **Channel.** Codewords -> Gray QAM -> symbols laid out image after image, ``U`` channel
   uses per image (symbol ``j`` of an image on antenna ``j mod A`` in use ``j // A``, the
   layout of every system, :mod:`semsim.phy.layout`), unused trailing slots not sent ->
   the channel (block fading, the scenario's realization when given) -> the scenario's
   CSI estimate -> unbiased LMMSE (or ZF) -> soft APP demapping -> belief-propagation
   decoding of all codewords of the call in one batched, graph-compiled decoder call.
   Single user: each image has its own realization ``h[n]``. Multi-user uplink (``K``
   users): image ``n`` is sent by user ``n % K`` in realization ``n // K``
   (:mod:`semsim.systems.users`): the ``K`` users send their images at the same time over
   ``h[(n // K) K]`` and are detected jointly. All of it with the blocks of a
   :class:`~semsim.phy.digital.DigitalLink` built from the scenario's link (and its SNR
   definition, ``link.snr``).
4. **Decoding.** A codeword counts as failed when its decoded information bits differ
   from the sent ones (ideal error detection, as a CRC would give). An image whose share
   touches a failed codeword, whose payload did not fit even at the lowest quality, or
   whose payload the codec cannot decode is reconstructed as the **fallback**: the
   per-channel mean colour of the training set (computed in :meth:`prepare`), and is
   counted in the extra ``"failed"`` (1.0 per failed image).

Reported CR = the real symbols that entered the channel layer (counted by
:meth:`DigitalLink.send`) / ``B`` / ``3HW``, the same for every image of the batch (the
codewords span images); at most ``2 U A / 3HW``, so never above the target. Pilots are
not counted. The extra ``"codeword_bits"`` is the ``n`` of the code used.

Degradation: when not one codeword of the configured code fits the batch's slots, the
chain does not fail but tries, in this order, DVB-S2 with the short frame (``n = 16200``,
if ``normal`` was configured) and the rate-1/2 5G LDPC code with one codeword per image
(``n = U A m``, the modulation chosen with the 5G thresholds). When nothing fits (e.g.
``U = 0``, or fewer than 24 code bits per image), nothing is sent: every image is the
fallback, ``failed = 1`` and CR 0 (a reported failure).

Modulation choice (``modulation="auto"``): the highest QAM order whose required SNR
(:data:`REQUIRED_SNR_DB` of the code, or the ``required_snr_db`` param) is at most the SNR. With a
threshold model the expected PSNR ``(1 - p_fail) PSNR(bits) + p_fail PSNR(fallback)`` is
best for the largest bit budget that still decodes, i.e. that order; below every
threshold QPSK is used.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from semsim.codecs import DecodeError, ImageCodec, make_codec
from semsim.phy import layout
from semsim.phy.digital import DigitalLink
from semsim.phy.qam import bits_per_symbol
from semsim.systems import users as users_lib
from semsim.systems.base import LinkSpec, System, TransmitResult, check_images
from semsim.systems.codec_common import FallbackMixin, channel_uses_per_image
from semsim.systems.params import SeparationParams

#: Bits of the payload-length field at the start of each image's share.
LENGTH_FIELD_BITS = 16
#: Entries of the codec's encode and decode memos (one per test image and budget).
CACHE_SIZE = 20000
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


def _remember(cache: dict, key, value) -> None:
    """Store ``value`` under ``key``, dropping the oldest entries beyond :data:`CACHE_SIZE`."""
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        del cache[next(iter(cache))]


def _bytes_to_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, np.uint8))


def _bits_to_bytes(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


class SeparationSystem(FallbackMixin, System):
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
    workers : int | None
        Threads encoding and decoding the images of a batch in parallel (the codec
        releases the GIL); ``None``: the CPU count, ``1``: serial. Results do not
        depend on it.
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
        workers: int | None = None,
    ):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1 (or None: the CPU count); got {workers!r}")
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
        self.workers = workers or os.cpu_count() or 1
        self.fallback = None
        self._links: dict[tuple, DigitalLink] = {}
        self._decoders: dict[int, Any] = {}
        self._encoded: dict[tuple, Any] = {}
        self._decoded: dict[tuple, np.ndarray] = {}

    def choose_modulation(self, snr_db: float, code: str | None = None) -> str:
        """The fixed modulation, or for ``"auto"`` the highest order whose required SNR
        (of ``code``, default the configured one) is at most ``snr_db`` (QPSK below all
        thresholds)."""
        if self.modulation != "auto":
            return self.modulation
        required = self.required_snr_db if code in (None, self.code) else REQUIRED_SNR_DB[code]
        usable = [m for m in AUTO_MODULATIONS if required[m] <= snr_db]
        return usable[-1] if usable else AUTO_MODULATIONS[0]

    def digital_link(self, modulation: str, slots_bits: int, code: str | None = None,
                     frame: str | None = None) -> DigitalLink:
        """The :class:`DigitalLink` whose blocks run the chain (cached). ``slots_bits``:
        code bits of one image's channel uses (``n`` of the 5G code); ``code``/``frame``
        default to the configured ones."""
        code = self.code if code is None else code
        frame = self.frame if frame is None else frame
        if code == "dvbs2":
            key = (code, modulation, frame)
            kwargs = dict(frame=frame)
        else:
            key = (code, modulation, slots_bits)
            kwargs = dict(k=slots_bits // 2, n=slots_bits)
        if key not in self._links:
            if self.num_iter is not None:
                kwargs["num_iter"] = self.num_iter
            self._links[key] = DigitalLink.from_spec(self.link, modulation, code, **kwargs)
        return self._links[key]

    def _codes(self) -> list[tuple[str, str]]:
        """The codes tried in order (see "Degradation" in the module docstring)."""
        codes = [(self.code, self.frame)]
        if self.code == "dvbs2":
            if self.frame == "normal":
                codes.append(("dvbs2", "short"))
            codes.append(("ldpc5g", self.frame))
        return codes

    def plan(self, snr_db: float, uses: int, batch: int):
        """``(dlink, modulation)`` of the first code of :meth:`_codes` of which at least one
        codeword fits the batch's ``batch * uses * A`` QAM slots, or ``None`` when none does."""
        ant = self.link.antennas_per_user
        for code, frame in self._codes():
            modulation = self.choose_modulation(snr_db, code)
            slots_bits = uses * ant * bits_per_symbol(modulation)
            if slots_bits == 0:
                return None
            try:
                dlink = self.digital_link(modulation, slots_bits, code, frame)
            except ValueError:  # no 5G code with k = n / 2 for this many bits
                continue
            if batch * slots_bits // dlink.n >= 1:
                return dlink, modulation
        return None

    def transmit(self, images, snr_db, h=None, target_cr=None) -> TransmitResult:
        images = check_images(images)
        batch, shape = len(images), images.shape[1:3]
        cr = self._target(target_cr)
        users_lib.num_realizations(batch, self.link.users)
        ant = self.link.antennas_per_user
        uses = channel_uses_per_image(cr, shape, ant)
        plan = self.plan(float(snr_db), uses, batch)
        if plan is None:
            fallback = np.broadcast_to(self._fallback_image(shape), images.shape)
            zeros = np.zeros(batch, np.float32)
            return TransmitResult(fallback.astype(np.float32), zeros, {
                "failed": np.ones(batch, np.float32), "source_bits": zeros,
                "bits_per_symbol": zeros, "codeword_bits": zeros})
        dlink, modulation = plan
        m = bits_per_symbol(modulation)
        n, k = dlink.n, dlink.k
        num_codewords = batch * uses * ant * m // n
        share = num_codewords * k // batch
        info = np.zeros(num_codewords * k, np.uint8)
        failed = np.zeros(batch, np.float32)
        source_bits = np.zeros(batch, np.float32)
        encoded = self._encode_all(images, share - LENGTH_FIELD_BITS)
        for i, enc in enumerate(encoded):
            if enc is None:
                failed[i] = 1.0
                continue
            source_bits[i] = enc.bits + LENGTH_FIELD_BITS
            bits = np.concatenate(
                [_bytes_to_bits(len(enc.payload).to_bytes(2, "big")), _bytes_to_bits(enc.payload)]
            )
            info[i * share : i * share + len(bits)] = bits
        info_hat, sent_reals = self._send(dlink, info.reshape(num_codewords, k), snr_db, h,
                                          batch, uses)
        cw_failed = np.any(info_hat != info.reshape(num_codewords, k), axis=1)
        images_hat = np.empty_like(images)
        payloads = {}
        for i in range(batch):
            first, last = i * share // k, ((i + 1) * share - 1) // k
            if failed[i] or cw_failed[first : last + 1].any():
                failed[i] = 1.0
                images_hat[i] = self._fallback_image(shape)
                continue
            bits = info_hat.reshape(-1)[i * share : (i + 1) * share]
            length = int.from_bytes(_bits_to_bytes(bits[:LENGTH_FIELD_BITS]), "big")
            payloads[i] = _bits_to_bytes(bits[LENGTH_FIELD_BITS:])[:length]
        for i, decoded in zip(payloads, self._decode_all(list(payloads.values()), shape),
                              strict=True):
            if decoded is None:
                failed[i] = 1.0
                images_hat[i] = self._fallback_image(shape)
            else:
                images_hat[i] = decoded
        # Codewords span images, so every image is charged the batch's mean.
        cr_used = np.full(batch, sent_reals.sum() / batch / (3 * shape[0] * shape[1]), np.float32)
        extras = {
            "failed": failed,
            "source_bits": source_bits,
            "bits_per_symbol": np.full(batch, m, np.float32),
            "codeword_bits": np.full(batch, n, np.float32),
        }
        return TransmitResult(images_hat, cr_used, extras)

    def _map(self, fn, items: list) -> list:
        """``[fn(x) for x in items]`` on :attr:`workers` threads (order kept)."""
        if self.workers <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with concurrent.futures.ThreadPoolExecutor(min(self.workers, len(items))) as pool:
            return list(pool.map(fn, items))

    def _encode_all(self, images: np.ndarray, max_bits: int) -> list:
        """``codec.encode_to_fit`` of every image (``None`` where even the lowest level
        does not fit), in parallel, memoized on (image, budget): the other SNR points of
        a scenario send the same images with the same budget."""
        keys = [(hashlib.sha1(image.tobytes()).digest(), image.shape, max_bits)
                for image in images]
        found = {key: self._encoded[key] for key in keys if key in self._encoded}
        todo = {key: image for key, image in zip(keys, images, strict=True) if key not in found}
        new = self._map(lambda image: self.codec.encode_to_fit(image, max_bits),
                        list(todo.values()))
        for key, enc in zip(todo, new, strict=True):
            found[key] = enc
            _remember(self._encoded, key, enc)
        return [found[key] for key in keys]

    def _decode_all(self, payloads: list[bytes], shape: tuple[int, int]) -> list:
        """``codec.decode`` of every payload (``None`` for an undecodable one), in
        parallel, memoized on the payload (a correctly received payload is the one sent,
        so each is decoded once per scenario)."""
        keys = [(payload, tuple(shape)) for payload in payloads]
        found = {key: self._decoded[key] for key in keys if key in self._decoded}

        def decode(payload: bytes):
            try:
                return self.codec.decode(payload, shape)
            except DecodeError:
                return None

        todo = list(dict.fromkeys(key for key in keys if key not in found))
        for key, image in zip(todo, self._map(decode, [key[0] for key in todo]), strict=True):
            found[key] = image
            if image is not None:
                _remember(self._decoded, key, image)
        return [found[key] for key in keys]

    def _decoder(self, dlink: DigitalLink):
        """``dlink.decode`` compiled as a graph (one trace per codeword count)."""
        key = id(dlink)
        if key not in self._decoders:
            self._decoders[key] = tf.function(dlink.decode, reduce_retracing=True)
        return self._decoders[key]

    def _send(self, dlink: DigitalLink, info: np.ndarray, snr_db, h, batch: int, uses: int):
        """Codewords ``[C, k]`` -> QAM -> per-image channel uses -> detected info bits
        ``[C, k]`` uint8 and the real symbols each image put into the channel ``[B]``."""
        users, ant = self.link.users, self.link.antennas_per_user
        code_bits = dlink.encode(tf.constant(info, tf.float32))  # [C, n]
        symbols = dlink.mapper(tf.reshape(code_bits, [1, -1]))[0]  # [C n / m]
        num_sent = int(symbols.shape[0])
        slots = tf.reshape(tf.pad(symbols, [[0, batch * uses * ant - num_sent]]), [batch, -1])
        keep = tf.reshape(tf.range(batch * uses * ant) < num_sent, [batch, -1])
        x, sent = layout.place(slots, ant, keep)  # [B, A, U]
        if users > 1:
            x, sent = users_lib.group(x, users), users_lib.group(sent, users)  # [B/K, K, A, U]
        snr = users_lib.realization_snr(float(snr_db), batch, users)
        x_hat, no_eff, sent_reals = dlink.send(x, snr, h=users_lib.realization_h(h, users),
                                               sent=sent)
        per_image = lambda v: tf.reshape(layout.unplace(tf.reshape(v, [batch, ant, uses]),
                                                        uses * ant), [-1])[:num_sent]
        llr = dlink.demapper(per_image(x_hat)[tf.newaxis], per_image(no_eff)[tf.newaxis])
        llr = tf.reshape(llr, [-1, dlink.n])
        info_hat = self._decoder(dlink)(llr).numpy().astype(np.uint8)
        return info_hat, np.reshape(sent_reals.numpy(), [batch]).astype(np.float64)


def build_separation(params: SeparationParams, link: LinkSpec, image_size, seed: int):
    """Image codec + LDPC + QAM over the same MIMO link (classic digital baseline)."""
    return SeparationSystem(link, **params.model_dump())
