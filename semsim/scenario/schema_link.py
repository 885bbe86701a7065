"""The physical-layer sections of the scenario schema (``link``, ``link.csi``, ``snr``)
and the base of every scenario model (:class:`Strict`, unknown keys are errors); the rest
of the schema is :mod:`semsim.scenario.schema`.

Units: SNRs in dB (per-receive-antenna average SNR under ``link.snr: average``);
correlations are the coefficients of the exponential model (0 = uncorrelated).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from semsim.phy.spec import check_precoding
from semsim.systems.base import CSISpec, LinkSpec

#: Sane SNR range of a scenario, in dB.
SNR_MIN_DB = -20.0
SNR_MAX_DB = 60.0

SnrDb = Annotated[float, Field(ge=SNR_MIN_DB, le=SNR_MAX_DB)]
Correlation = Annotated[float, Field(ge=0.0, lt=1.0)]


class Strict(BaseModel):
    """Base of all scenario models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class CSIConfig(Strict):
    """Receiver CSI. ``csi: perfect`` is short for ``csi: {mode: perfect}``.

    ``ls``: least-squares estimate from ``pilots`` pilot channel uses (at least the
    number of transmit antennas; defaults to it). ``noisy``: ``H_hat = H + dH`` with
    ``error_var`` the variance of each ``dH`` entry, or ``noise`` for
    ``sigma_e^2 = sigma_n^2`` (the noise variance of each example).
    """

    mode: Literal["perfect", "ls", "noisy"] = "perfect"
    pilots: Annotated[int, Field(gt=0)] | None = None
    error_var: Annotated[float, Field(gt=0.0)] | Literal["noise"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"mode": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _options_match_mode(self) -> CSIConfig:
        if self.pilots is not None and self.mode != "ls":
            raise ValueError(f"pilots: only allowed with mode 'ls', mode is {self.mode!r}")
        if self.error_var is not None and self.mode != "noisy":
            raise ValueError(f"error_var: only allowed with mode 'noisy', mode is {self.mode!r}")
        if self.mode == "noisy" and self.error_var is None:
            raise ValueError("error_var: required with mode 'noisy' (a variance > 0, or 'noise')")
        return self

    def to_spec(self) -> CSISpec:
        error_var = None if self.error_var in (None, "noise") else float(self.error_var)
        return CSISpec(mode=self.mode, pilots=self.pilots, error_var=error_var)


class LinkConfig(Strict):
    """The MIMO link.

    Single user: ``nt`` transmit antennas to ``nr`` receive antennas. Multi-user
    uplink: ``users`` (K) users with ``antennas_per_user`` antennas each (default 1)
    to ``nr`` (M) receive antennas; ``nt`` is then not given. ``snr``: the SNR definition
    every system of the scenario uses (``average``: per-receive-antenna average SNR, the
    default; ``realized``: the papers' ``||HX||^2 / (||HX||_0 sigma^2)``), see docs/phy.md.
    ``model``: ``rayleigh``
    (i.i.d.) or a 3GPP TR 38.901 model (``cdl-a`` ... ``tdl-e``, single user, block fading,
    no extra correlation) with RMS delay spread ``delay_spread_ns`` in ns. ``precoding``:
    ``none``, ``svd`` (transmitter CSI for every system: SVD precoding with water-filling
    on the receiver's fed-back estimate, LMMSE detection on the effective channel; single
    user, block fading or none, ``nr >= nt``, ``snr: average``, ``detector: lmmse``; see
    docs/phy.md) or ``type1`` (the same with the 3GPP Type I 2-port codebook and PMI
    feedback instead of the SVD; ``nt: 2``).
    """

    nr: Annotated[int, Field(gt=0)]
    nt: Annotated[int, Field(gt=0)] | None = None
    users: Annotated[int, Field(gt=0)] = 1
    antennas_per_user: Annotated[int, Field(gt=0)] | None = None
    fading: Literal["block", "fast", "none"] = "block"
    rx_correlation: Correlation = 0.0
    tx_correlation: Correlation = 0.0
    csi: CSIConfig = Field(default_factory=CSIConfig)
    detector: Literal["lmmse", "zf"] = "lmmse"
    snr: Literal["average", "realized"] = "average"
    model: Literal["rayleigh", "cdl-a", "cdl-b", "cdl-c", "cdl-d", "cdl-e",
                   "tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e"] = "rayleigh"
    delay_spread_ns: Annotated[float, Field(gt=0.0)] = 100.0
    precoding: Literal["none", "svd", "type1"] = "none"

    @model_validator(mode="after")
    def _consistent(self) -> LinkConfig:
        if self.model != "rayleigh" and (self.users > 1 or self.fading != "block"
                                         or self.rx_correlation or self.tx_correlation):
            raise ValueError(f"model: {self.model!r} needs a single-user link with fading "
                             "'block' and no rx/tx_correlation")
        if self.users == 1:
            if self.antennas_per_user is not None:
                raise ValueError("antennas_per_user: only for multi-user links (users > 1); "
                                 "a single-user link gives nt")
            if self.nt is None:
                raise ValueError("nt: required for a single-user link (users: 1)")
        else:
            if self.nt is not None:
                raise ValueError(f"nt: not allowed with users: {self.users}; a multi-user link "
                                 "gives antennas_per_user (default 1)")
            if self.antennas_per_user is None:
                self.antennas_per_user = 1
            if self.tx_correlation != 0.0:
                raise ValueError("tx_correlation: must be 0 for a multi-user link "
                                 "(users are not co-located)")
        streams = self.num_tx_ant
        if self.detector == "zf" and streams > self.nr:
            raise ValueError(
                f"detector: 'zf' cannot separate {streams} transmit streams with nr={self.nr} "
                "receive antennas (ZF needs nr >= streams); use detector: lmmse"
            )
        if self.fading == "none" and streams != self.nr:
            raise ValueError(f"fading: 'none' (H = I) needs as many transmit streams ({streams}) "
                             f"as receive antennas (nr={self.nr})")
        if self.csi.mode == "ls":
            if self.csi.pilots is None:
                self.csi.pilots = streams
            elif self.csi.pilots < streams:
                raise ValueError(f"csi.pilots: {self.csi.pilots} is too few for {streams} transmit "
                                 f"streams (LS needs pilots >= {streams})")
        check_precoding(self.precoding, users=self.users, num_rx_ant=self.nr, num_tx_ant=streams,
                        fading=self.fading, snr=self.snr, detector=self.detector)
        return self

    @property
    def num_tx_ant(self) -> int:
        return self.nt if self.users == 1 else self.users * self.antennas_per_user

    def to_spec(self) -> LinkSpec:
        return LinkSpec(
            num_rx_ant=self.nr,
            users=self.users,
            antennas_per_user=self.num_tx_ant if self.users == 1 else self.antennas_per_user,
            fading=self.fading,
            rx_correlation=self.rx_correlation,
            tx_correlation=self.tx_correlation,
            csi=self.csi.to_spec(),
            detector=self.detector,
            snr=self.snr,
            model=self.model,
            delay_spread_ns=self.delay_spread_ns,
            precoding=self.precoding,
        )


def check_range(value: tuple[float, float] | None) -> tuple[float, float] | None:
    """``value`` unchanged, a ``ValueError`` when its low end is above its high end."""
    if value is not None and value[0] > value[1]:
        raise ValueError(f"the low end {value[0]} is above the high end {value[1]}")
    return value


class SNRConfig(Strict):
    """``train_db``: ``[lo, hi]`` training range (SNR drawn per image from ``U[lo, hi]``);
    ``eval_db``: the evaluation grid, distinct values."""

    train_db: tuple[SnrDb, SnrDb] = (0.0, 20.0)
    eval_db: Annotated[list[SnrDb], Field(min_length=1)] = Field(
        default_factory=lambda: [0.0, 5.0, 10.0, 15.0, 20.0])

    @field_validator("train_db")
    @classmethod
    def _train_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        return check_range(value)

    @field_validator("eval_db")
    @classmethod
    def _distinct(cls, value: list[float]) -> list[float]:
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise ValueError(f"values must be distinct, repeated: {repeated}")
        return value
