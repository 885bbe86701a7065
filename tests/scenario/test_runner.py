"""The scenario runner on the test-only ``toy`` system."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from semsim.report.results import ResultsFile
from semsim.scenario.loader import load_scenario
from semsim.scenario.runner import RunError, RunFailure, RunOptions, run_scenario
from semsim.systems.base import TrainReport
from semsim.systems.keras_system import NonFiniteTrainingError
from semsim.systems.registry import get_system_type, register_system
from tests.scenario.toy_system import ToyParams, ToySystem

OUTPUTS = ("results.json", "results.csv", "report.md", "scenario.resolved.yaml",
           "psnr_vs_snr.png", "psnr_vs_cr.png", "cr_vs_snr.png", "extras_vs_snr.png",
           "samples_a.png", "samples_b.png", "checkpoints/a/toy_state.json",
           "checkpoints/b/toy_state.json")


def comparable(results: ResultsFile) -> dict:
    """Results without wall-clock fields."""
    out = {}
    for name, system in results.systems.items():
        data = system.model_dump()
        data.pop("train_seconds")
        data.pop("eval_seconds")
        out[name] = data
    return out


def test_run_shares_channels_and_matches_cr(tiny_scenario, tmp_path):
    ToySystem.calls.clear()
    results = run_scenario(load_scenario(tiny_scenario),
                           RunOptions(out_dir=tmp_path / "run", progress=False))
    for name in OUTPUTS:
        assert (tmp_path / "run" / name).is_file(), name
    # 3 SNRs x 3 batches (20 images, batch 8) per system; a first, then b.
    calls = ToySystem.calls
    assert len(calls) == 18
    a_calls, b_calls = calls[:9], calls[9:]
    for (snr_a, h_a, target_a), (snr_b, h_b, target_b) in zip(a_calls, b_calls, strict=True):
        assert snr_a == snr_b
        np.testing.assert_array_equal(h_a, h_b)  # same channel realizations
        assert target_a is None and target_b == pytest.approx(0.5)  # a's mean CR
    assert h_a.shape == (4, 2, 2) and h_a.dtype == np.complex64  # last batch: 20 - 16
    assert not np.allclose(a_calls[0][1], a_calls[1][1][: len(a_calls[0][1])])
    a, b = results.systems["a"], results.systems["b"]
    assert a.snr_db == b.snr_db == [0.0, 10.0, 20.0]
    assert b.cr == [0.5, 0.5, 0.5] and b.extras()["target_cr"] == [0.5, 0.5, 0.5]
    assert a.n_images == [20, 20, 20]
    assert a.psnr_db[0] < a.psnr_db[1] < a.psnr_db[2]
    # PSNR of the mean MSE never exceeds the mean PSNR (Jensen), and tracks it
    for mean_psnr, of_mean_mse in zip(a.psnr_db, a.psnr_of_mean_mse_db, strict=True):
        assert of_mean_mse <= mean_psnr + 1e-9
    # the stored per-image PSNR is skimage's on the 8-bit images (first images: samples)
    originals = np.load(tmp_path / "run" / "eval" / "originals.npy")
    point = np.load(tmp_path / "run" / "eval" / "a" / "snr_01.npz")
    expected = [peak_signal_noise_ratio(o, r, data_range=255)
                for o, r in zip(originals, point["samples"], strict=True)]
    np.testing.assert_allclose(point["psnr"][:3], expected, rtol=1e-12)
    assert a.psnr_db[1] == pytest.approx(np.mean(point["psnr"]))
    # 95 % t-interval of 20 images: t(0.975, 19) = 2.0930 (tables)
    assert a.psnr_ci95_db[1] == pytest.approx(2.0930 * np.std(point["psnr"], ddof=1) / np.sqrt(20),
                                              rel=1e-4)
    assert 0 < a.ssim[0] < a.ssim[2] <= 1 and 0 < a.ms_ssim[0] < a.ms_ssim[2] <= 1
    assert a.exact_images == [0, 0, 0]
    assert results.metrics["psnr_cap_db"] == pytest.approx(10 * np.log10(255**2 * 3 * 32 * 32))
    assert a.extras()["kept_symbols"] == [0.5 * 3 * 32 * 32] * 3
    # System.summarize: one test-set figure per SNR point, reported like an extra
    assert a.extras()["failure_rate"] == pytest.approx(a.extras()["failed"])
    assert a.extras()["failure_rate"][0] > a.extras()["failure_rate"][2]
    # written file round-trips and equals the returned results
    assert ResultsFile.read(tmp_path / "run" / "results.json") == results


def test_resume_after_interrupted_evaluation_gives_same_results(tiny_scenario, tmp_path):
    resolved = load_scenario(tiny_scenario)
    clean = run_scenario(resolved, RunOptions(out_dir=tmp_path / "clean", progress=False))

    seen = []

    def interrupt(kind, info):
        if kind == "eval_batch":
            seen.append(info)
            if info["system"] == "b" and info["snr_index"] == 1 and info["batch"] == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_scenario(resolved, RunOptions(out_dir=tmp_path / "run", progress=False,
                                          on_event=interrupt))
    assert not (tmp_path / "run" / "results.json").exists()
    done = sorted(p.name for p in (tmp_path / "run" / "eval" / "b").glob("snr_*.npz"))
    assert done == ["snr_00.npz"]
    with pytest.raises(RunError, match="already holds a run; pass --resume"):
        run_scenario(resolved, RunOptions(out_dir=tmp_path / "run", progress=False))
    resumed_batches = []
    resumed = run_scenario(resolved, RunOptions(
        out_dir=tmp_path / "run", resume=True, progress=False,
        on_event=lambda kind, info: resumed_batches.append(info) if kind == "eval_batch" else 0))
    # only b's SNR points 1 and 2 are evaluated again (3 batches each)
    assert [(i["system"], i["snr_index"]) for i in resumed_batches] == \
        [("b", 1)] * 3 + [("b", 2)] * 3
    assert comparable(resumed) == comparable(clean)


def test_resume_refuses_a_changed_scenario(tiny_scenario, tmp_path):
    run_scenario(load_scenario(tiny_scenario), RunOptions(out_dir=tmp_path / "run",
                                                          progress=False))
    tiny_scenario.write_text(tiny_scenario.read_text().replace("seed: 3", "seed: 4"))
    with pytest.raises(RunError, match=r"different scenario \(changed: seed\)"):
        run_scenario(load_scenario(tiny_scenario),
                     RunOptions(out_dir=tmp_path / "run", resume=True, progress=False))


def test_system_selection(tiny_scenario, tmp_path):
    resolved = load_scenario(tiny_scenario)
    with pytest.raises(RunError, match="'b' matches the CR of 'a'; select it too"):
        run_scenario(resolved, RunOptions(out_dir=tmp_path / "x", systems=("b",)))
    with pytest.raises(RunError, match="--systems: zz not in this scenario"):
        run_scenario(resolved, RunOptions(out_dir=tmp_path / "x", systems=("zz",)))
    results = run_scenario(resolved, RunOptions(out_dir=tmp_path / "y", systems=("a",),
                                                progress=False))
    assert list(results.systems) == ["a"]
    state = json.loads((tmp_path / "y" / "run_state.json").read_text())
    assert state["scenario"]["name"] == "tiny"


class BudgetToy(ToySystem):
    """The toy, stopped after two new training steps when ``train.max_seconds`` is set
    (as a wall-clock budget would), reporting its steps."""

    type_name = "budget_toy"

    def prepare(self, train_data, train, workdir, resume):
        state = Path(workdir) / "toy_state.json"
        done = json.loads(state.read_text())["step"] if resume and state.exists() else 0
        steps = min(train.steps, done + 2) if train.max_seconds else train.steps
        super().prepare(train_data, dataclasses.replace(train, steps=steps), workdir, resume)
        return TrainReport(steps, train.steps)


def _register_budget_toy():
    try:
        get_system_type("budget_toy")
    except KeyError:
        register_system("budget_toy", params=ToyParams, description="test-only")(
            lambda params, link, size, seed: BudgetToy(params, link, tuple(size)))


def test_under_trained_system_is_marked_and_resume_trains_it_on(tiny_scenario, tmp_path):
    _register_budget_toy()
    text = tiny_scenario.read_text().replace("type: toy", "type: budget_toy")
    tiny_scenario.write_text(text)
    clean = run_scenario(load_scenario(tiny_scenario),
                         RunOptions(out_dir=tmp_path / "clean", progress=False))
    assert clean.systems["a"].steps_done == clean.systems["a"].steps_planned == 4
    tiny_scenario.write_text(text.replace("train: {steps: 4,", "train: {max_seconds: 60, steps: 4,"))
    cut = run_scenario(load_scenario(tiny_scenario),
                       RunOptions(out_dir=tmp_path / "run", progress=False))
    assert (cut.systems["a"].steps_done, cut.systems["a"].steps_planned) == (2, 4)
    assert cut.systems["a"].under_trained and cut.systems["a"].psnr_db != clean.systems["a"].psnr_db
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| a | budget_toy | 2/4 steps, UNDER-TRAINED |" in report
    events = []
    resumed = run_scenario(load_scenario(tiny_scenario), RunOptions(
        out_dir=tmp_path / "run", resume=True, progress=False,
        on_event=lambda kind, info: events.append(info["system"]) if kind == "prepared" else 0))
    assert events == ["a", "b"]  # a trained on, b evaluated again at a's new CR
    assert not resumed.systems["a"].under_trained
    assert comparable(resumed) == comparable(clean)


def test_a_system_with_its_own_train_keys_trains_its_own_budget(tiny_scenario, tmp_path):
    _register_budget_toy()
    text = tiny_scenario.read_text().replace("type: toy", "type: budget_toy").replace(
        "{name: a, type: budget_toy, params: {cr: 0.5}}",
        "{name: a, type: budget_toy, params: {cr: 0.5}, train: {steps: 9}}")
    tiny_scenario.write_text(text)
    results = run_scenario(load_scenario(tiny_scenario),
                           RunOptions(out_dir=tmp_path / "run", progress=False))
    assert (results.systems["a"].steps_done, results.systems["a"].steps_planned) == (9, 9)
    assert (results.systems["b"].steps_done, results.systems["b"].steps_planned) == (4, 4)
    # a's own budget key resumes like the scenario's: a new max_seconds is allowed
    tiny_scenario.write_text(text.replace("train: {steps: 9}", "train: {steps: 9, "
                                                               "max_seconds: 60}"))
    run_scenario(load_scenario(tiny_scenario),
                 RunOptions(out_dir=tmp_path / "run", resume=True, progress=False))
    tiny_scenario.write_text(text.replace("train: {steps: 9}", "train: {steps: 8}"))
    with pytest.raises(RunError, match="resume"):
        run_scenario(load_scenario(tiny_scenario),
                     RunOptions(out_dir=tmp_path / "run", resume=True, progress=False))


def test_failing_writes_leave_the_previous_files(tiny_scenario, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run_scenario(load_scenario(tiny_scenario), RunOptions(out_dir=run, progress=False))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    def no_space(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr("semsim.atomic.os.replace", no_space)
    with pytest.raises(RunFailure) as error:
        run_scenario(load_scenario(tiny_scenario),
                     RunOptions(out_dir=run, resume=True, progress=False))
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(f"cannot write or read {run / 'scenario.resolved.yaml'}: "
                                       "No space left on device")
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before  # nothing changed, no temporary file left


def test_diverged_training_names_the_system_and_resumes_with_a_smaller_rate(
        tiny_scenario, tmp_path, monkeypatch):
    def diverge(self, *args):
        raise NonFiniteTrainingError("training diverged at step 3: the loss is nan")

    monkeypatch.setattr(ToySystem, "prepare", diverge)
    with pytest.raises(RunFailure, match=r"^system 'a': training diverged at step 3: the loss"):
        run_scenario(load_scenario(tiny_scenario),
                     RunOptions(out_dir=tmp_path / "run", progress=False))
    monkeypatch.undo()
    tiny_scenario.write_text(tiny_scenario.read_text().replace(
        "train: {steps: 4,", "train: {learning_rate: 0.0001, steps: 4,"))
    resumed = run_scenario(load_scenario(tiny_scenario),
                           RunOptions(out_dir=tmp_path / "run", resume=True, progress=False))
    assert list(resumed.systems) == ["a", "b"]
    tiny_scenario.write_text(tiny_scenario.read_text().replace("steps: 4", "steps: 5"))
    with pytest.raises(RunError, match=r"different scenario \(changed: train\)"):
        run_scenario(load_scenario(tiny_scenario),
                     RunOptions(out_dir=tmp_path / "run", resume=True, progress=False))


def test_validation_split_holds_out_training_images_only():
    from semsim.data.pipeline import ImageData
    from semsim.scenario.evaluation import validation_split

    # 100 patches, each a constant grey level i: identifiable after the split
    train = np.broadcast_to(np.arange(100, dtype=np.uint8)[:, None, None, None],
                            (100, 4, 4, 3)).copy()
    test = np.full((8, 4, 4, 3), 200, np.uint8)
    data = ImageData(train, test, 4, "patches")
    rest, validation = validation_split(data, multiple_of=3)
    held = np.rint(validation[:, 0, 0, 0] * 255).astype(int)
    assert len(held) == 9  # 10 % of 100, truncated to a multiple of 3
    kept = set(rest.train[:, 0, 0, 0].tolist())
    assert len(kept) == 90 and not kept & set(held.tolist()) and 200 not in held
    np.testing.assert_array_equal(rest.test, test)
    again = np.rint(validation_split(data, multiple_of=3)[1] * 255)  # fixed seed
    np.testing.assert_array_equal(again[:, 0, 0, 0], held)
    # larger images to crop from: whole images leave training, cut into tiles
    photos = [np.full((8, 12, 3), 10 * i, np.uint8) for i in range(3)]
    rest, validation = validation_split(ImageData(photos, test, 4, "photos"))
    assert len(rest.train) == 2 and validation.shape == (6, 4, 4, 3)  # 2 x 3 tiles
    grey = int(np.rint(validation[0, 0, 0, 0] * 255))
    assert np.all(np.rint(validation * 255) == grey)
    assert grey not in [int(p[0, 0, 0]) for p in rest.train]
    one, none = validation_split(ImageData(photos[:1], test, 4, "one photo"))
    assert len(one.train) == 1 and none.shape == (0, 4, 4, 3)
