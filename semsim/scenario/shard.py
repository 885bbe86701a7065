"""Splitting a scenario run into shards (``semsim run FILE --shard i/N``) and the plan
that :mod:`semsim.cli.merge` checks when it assembles them.

Work units, in evaluation order:

- a *group* is a system together with every system that matches its CR
  (``match_cr_of``, followed transitively): a follower needs its target's mean CR at
  each SNR point, so a group's systems always run in the same shard, point by point;
- a group with a learned (trainable) member is one unit holding all its SNR points,
  so it is trained once, by one shard, which then evaluates it everywhere;
- a group without learned members (or any group when evaluating checkpoints,
  ``semsim eval --checkpoint``, where nothing trains) gives one unit per SNR point.

Unit ``k`` (0-based, in that order) goes to shard ``k % N``. Shards are numbered
``0 .. N-1`` (a Slurm ``--array=0-(N-1)`` task id). Every shard seeds its generators
exactly as a single-process run does (per system before building and training, per
(SNR index, batch index) before each transmit), so the points it writes equal the
single-process ones bit for bit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from semsim.scenario.schema import SystemConfig

#: File a shard writes in its run directory instead of results.json.
SHARD_FILE = "shard.json"


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    def __post_init__(self):
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"--shard: expected i/N with 0 <= i < N, got "
                             f"{self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/8"`` -> ``Shard(2, 8)``; raises ``ValueError`` with a one-line message."""
        parts = text.split("/")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"--shard: expected i/N (e.g. 0/4, shards numbered from 0), "
                             f"got {text!r}")
        return cls(int(parts[0]), int(parts[1]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def groups(systems: Sequence[SystemConfig]) -> list[list[SystemConfig]]:
    """``systems`` (in evaluation order: targets before followers) grouped by the root of
    their ``match_cr_of`` chain; groups in the order of their roots."""
    root_of: dict[str, str] = {}
    out: dict[str, list[SystemConfig]] = {}
    for entry in systems:
        root = root_of.get(entry.match_cr_of, entry.name) if entry.match_cr_of else entry.name
        root_of[entry.name] = root
        out.setdefault(root, []).append(entry)
    return list(out.values())


def work_units(systems: Sequence[SystemConfig], n_snr: int,
               trainable: Callable[[SystemConfig], bool]) -> list[dict[str, tuple[int, ...]]]:
    """The units of :mod:`this module <semsim.scenario.shard>`'s rule: each a mapping of
    system name -> SNR point indices (into ``snr.eval_db``)."""
    units = []
    for group in groups(systems):
        if any(trainable(entry) for entry in group):
            units.append({e.name: tuple(range(n_snr)) for e in group})
        else:
            units.extend({e.name: (i,) for e in group} for i in range(n_snr))
    return units


def assignment(systems: Sequence[SystemConfig], n_snr: int,
               trainable: Callable[[SystemConfig], bool], shard: Shard) -> dict[str, set[int]]:
    """System name -> SNR point indices that ``shard`` evaluates (systems with none
    are absent)."""
    owned: dict[str, set[int]] = {}
    for k, unit in enumerate(work_units(systems, n_snr, trainable)):
        if k % shard.count == shard.index:
            for name, points in unit.items():
                owned.setdefault(name, set()).update(points)
    return owned
