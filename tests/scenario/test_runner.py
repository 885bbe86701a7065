"""The scenario runner on the test-only ``toy`` system."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from semsim.report.results import ResultsFile
from semsim.scenario.loader import load_scenario
from semsim.scenario.runner import RunError, RunOptions, run_scenario
from tests.scenario.toy_system import ToySystem

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
