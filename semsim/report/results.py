"""The ``results.json`` schema (versioned) and its CSV export.

``results.json`` (``schema_version`` 3; metric definitions in ``docs/metrics.md``)::

    {
      "schema_version": 3,
      "semsim_version": "0.1.0",
      "created": "2025-01-01T12:00:00+00:00",
      "profile": "quick",                      # profile applied, or null
      "data": "builtin: 32x32 patches ...",    # what the images were
      "metrics": {...},                        # how the figures below were computed
      "scenario": {...},                       # the resolved scenario
      "systems": {
        "<system name>": {
          "type": "reference",
          "snr_db": [0.0, 10.0],               # evaluation SNRs (dB)
          "psnr_db": [...],                    # HEADLINE: mean over images of the
                                               # per-image PSNR of 8-bit images (dB)
          "psnr_ci95_db": [...],               # half-width of its 95 % t-interval
          "psnr_std_db": [...],                # std over images of per-image PSNR
          "psnr_of_mean_mse_db": [...],        # PSNR of the 8-bit MSE averaged over images
          "exact_images": [...],               # images reconstructed exactly (MSE = 0),
                                               # counted at metrics.psnr_cap_db
          "ssim": [...], "ssim_ci95": [...],   # mean SSIM and its 95 % half-width
          "ms_ssim": [...], "ms_ssim_ci95": [...],
          "cr": [...],                         # mean CR (real symbols / 3HW)
          "n_images": [...],
          "train_seconds": 12.3, "eval_seconds": 4.5,
          "steps_done": 600, "steps_planned": 2000,  # optimizer steps (learned systems;
                                               # null otherwise): done < planned means
                                               # under-trained (wall-clock budget)
          "weights": "shipped", "weights_manifest": "...",  # learned systems: shipped |
                                               # trained | resumed (semsim.weights.shipped)
          "weights_convergence": {...},        # shipped weights: the manifest's measured
                                               # convergence (converged, gain_db, steps,
                                               # method, command) or null
          "training_trend": {...},             # weights trained in the run: the second
                                               # half of the validation history (stage,
                                               # steps, val_psnr_db, gain_db, rising;
                                               # semsim.systems.history) or null
          "<extra>": [...]                     # per-SNR mean of each TransmitResult.extras
        }                                      # entry (e.g. kept_maps, side_info_bits,
      },                                       # failed = failure rate; target_cr for
                                               # systems with match_cr_of)
      "bd": {                                  # null unless the scenario names
        "anchor": "chain",                     # eval.bd_anchor (semsim.report.bd)
        "method": "pchip", "rate": "CBR = cr / 2 ...", "min_rate_points": 4,
        "curves": {"chain": ["chain_q28", ...], "deepjscc": ["deepjscc"]},
        "snr_db": [2.0, 6.0],
        "deltas": {"<curve>": {"bd_rate_percent": [...], # % CBR vs the anchor at equal
                               "bd_psnr_db": [...],      # PSNR; dB at equal CBR; null
                               "notes": [...]}},         # with its reason in notes
        "envelope": {"chain_best": [["chain_q41", ...], ...]}  # eval.bd_envelope curves:
      }                                        # systems kept per SNR (null: not evaluated)
    }

Every list of a system is aligned with its ``snr_db``, every list of ``bd.deltas`` with
``bd.snr_db``, as is every list of ``bd.envelope``. Version 2 files (before the ``bd``
section) are read with ``bd`` null; version 3 files written before ``bd.envelope`` existed
are read with it empty (it is additive: a curve without ``eval.bd_envelope`` is unchanged).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from semsim.atomic import write_text
from semsim.systems.params import PROXY_MIN_PSNR_DB

SCHEMA_VERSION = 3
#: Older versions :meth:`ResultsFile.read` still reads (version 2: no ``bd`` section).
READABLE_VERSIONS = (2, SCHEMA_VERSION)
#: Per-SNR lists every system has (in CSV column order).
CORE_LISTS = ("snr_db", "psnr_db", "psnr_ci95_db", "psnr_std_db", "psnr_of_mean_mse_db",
              "exact_images", "ssim", "ssim_ci95", "ms_ssim", "ms_ssim_ci95", "cr", "n_images")
#: Per-system training figures (one value per system).
TRAINING_FIELDS = ("steps_done", "steps_planned")


class SystemResults(BaseModel):
    """One system's results; extra keys are its system-specific per-SNR lists."""

    model_config = ConfigDict(extra="allow")

    type: str
    snr_db: list[float]
    psnr_db: list[float]
    psnr_ci95_db: list[float]
    psnr_std_db: list[float]
    psnr_of_mean_mse_db: list[float]
    exact_images: list[int]
    ssim: list[float]
    ssim_ci95: list[float]
    ms_ssim: list[float]
    ms_ssim_ci95: list[float]
    cr: list[float]
    n_images: list[int]
    train_seconds: float | None = None
    eval_seconds: float | None = None
    steps_done: int | None = None
    steps_planned: int | None = None
    weights: Literal["shipped", "trained", "resumed"] | None = None
    weights_manifest: str | None = None
    weights_convergence: dict[str, Any] | None = None
    training_trend: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _aligned(self) -> SystemResults:
        n = len(self.snr_db)
        for key in CORE_LISTS:
            if len(getattr(self, key)) != n:
                raise ValueError(f"{key} has {len(getattr(self, key))} values, snr_db has {n}")
        for key, values in (self.model_extra or {}).items():
            if not isinstance(values, list) or len(values) != n or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ValueError(f"extra {key!r} must be a list of {n} numbers (one per SNR), "
                                 f"got {values!r}")
        for key in (*CORE_LISTS, *(self.model_extra or {})):
            if not all(math.isfinite(v) for v in getattr(self, key)):
                raise ValueError(f"{key} holds a non-finite value")
        if (self.steps_done is None) != (self.steps_planned is None):
            raise ValueError("steps_done and steps_planned: give both or neither")
        return self

    @property
    def under_trained(self) -> bool:
        """Training stopped before its planned steps (wall-clock budget)."""
        return self.steps_done is not None and self.steps_done < self.steps_planned

    @property
    def not_converged(self) -> bool:
        """Shipped weights whose measured convergence says doubling the steps still pays,
        or weights trained in the run whose validation PSNR still rose by
        :data:`~semsim.systems.history.CONVERGED_GAIN_DB` or more over the second half of
        their training."""
        shipped = bool(self.weights_convergence) and not self.weights_convergence["converged"]
        return shipped or bool(self.training_trend and self.training_trend["rising"])

    @property
    def proxy_failed(self) -> bool:
        """An ``scsc`` system whose proxy did not track the real chain: its
        ``proxy_psnr_db`` (proxy-vs-chain PSNR, the same at every SNR) is below
        :data:`~semsim.systems.params.PROXY_MIN_PSNR_DB`, so its learned modules trained on
        unreliable gradients."""
        values = self.extras().get("proxy_psnr_db")
        return bool(values) and min(values) < PROXY_MIN_PSNR_DB

    def extras(self) -> dict[str, list[float]]:
        """The system-specific per-SNR lists."""
        return {k: [float(v) for v in values] for k, values in (self.model_extra or {}).items()}


