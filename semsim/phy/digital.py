"""A classic digital link: channel code -> QAM -> MIMO spatial multiplexing -> detection.

Chain (one codeword per example)::

    bits [B, k] -> encode [B, n] -> QAM [B, S] -> streams [B, Nt, L]
        -> the link's channel (make_channel) -> CSI estimate -> LMMSE/ZF (unbiased)
        -> soft demapping with the per-stream no_eff -> decode -> bits_hat [B, k]

Stream mapping (:mod:`semsim.phy.layout`, the one layout of every system): symbol ``j`` of a
codeword is sent on stream ``j mod Nt`` in channel use ``j // Nt``, so ``L = ceil(S / Nt)``
channel uses carry ``S = ceil(n / m)`` symbols (``m`` bits per symbol). Missing code bits of
the last symbol are zero padding (ignored at the receiver); the ``Nt L - S`` trailing slots of
the last channel use are not sent.

SNR convention
--------------
``snr_db`` is the per-receive-antenna SNR of the link's definition (``snr``, default
``"average"``, see :mod:`semsim.phy.channel`): average received symbol energy per receive
antenna over ``N0``
(noise variance per complex receive sample). Every stream carries unit-energy symbols and
``E|h_ij|^2 = 1``, so with fading ``snr = Nt Es / N0``: for a single stream (SISO, or
``Nt = 1``) it is exactly Es/N0, and each of ``Nt`` streams sees ``Es/N0 = snr / Nt`` before
combining. Without fading (``fading="none"``, ``H = I``) each antenna receives one stream and
``snr`` is Es/N0 of every stream. Multi-user uplinks use :class:`~semsim.phy.MultiUserUplinkChannel`
(SNR per user: ``snr = A Es / N0`` for ``A`` antennas per user under fading).

Transmitter CSI (``precoding="svd"``): as in :class:`~semsim.phy.AnalogLink`, the streams
are precoded by ``F = V diag(sqrt(p))`` from the receiver's estimate ``h_hat`` (fed back)
with water-filling at the link's noise variance, and the (unbiased) LMMSE detector runs on
``h_hat F``; symbols of a stream that water-filling switches off get zero LLRs.
``precoding="type1"``: the same with ``F = sqrt(2) W``, ``W`` the 3GPP Type I 2-port
codeword whose PMI the receiver chose from ``h_hat`` (:mod:`semsim.phy.codebook`).

Multi-user uplink (``users = K > 1``): each user sends its own codeword on its ``A`` antennas;
bits are ``[B, K, k]`` and the output likewise.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from semsim.phy import layout
from semsim.phy.channel import FADING_MODES, make_channel
from semsim.phy.codebook import type1_precoding_matrix
from semsim.phy.csi import make_csi
from semsim.phy.detection import LMMSEDetector, ZFDetector
from semsim.phy.dvbs2 import CODES as DVBS2_CODES
from semsim.phy.dvbs2 import DVBS2LDPCCodec
from semsim.phy.layer import PhyLayer
from semsim.phy.ldpc import LDPC5GCodec
from semsim.phy.precoding import svd_precoding_matrix
from semsim.phy.qam import QAMDemapper, QAMMapper, bits_per_symbol
from semsim.phy.spec import CSISpec, LinkSpec, check_precoding

CODES = ("none", "ldpc5g", "dvbs2")
DETECTORS = ("lmmse", "zf")
CSI_MODES = ("perfect", "ls", "noisy")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@keras.saving.register_keras_serializable(package="semsim.phy")
class DigitalLink(PhyLayer):
    """Coded (or uncoded) QAM over a flat Rayleigh MIMO link with linear detection.

    Parameters
    ----------
    modulation : ``"bpsk"`` | ``"qpsk"`` | ``"16qam"`` | ``"64qam"`` | ``"256qam"``
    code : ``"none"`` | ``"ldpc5g"`` | ``"dvbs2"``
        ``none``: ``k`` bits per block (default ``64 * Nt * m``), ``n = k``. ``ldpc5g``: ``k``
        and ``n`` required (:class:`~semsim.phy.ldpc.LDPC5GCodec`). ``dvbs2``: rate-1/2 code of
        ``frame`` (``k``/``n`` fixed; if given they must match).
    frame : ``"normal"`` | ``"short"``  (DVB-S2 only)
    num_rx_ant, num_tx_ant : int
        ``Nr`` and ``Nt`` (single user; ``Nt`` spatially multiplexed streams).
    users, antennas_per_user : int
        Multi-user uplink when ``users > 1`` (then ``num_tx_ant`` is ignored and
        ``Nt = users * antennas_per_user``).
    fading : ``"block"`` (one ``H`` per codeword) | ``"fast"`` | ``"none"`` (AWGN, ``H = I``)
    csi : ``"perfect"`` | ``"ls"`` | ``"noisy"``, with ``pilots`` (LS pilot length) and
        ``csi_error_var`` (noisy CSI error variance, ``None`` = noise variance).
    detector : ``"lmmse"`` (unbiased, bias-corrected) | ``"zf"``
    snr : ``"average"`` | ``"realized"``
        The link's SNR definition (:mod:`semsim.phy.channel`).
    num_iter : int | None
        BP iterations (default 20 for 5G, 50 for DVB-S2).
    demapping : ``"app"`` | ``"maxlog"``
    precoding : ``"none"`` | ``"svd"`` | ``"type1"``
        Transmitter CSI (module docstring; :func:`semsim.phy.precoding.check_precoding`).
    model : ``"rayleigh"`` | a TR 38.901 ``"cdl-a"`` ... ``"tdl-e"``, with ``delay_spread_ns``
        The channel model the link draws ``H`` from when no ``h`` is given.

    Call
    ----
    bits : float32 0/1, ``[B, k]`` (multi-user ``[B, K, k]``)
    snr_db : scalar or ``[B]`` float32, see the module's SNR convention
    h : optional complex64 channel realization to reuse (``[B, Nr, Nt]`` block/none)

    Returns hard decisions ``bits_hat`` float32 of the shape of ``bits``.
    """

    def __init__(self, modulation: str, code: str = "none", k: int | None = None,
                 n: int | None = None, frame: str = "normal", num_rx_ant: int = 1,
                 num_tx_ant: int = 1, users: int = 1, antennas_per_user: int = 1,
                 fading: str = "block", csi: str = "perfect", pilots: int | None = None,
                 csi_error_var: float | None = None, detector: str = "lmmse",
                 num_iter: int | None = None, demapping: str = "app",
                 rx_correlation: float = 0.0, tx_correlation: float = 0.0,
                 snr: str = "average", precoding: str = "none", model: str = "rayleigh",
                 delay_spread_ns: float = 100.0, **kwargs):
        super().__init__(**kwargs)
        m = bits_per_symbol(modulation)
        if code not in CODES:
            raise ValueError(f"code must be one of {CODES}, got {code!r}")
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
        if fading not in FADING_MODES:
            raise ValueError(f"fading must be one of {FADING_MODES}, got {fading!r}")
        if csi not in CSI_MODES:
            raise ValueError(f"csi must be one of {CSI_MODES}, got {csi!r}")
        num_rx_ant = _positive_int(num_rx_ant, "num_rx_ant")
        users = _positive_int(users, "users")
        if users > 1:
            antennas_per_user = _positive_int(antennas_per_user, "antennas_per_user")
            num_tx_ant = users * antennas_per_user
        else:
            num_tx_ant = _positive_int(num_tx_ant, "num_tx_ant")
            antennas_per_user = num_tx_ant
        if detector == "zf" and num_rx_ant < num_tx_ant:
            raise ValueError(f"detector 'zf' needs num_rx_ant >= streams, "
                             f"got {num_rx_ant} < {num_tx_ant}")
        self.modulation, self.code_name, self.frame = modulation, code, frame
        self.num_rx_ant, self.num_tx_ant = num_rx_ant, num_tx_ant
        self.users, self.antennas_per_user = users, antennas_per_user
        self.fading, self.detector_name, self.csi_mode = fading, detector, csi
        self.bits_per_symbol = m
        self._config = dict(modulation=modulation, code=code, k=k, n=n, frame=frame,
                            num_rx_ant=num_rx_ant, num_tx_ant=num_tx_ant, users=users,
                            antennas_per_user=antennas_per_user, fading=fading, csi=csi,
                            pilots=pilots, csi_error_var=csi_error_var, detector=detector,
                            num_iter=num_iter, demapping=demapping,
                            rx_correlation=rx_correlation, tx_correlation=tx_correlation,
                            snr=snr, precoding=precoding, model=model,
                            delay_spread_ns=delay_spread_ns)
        check_precoding(precoding, users=users, num_rx_ant=num_rx_ant, num_tx_ant=num_tx_ant,
                        fading=fading, snr=snr, detector=detector)
        self.precoding = precoding

        self.codec = self._make_codec(code, k, n, frame, num_iter)
        self.k = self.codec.k if self.codec is not None else self._uncoded_k(k, n)
        self.n = self.codec.n if self.codec is not None else self.k
        self.num_symbols = math.ceil(self.n / m)  # S, per codeword (per user)
        self.num_channel_uses = math.ceil(self.num_symbols / antennas_per_user)  # L

        self.mapper = QAMMapper(modulation)
        self.demapper = QAMDemapper(modulation, method=demapping)
        self.channel = make_channel(LinkSpec(
            num_rx_ant=num_rx_ant, users=users, antennas_per_user=antennas_per_user,
            fading=fading, rx_correlation=rx_correlation, tx_correlation=tx_correlation,
            csi=CSISpec(csi, pilots, csi_error_var), detector=detector, snr=snr, model=model,
            delay_spread_ns=delay_spread_ns))
        if csi == "ls" and fading == "fast":
            raise ValueError("csi 'ls' (pilots) cannot follow fading 'fast'; "
                             "use csi 'perfect' or 'noisy'")
        if pilots is not None and csi != "ls":
            raise ValueError(f"pilots is only used with csi 'ls', got csi {csi!r}")
        if csi_error_var is not None and csi != "noisy":
            raise ValueError(f"csi_error_var is only used with csi 'noisy', got csi {csi!r}")
        self.csi = make_csi(csi, num_tx_ant, pilots, csi_error_var)
        self.detector = (LMMSEDetector(unbiased=True) if detector == "lmmse" else ZFDetector())

    @classmethod
    def from_spec(cls, link, modulation: str, code: str = "none", **kwargs) -> DigitalLink:
        """Build from a :class:`semsim.phy.LinkSpec` (antennas, users, fading, correlation,
        CSI, detector, SNR definition, precoding, channel model); ``kwargs`` are the code
        options (``k``, ``n``, ``frame``, ...)."""
        return cls(modulation, code, num_rx_ant=link.num_rx_ant, num_tx_ant=link.num_tx_ant,
                   users=link.users, antennas_per_user=link.antennas_per_user,
                   fading=link.fading, csi=link.csi.mode, pilots=link.csi.pilots,
                   csi_error_var=link.csi.error_var, detector=link.detector,
                   rx_correlation=link.rx_correlation, tx_correlation=link.tx_correlation,
                   snr=link.snr, precoding=link.precoding, model=link.model,
                   delay_spread_ns=link.delay_spread_ns, **kwargs)

    @staticmethod
    def _make_codec(code, k, n, frame, num_iter):
        if code == "ldpc5g":
            if k is None or n is None:
                raise ValueError("code 'ldpc5g' needs both k and n")
            return LDPC5GCodec(k, n, num_iter=20 if num_iter is None else num_iter)
        if code == "dvbs2":
            if (frame, "1/2") not in DVBS2_CODES:
                raise ValueError(f"frame must be 'normal' or 'short', got {frame!r}")
            n_fixed, k_fixed, _ = DVBS2_CODES[(frame, "1/2")]
            if (k is not None and k != k_fixed) or (n is not None and n != n_fixed):
                raise ValueError(f"DVB-S2 {frame} frame has k={k_fixed}, n={n_fixed}; "
                                 f"got k={k}, n={n}")
            return DVBS2LDPCCodec(frame, "1/2", num_iter=50 if num_iter is None else num_iter)
        if num_iter is not None:
            raise ValueError("num_iter needs a channel code (code 'ldpc5g' or 'dvbs2')")
        return None

    def _uncoded_k(self, k, n):
        if n is not None and k is not None and n != k:
            raise ValueError(f"uncoded blocks have n == k, got k={k}, n={n}")
        k = k if k is not None else n
        if k is None:
            return 64 * self.antennas_per_user * self.bits_per_symbol
        return _positive_int(k, "k")

    @property
    def rate(self) -> float:
        """Information bits per code bit ``k / n``."""
        return self.k / self.n

    def channel_uses_per_codeword(self, include_pilots: bool = False) -> int:
        """Complex channel uses (of all ``Nt`` antennas at once) one codeword occupies.

        ``L = ceil(ceil(n / m) / Nt)`` (multi-user: per user's codeword, all users sending
        simultaneously, ``Nt -> antennas_per_user``). With ``include_pilots`` the LS pilot
        length (once per block-fading realization) is added.
        """
        extra = int(getattr(self.csi, "overhead", 0)) if include_pilots else 0
        return self.num_channel_uses + extra

    @property
    def info_bits_per_channel_use(self) -> float:
        """Spectral efficiency: information bits of all streams (users) per channel use."""
        return self.users * self.k / self.num_channel_uses

    def encode(self, bits):
        """``[..., k]`` -> ``[..., n]`` float32 code bits (identity when uncoded)."""
        bits = tf.cast(bits, tf.float32)
        return bits if self.codec is None else self.codec.encode(bits)

    def decode(self, llr):
        """``[..., n]`` logits -> ``[..., k]`` float32 hard bits."""
        if self.codec is None:
            return tf.cast(llr > 0, tf.float32)
        return self.codec.decode(llr)

    def _to_streams(self, c):
        """Code bits ``[B, n]`` -> symbols on streams ``[B, A, L]`` complex64 and their sent
        mask (:func:`semsim.phy.layout.place`)."""
        pad_bits = self.num_symbols * self.bits_per_symbol - self.n
        if pad_bits:
            c = tf.pad(c, [[0, 0], [0, pad_bits]])
        return layout.place(self.mapper(c), self.antennas_per_user)

    def _from_streams(self, z):
        """``[B, A, L]`` -> ``[B, S]`` (drops the unsent slots)."""
        return layout.unplace(z, self.num_symbols)

    def send(self, x, snr_db, h=None, sent=None):
        """Symbols on streams through the channel, CSI estimation and detection.

        ``x`` complex64 ``[B, Nt, L]`` (multi-user ``[B, K, A, L]``), ``sent`` its 0/1 mask
        (``None``: all), ``snr_db`` scalar or ``[B]``, ``h`` optional realization. Returns
        ``(x_hat, no_eff, sent_reals)``: detected symbols and effective noise variances,
        ``[B, Nt, L]`` (``[B, K A, L]``), and the real symbols that entered the channel
        ``[B]`` (multi-user ``[B, K]``).
        """
        x = tf.cast(x, tf.complex64)
        sent = tf.ones(tf.shape(x), tf.float32) if sent is None else tf.cast(sent, tf.float32)
        snr_db = tf.cast(snr_db, tf.float32)
        x = x * tf.cast(sent, tf.complex64)
        if self.precoding != "none":  # CSI first: the transmitter precodes with h_hat
            h = self.channel.sample_channel(tf.shape(x)[0]) if h is None else h
            h = tf.cast(h, tf.complex64)
            no_pilot = self.channel.noise_variance(h, snr_db)
            h_hat, _ = self.csi(h, no_pilot)
            f = (svd_precoding_matrix if self.precoding == "svd" else type1_precoding_matrix)(
                h_hat, no_pilot)
            used = tf.broadcast_to(tf.reduce_max(sent, axis=-2, keepdims=True), tf.shape(sent))
            y, h, no = self.channel(tf.matmul(f, x), snr_db, h=h, sent=used)
            x_hat, no_eff = self.detector(y, tf.matmul(h_hat, f), no)
            return x_hat, no_eff, 2.0 * tf.reduce_sum(sent, axis=[-2, -1])
        y, h, no = self.channel(x, snr_db, h=h, sent=sent)
        h_hat, _ = self.csi(h, self.channel.noise_variance(h, snr_db))
        x_hat, no_eff = self.detector(y, h_hat, no)
        return x_hat, no_eff, 2.0 * tf.reduce_sum(sent, axis=[-2, -1])

    def call(self, bits, snr_db, h=None):
        bits = tf.convert_to_tensor(bits)
        multi = self.users > 1
        expected_rank = 3 if multi else 2
        if bits.shape.rank != expected_rank or bits.shape[-1] != self.k or (
                multi and bits.shape[1] != self.users):
            want = f"[B, {self.users}, {self.k}]" if multi else f"[B, {self.k}]"
            raise ValueError(f"bits must have shape {want}, got {bits.shape}")
        batch = tf.shape(bits)[0]
        c = self.encode(tf.reshape(bits, [-1, self.k]))  # [B*K, n]
        x, sent = self._to_streams(c)  # [B*K, A, L]
        if multi:
            x = tf.reshape(x, [batch, self.users, self.antennas_per_user, -1])
            sent = tf.reshape(sent, tf.shape(x))
        x_hat, no_eff, _ = self.send(x, snr_db, h=h, sent=sent)  # [B, Nt, L]
        x_hat = tf.reshape(x_hat, [-1, self.antennas_per_user, self.num_channel_uses])
        no_eff = tf.reshape(no_eff, [-1, self.antennas_per_user, self.num_channel_uses])
        llr = self.demapper(self._from_streams(x_hat), self._from_streams(no_eff))
        u_hat = self.decode(llr[:, : self.n])
        return tf.reshape(u_hat, tf.shape(bits))

    def get_config(self):
        return {**super().get_config(), **self._config}
