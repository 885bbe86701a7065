"""Declarative description of a physical link (what a scenario's ``link:`` and ``csi:``
sections resolve to)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class CSISpec:
    """Channel-state information available at the receiver (and fed back).

    mode: ``"perfect"``, ``"ls"`` (pilots + least squares) or ``"noisy"``
    (``H_hat = H + dH``). ``pilots``: pilot length in channel uses (``ls``).
    ``error_var``: variance of ``dH`` entries (``noisy``); ``None`` means equal to
    the noise variance.
    """

    mode: Literal["perfect", "ls", "noisy"] = "ls"
    pilots: int | None = None
    error_var: float | None = None


@dataclasses.dataclass(frozen=True)
class LinkSpec:
    """The physical link of a scenario.

    Single user: ``users == 1`` and ``antennas_per_user == num_tx_ant``.
    Multi-user uplink: ``users`` single- or multi-antenna users to one
    ``num_rx_ant``-antenna receiver (``num_tx_ant == users * antennas_per_user``).
    ``fading``: ``"block"`` (one H per image), ``"fast"`` (one H per channel use)
    or ``"none"`` (AWGN, H = I). ``rx_correlation``/``tx_correlation``: exponential
    correlation coefficients (0 = uncorrelated). ``detector``: ``"lmmse"`` or ``"zf"``.
    ``snr``: how the SNR sets the noise variance, for every system of the scenario:
    ``"average"`` (per-receive-antenna average SNR, ``no = A Es / snr`` with fading) or
    ``"realized"`` (the papers' ``||HX||^2 / (||HX||_0 sigma^2)``); see
    :mod:`semsim.phy.channel`.
    ``model``: ``"rayleigh"`` (i.i.d. CN(0, 1)) or a 3GPP TR 38.901 model ``"cdl-a"`` ...
    ``"tdl-e"`` (:mod:`semsim.phy.tr38901`) with RMS delay spread ``delay_spread_ns`` (ns).
    ``precoding``: ``"none"``, ``"svd"`` (transmitter CSI: SVD precoding with
    water-filling on the fed-back ``h_hat``, :mod:`semsim.phy.precoding`) or ``"type1"``
    (3GPP Type I 2-port codebook, PMI chosen from ``h_hat``, :mod:`semsim.phy.codebook`).
    """

    num_rx_ant: int = 2
    users: int = 1
    antennas_per_user: int = 2
    fading: Literal["block", "fast", "none"] = "block"
    rx_correlation: float = 0.0
    tx_correlation: float = 0.0
    csi: CSISpec = dataclasses.field(default_factory=CSISpec)
    detector: Literal["lmmse", "zf"] = "lmmse"
    snr: Literal["average", "realized"] = "average"
    model: str = "rayleigh"
    delay_spread_ns: float = 100.0
    precoding: Literal["none", "svd", "type1"] = "none"

    @property
    def num_tx_ant(self) -> int:
        return self.users * self.antennas_per_user


def link_to_config(link: LinkSpec) -> dict:
    """JSON-able dict of a :class:`LinkSpec` (for Keras ``get_config``)."""
    return dataclasses.asdict(link)


def link_from_config(config: dict | LinkSpec) -> LinkSpec:
    """Inverse of :func:`link_to_config`; a ``LinkSpec`` passes through unchanged."""
    if isinstance(config, LinkSpec):
        return config
    config = dict(config)
    csi = config.get("csi", {})
    config["csi"] = csi if isinstance(csi, CSISpec) else CSISpec(**csi)
    return LinkSpec(**config)


PRECODING_MODES = ("none", "svd", "type1")


def check_precoding(precoding: str, *, users: int, num_rx_ant: int, num_tx_ant: int,
                    fading: str, snr: str, detector: str) -> None:
    """Raise a one-line ``ValueError`` unless the link supports ``precoding``.

    ``svd`` needs a single-user link (the users of an uplink cannot share one precoder),
    block fading or none (one ``H`` per block, known before sending), ``nr >= nt`` (one
    eigenmode per layout stream), the ``average`` SNR definition (water-filling needs the
    noise level before sending; ``realized`` depends on the precoded signal) and the LMMSE
    detector (streams water-filling switches off make the effective channel singular for ZF).
    ``type1`` has the same needs (its PMI is chosen for the LMMSE receiver at the link's
    noise level, one layer per layout stream) and ``nt == 2`` (the one codebook built).
    """
    if precoding not in PRECODING_MODES:
        raise ValueError(f"precoding must be one of {', '.join(PRECODING_MODES)}, got {precoding!r}")
    if precoding == "none":
        return
    mode = "eigenmode" if precoding == "svd" else "layer"
    problems = [
        (users != 1, f"a single-user link (users is {users})"),
        (fading not in ("block", "none"), f"fading 'block' or 'none' (got {fading!r})"),
        (precoding == "type1" and num_tx_ant != 2,
         f"nt == 2, only the 2-port codebook is implemented (got nt={num_tx_ant})"),
        (num_rx_ant < num_tx_ant,
         f"nr >= nt, one {mode} per transmit stream (got nr={num_rx_ant}, nt={num_tx_ant})"),
        (snr != "average", f"snr 'average' (got {snr!r})"),
        (detector != "lmmse", f"detector 'lmmse' (got {detector!r})"),
    ]
    for bad, need in problems:
        if bad:
            raise ValueError(f"precoding: {precoding!r} needs {need}")
