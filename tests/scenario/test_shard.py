"""Sharded runs (``--shard i/N``) and ``semsim merge``: the split rule, and merged
results equal to a single-process run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsim.cli.main import main
from semsim.report.results import ResultsFile
from semsim.scenario.loader import load_scenario
from semsim.scenario.merge import merge_shards
from semsim.scenario.runner import RunError, RunOptions, run_scenario
from semsim.scenario.schema import SystemConfig
from semsim.scenario.shard import Shard, assignment, groups
from semsim.systems.registry import get_system_type, register_system
from tests.scenario.test_runner import comparable
from tests.scenario.toy_system import ToyParams, ToySystem


class FixedToy(ToySystem):
    """The toy without learning (``trainable = False``): its points may be split."""

    trainable = False


def _register_fixed() -> None:
    try:
        get_system_type("toy_fixed")
    except KeyError:
        register_system("toy_fixed", params=ToyParams, description="test-only")(
            lambda params, link, size, seed: FixedToy(params, link, tuple(size)))


_register_fixed()

SCENARIO = """\
name: sharded
description: sharding test scenario
seed: 5
link: {nr: 2, nt: 2, csi: {mode: ls}}
snr: {train_db: [0, 10], eval_db: [0, 10, 20]}
data: {train_images: 2, test_images: 12}
systems:
  - {name: a, type: toy, params: {cr: 0.5}}
  - {name: c, type: toy_fixed, params: {cr: 0.25}}
  - {name: b, type: toy, match_cr_of: a, params: {shrink: 0.3}}
  - {name: d, type: toy_fixed, match_cr_of: c, params: {shrink: 0.5}}
train: {steps: 2, batch_size: 4}
eval: {batch_size: 8, samples: 2, bd_anchor: a}
"""


def _entry(name, match=None):
    return SystemConfig(name=name, type="toy", match_cr_of=match)


def test_shard_parse_rejects_bad_text():
    assert Shard.parse("2/8") == Shard(2, 8)
    for text in ("3/3", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(ValueError, match="--shard"):
            Shard.parse(text)


def test_followers_stay_with_their_target_and_learned_groups_stay_whole():
    systems = [_entry("x"), _entry("y", "x"), _entry("z", "y"), _entry("p"), _entry("q", "p")]
    assert [[e.name for e in g] for g in groups(systems)] == [["x", "y", "z"], ["p", "q"]]
    learned = {"x"}  # group x,y,z is learned: one unit; p,q split per SNR point (2 points)
    plans = [assignment(systems, 2, lambda e: e.name in learned, Shard(i, 2)) for i in range(2)]
    # units: {x,y,z: 0,1}, {p,q: 0}, {p,q: 1} -> shard 0 gets units 0 and 2
    assert plans[0] == {"x": {0, 1}, "y": {0, 1}, "z": {0, 1}, "p": {1}, "q": {1}}
    assert plans[1] == {"p": {0}, "q": {0}}
    # every (system, point) exactly once over the shards, for any shard count
    for count in (1, 2, 3, 7):
        seen = []
        for i in range(count):
            plan = assignment(systems, 2, lambda e: e.name in learned, Shard(i, count))
            seen += [(n, p) for n, points in plan.items() for p in points]
        assert sorted(seen) == sorted((e.name, p) for e in systems for p in (0, 1))


def test_merged_shards_equal_a_single_process_run(tmp_path):
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(SCENARIO)
    resolved = load_scenario(scenario_file)
    single = run_scenario(resolved, RunOptions(out_dir=tmp_path / "single", progress=False))
    dirs = [tmp_path / f"shard{i}" for i in range(2)]
    for i, d in enumerate(dirs):
        assert run_scenario(resolved, RunOptions(out_dir=d, progress=False,
                                                 shard=Shard(i, 2))) is None
        assert not (d / "results.json").exists()
    # learned group {a, b} trained by shard 0 only; c/d points split (c@1, d@1 in shard 0)
    assert (dirs[0] / "checkpoints" / "a" / "toy_state.json").is_file()
    assert not (dirs[1] / "checkpoints" / "a").exists()
    assert sorted(p.name for p in (dirs[1] / "eval" / "c").glob("*.npz")) == \
        ["snr_00.npz", "snr_02.npz"]
    with pytest.raises(RunError, match=r"system 'c' lacks SNR point\(s\) 0, 2"):
        merge_shards(dirs[:1], tmp_path / "partial")
    merged = merge_shards(dirs, tmp_path / "merged")
    assert list(merged.systems) == list(single.systems) == ["a", "c", "b", "d"]
    assert comparable(merged) == comparable(single)
    assert merged.metrics == single.metrics and merged.data == single.data
    assert merged.bd == single.bd and single.bd.anchor == "a"  # one point each: null
    assert single.bd.deltas["c"].bd_rate_percent == [None] * 3
    assert "1 distinct rate point(s)" in single.bd.deltas["c"].notes[0]
    assert ResultsFile.read(tmp_path / "merged" / "results.json") == merged
    for name in ("report.md", "results.csv", "samples_d.png"):
        assert (tmp_path / "merged" / name).is_file()
    for name in ("a", "d"):  # per-image arrays bit-identical
        for i in range(3):
            one = np.load(tmp_path / "single" / "eval" / name / f"snr_{i:02d}.npz")
            two = np.load(tmp_path / "merged" / "eval" / name / f"snr_{i:02d}.npz")
            for key in one.files:
                np.testing.assert_array_equal(one[key], two[key])
    with pytest.raises(RunError, match="both"):
        merge_shards([dirs[0], dirs[0]], tmp_path / "twice")


def test_cli_shard_and_merge(tmp_path: Path):
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(SCENARIO.replace("test_images: 12", "test_images: 4"))
    for i in range(3):
        assert main(["-q", "run", str(scenario_file), "--no-progress", "--shard", f"{i}/3",
                     "--out", str(tmp_path / f"s{i}")]) == 0
    assert main(["-q", "merge", *(str(tmp_path / f"s{i}") for i in range(3)),
                 "--out", str(tmp_path / "m")]) == 0
    assert set(ResultsFile.read(tmp_path / "m" / "results.json").systems) == {"a", "b", "c", "d"}
    assert main(["-q", "merge", str(tmp_path / "s0"), "--out", str(tmp_path / "m2")]) == 2
