"""The standard digital chain SCSC wraps: HEVC intra at QP -> 5G LDPC (rate 1/2 or 3/4)
-> QPSK -> SVD precoding with water-filling -> MIMO channel -> SVD combining -> soft
demapping -> LDPC decoding -> HEVC decoding.

It runs in numpy/PyAV/eager TensorFlow and is not differentiable (SCSC trains through it
with a proxy, :mod:`semsim.systems.scsc.proxy`).

Framing per image: ``[length: 16 bits][HEVC payload]`` zero-padded to whole LDPC
codewords (``k = rate * n`` information bits each, ``n`` = :data:`CODEWORD_BITS`), QPSK,
then spread over the ``S = min(Nr, Nt)`` SVD streams, ``L_i = ceil(symbols_i / S)``
channel uses for image ``i``. One block-fading ``H`` per image (the runner's shared
realization when given). An image is lost (``failed``) when any of its codewords is
decoded in error (a corrupted HEVC slice is not decodable in any useful way); it is then
replaced by the ``fallback`` image (the training-set mean once the system is prepared).

Bandwidth: ``cbr = Nt L_i / (3 H W)``, complex symbols entering the channel (all ``Nt``
antennas per channel use) per real source value; the project's CR is ``2 cbr``.

SNR: ``snr_db`` per receive antenna with ``E|h|^2 = 1`` and the total transmit energy per
channel use ``Nt`` (water-filling spends exactly that), i.e. ``no = Nt / snr``: the
``"average"`` SNR definition (``link.snr``, required) of :mod:`semsim.phy.channel`, whose
factory :func:`~semsim.phy.channel.make_channel` builds the channel and computes ``no``.
CSI: perfect at both ends (SVD precoding needs the transmitter to know ``H``); the link
must say ``precoding: svd``, so the scenario's other systems get the same transmitter
CSI through :class:`~semsim.phy.AnalogLink`/:class:`~semsim.phy.DigitalLink`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from semsim.codecs.base import DecodeError
from semsim.codecs.hevc import HEVCCodec
from semsim.phy.channel import make_channel
from semsim.phy.ldpc import LDPC5GCodec
from semsim.phy.precoding import SVDPrecoder
from semsim.phy.qam import QAMDemapper, QAMMapper
from semsim.phy.spec import LinkSpec

#: HEVC QPs of the paper.
QPS = (28, 31, 34, 37, 41)
#: LDPC code rates of the paper.
RATES = {"1/2": 0.5, "3/4": 0.75}
#: LDPC codeword length n (code bits).
CODEWORD_BITS = 2048
LENGTH_FIELD_BITS = 16
#: Effective noise variance standing in for "stream switched off" (LLRs ~ 0).
_OFF_STREAM_NO = 1e6


@dataclasses.dataclass
class ChainOutput:
    """``images_hat`` ``[B, H, W, 3]`` float32; ``cbr``, ``failed`` (0/1),
    ``source_bits`` (HEVC payload + length field): ``[B]`` float32."""

    images_hat: np.ndarray
    cbr: np.ndarray
    failed: np.ndarray
    source_bits: np.ndarray


def check_qp_rate(qp: int, rate: str) -> None:
    if qp not in QPS:
        raise ValueError(f"qp must be one of {QPS}, got {qp!r}")
    if rate not in RATES:
        raise ValueError(f"rate must be one of {', '.join(RATES)}, got {rate!r}")


class StandardChain:
    """The chain for one link (single user, perfect CSI).

    ``send(images, qp, rate, snr_db, h, precode=None, cen=None)``: ``images``
    ``[B, H, W, 3]`` in [0, 1], ``h`` ``[B, Nr, Nt]`` complex64 (drawn when ``None``).
    ``precode``: optional ``(streams [B, S, L], precoder) -> x [B, Nt, L]`` replacing
    the linear SVD precoder (PCEN's PEN); ``cen``: optional ``(y, h, no) -> y`` applied at
    the receiver before combining.
    """

    def __init__(self, link: LinkSpec, num_iter: int = 20):
        if link.users != 1:
            raise ValueError(f"the SCSC chain is single-user, got users={link.users}")
        if link.csi.mode != "perfect":
            raise ValueError(f"the SCSC chain needs csi 'perfect' (SVD precoding), got {link.csi.mode!r}")
        if link.precoding != "svd":
            # equal terms: the chain precodes, so the scenario must give every system the
            # same transmitter CSI (AnalogLink/DigitalLink precode with the same SVD)
            raise ValueError("the SCSC chain precodes with SVD and water-filling: set link "
                             f"precoding 'svd' so every system gets it, got {link.precoding!r}")
        self.link = link
        self.nr, self.nt = link.num_rx_ant, link.num_tx_ant
        self.streams = min(self.nr, self.nt)
        self.codec = HEVCCodec()
        if link.fading != "block" or link.snr != "average":
            raise ValueError("the SCSC chain needs fading 'block' and snr 'average' (water-filling "
                             f"uses no = Nt / snr), got {link.fading!r} and {link.snr!r}")
        self.channel = make_channel(link)
        self.mapper, self.demapper = QAMMapper("qpsk"), QAMDemapper("qpsk")
        self.ldpc = {r: LDPC5GCodec(int(v * CODEWORD_BITS), CODEWORD_BITS, num_iter=num_iter)
                     for r, v in RATES.items()}
        # One trace per code whatever the number of codewords.
        spec = [tf.TensorSpec([None, CODEWORD_BITS], tf.float32)]
        self._decode = {r: tf.function(c.decode, input_signature=spec) for r, c in self.ldpc.items()}
        self.fallback: np.ndarray | None = None

    def noise_variance(self, snr_db) -> np.ndarray:
        """``no = Nt / snr`` (linear), ``[B]`` from ``snr_db`` scalar or ``[B]``."""
        return self.nt / 10.0 ** (np.asarray(snr_db, np.float32) / 10.0)

    def encode_payloads(self, images: np.ndarray, qp: int) -> list[np.ndarray]:
        """Per image the framed source bits ``[16-bit length][HEVC payload]`` (uint8 0/1)."""
        out = []
        for image in images:
            payload = self.codec.encode(image, qp).payload
            length = np.unpackbits(np.frombuffer(len(payload).to_bytes(2, "big"), np.uint8))
            out.append(np.concatenate([length, np.unpackbits(np.frombuffer(payload, np.uint8))]))
        return out

    def send(self, images, qp: int, rate: str, snr_db, h=None,
             precode: Callable | None = None, cen: Callable | None = None) -> ChainOutput:
        check_qp_rate(qp, rate)
        images = np.asarray(images, np.float32)
        batch, shape = len(images), images.shape[1:3]
        code = self.ldpc[rate]
        k, n = code.k, code.n
        sources = self.encode_payloads(images, qp)
        n_cw = [math.ceil(len(b) / k) for b in sources]
        info = np.zeros((sum(n_cw), k), np.float32)
        row = 0
        for bits, c in zip(sources, n_cw, strict=True):
            info[row:row + c].reshape(-1)[:len(bits)] = bits
            row += c
        symbols = self.mapper(code.encode(info)).numpy()  # [C, n/2]
        s = self.streams
        uses = [math.ceil(c * n // 2 / s) for c in n_cw]
        streams = np.zeros((batch, s, max(uses)), np.complex64)
        row = 0
        for i, c in enumerate(n_cw):
            sym = symbols[row:row + c].reshape(-1)
            row += c
            padded = np.zeros(s * uses[i], np.complex64)
            padded[:len(sym)] = sym
            streams[i, :, :uses[i]] = padded.reshape(uses[i], s).T
        if h is None:
            h = self.channel.sample_channel(batch)
        h = tf.convert_to_tensor(h, tf.complex64)
        snr_db = np.broadcast_to(np.asarray(snr_db, np.float32), (batch,))
        precoder = SVDPrecoder(h, self.noise_variance(snr_db))
        x = precoder.precode(streams) if precode is None else precode(streams, precoder)
        y, _, no = self.channel(x, snr_db, h=h)
        if cen is not None:
            y = cen(y, h, no)
        est, no_eff = precoder.combine(y)
        no_eff = tf.minimum(no_eff, _OFF_STREAM_NO).numpy()
        est = est.numpy()
        llr_rows = []
        for i, c in enumerate(n_cw):
            e = est[i, :, :uses[i]].T.reshape(-1)[:c * n // 2]
            v = np.tile(no_eff[i], uses[i])[:c * n // 2]
            llr_rows.append(self.demapper(e[np.newaxis], v[np.newaxis]).numpy().reshape(c, n))
        info_hat = self._decode[rate](tf.constant(np.concatenate(llr_rows))).numpy()
        wrong = np.any(info_hat != info, axis=1)
        images_hat = np.empty_like(images)
        failed = np.zeros(batch, np.float32)
        row = 0
        for i, c in enumerate(n_cw):
            bad = wrong[row:row + c].any()
            bits = info_hat[row:row + c].reshape(-1).astype(np.uint8)
            row += c
            if not bad:
                length = int.from_bytes(np.packbits(bits[:LENGTH_FIELD_BITS]).tobytes(), "big")
                payload = np.packbits(bits[LENGTH_FIELD_BITS:]).tobytes()[:length]
                try:
                    images_hat[i] = self.codec.decode(payload, shape)
                    continue
                except DecodeError:
                    pass
            failed[i] = 1.0
            images_hat[i] = self.fallback_image(shape)
        cbr = np.asarray([self.nt * u for u in uses], np.float32) / (3 * shape[0] * shape[1])
        source_bits = np.asarray([len(b) for b in sources], np.float32)
        return ChainOutput(images_hat, cbr, failed, source_bits)

    def fallback_image(self, shape) -> np.ndarray:
        """The image shown for a lost one: :attr:`fallback` (training mean) or mid-grey."""
        if self.fallback is not None:
            return self.fallback
        return np.full((*shape, 3), 0.5, np.float32)