class BDDeltas(BaseModel):
    """One curve's Bjontegaard deltas against the anchor, per SNR (``None``: undefined,
    reason in ``notes``)."""

    model_config = ConfigDict(extra="forbid")

    bd_rate_percent: list[float | None]
    bd_psnr_db: list[float | None]
    notes: list[str | None]


class BDResults(BaseModel):
    """The ``bd`` section (:func:`semsim.report.bd.bd_section`)."""

    model_config = ConfigDict(extra="forbid")

    anchor: str
    method: str
    rate: str
    min_rate_points: int
    curves: dict[str, list[str]]
    snr_db: list[float]
    deltas: dict[str, BDDeltas]
    envelope: dict[str, list[list[str] | None]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _aligned(self) -> BDResults:
        n = len(self.snr_db)
        for curve, kept in self.envelope.items():
            if curve not in self.curves:
                raise ValueError(f"bd.envelope: {curve!r} is not a curve of bd.curves")
            if len(kept) != n:
                raise ValueError(f"bd.envelope[{curve!r}] has {len(kept)} values, "
                                 f"bd.snr_db has {n}")
            if not all(k is None or set(k) <= set(self.curves[curve]) for k in kept):
                raise ValueError(f"bd.envelope[{curve!r}] keeps a system outside the curve")
        for curve, entry in self.deltas.items():
            for key in ("bd_rate_percent", "bd_psnr_db", "notes"):
                if len(getattr(entry, key)) != n:
                    raise ValueError(f"bd.deltas[{curve!r}].{key} has "
                                     f"{len(getattr(entry, key))} values, bd.snr_db has {n}")
            for key in ("bd_rate_percent", "bd_psnr_db"):
                if not all(v is None or math.isfinite(v) for v in getattr(entry, key)):
                    raise ValueError(f"bd.deltas[{curve!r}].{key} holds a non-finite value")
        return self


class ResultsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[3] = SCHEMA_VERSION
    semsim_version: str
    created: str
    profile: str | None = None
    data: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    scenario: dict[str, Any]
    systems: dict[str, SystemResults] = Field(min_length=1)
    bd: BDResults | None = None

    def write(self, path: str | Path) -> None:
        """Write as JSON (strict: no NaN/inf), atomically."""
        text = json.dumps(self.model_dump(mode="json"), indent=2, allow_nan=False)
        write_text(path, text + "\n")

    @classmethod
    def read(cls, path: str | Path) -> ResultsFile:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read results file {str(path)!r}: {err}") from err
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version not in READABLE_VERSIONS:
            raise ValueError(f"{path}: schema_version {version!r} is not supported "
                             f"(this semsim reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))}; regenerate it with "
                             "`semsim eval --checkpoint RUN_DIR`)")
        if version == 2 and "bd" in data:
            raise ValueError(f"{path}: a schema_version 2 file has no 'bd' section")
        return cls.model_validate({**data, "schema_version": SCHEMA_VERSION})


def write_csv(results: ResultsFile, path: str | Path) -> None:
    """One row per (system, SNR): system, type, the training figures (blank for systems
    without training), core columns, then every extra (blank where a system has none).
    Written atomically."""
    extras = sorted({k for s in results.systems.values() for k in s.extras()})
    handle = io.StringIO()
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["system", "type", *TRAINING_FIELDS, *CORE_LISTS, *extras])
    for name, system in results.systems.items():
        own = system.extras()
        training = ["" if getattr(system, k) is None else getattr(system, k)
                    for k in TRAINING_FIELDS]
        for i in range(len(system.snr_db)):
            core = [getattr(system, key)[i] for key in CORE_LISTS]
            writer.writerow([name, system.type, *training, *core,
                             *(own[k][i] if k in own else "" for k in extras)])
    write_text(path, handle.getvalue())
