"""``semsim.trained_system``: a learned system with its shipped weights installed as the
runner installs them, a one-line error naming the way to train when none is shipped, and
``retrain=True`` training exactly as ``semsim run`` does."""

from __future__ import annotations

import json

import numpy as np
import pytest

import semsim
from semsim.scenario import SCENARIOS_DIR
from semsim.weights import WEIGHTS_DIR
from semsim.weights.manifest import read_manifest, validation_psnr
from tests.comparable import weights_arrays

SISO = SCENARIOS_DIR / "siso_awgn.yaml"
#: Reproduction tolerance of the recorded validation PSNR (dB), as for every checkpoint.
PSNR_TOLERANCE_DB = 0.05

TINY = """\
name: tiny_api
description: tiny SISO AWGN scenario of the trained_system tests
seed: 4
link: {nr: 1, nt: 1, fading: none, csi: perfect}
snr: {train_db: [0, 20], eval_db: [10]}
data: {source: builtin, image_size: 32, test_images: 4}
systems:
  - {name: deepjscc, type: deepjscc, params: {cr: 0.1667, filters: [4, 4, 4, 4]}}
  - {name: separation, type: separation, params: {codec: jpeg, code: ldpc5g, cr: 0.1667}}
train: {steps: 6, batch_size: 8, jit_compile: false}
eval: {batch_size: 4, samples: 1}
profile: standard
profiles:
  standard: {train: {steps: 6}}
"""


def test_shipped_siso_deepjscc_reproduces_its_manifest(capsys):
    manifest = read_manifest(WEIGHTS_DIR / "siso_awgn" / "standard" / "deepjscc.manifest.json")
    system = semsim.trained_system(SISO, "deepjscc")
    assert f"using shipped weights {manifest['id']}" in capsys.readouterr().out
    resolved = semsim.load_scenario(SISO, "standard")
    psnr = validation_psnr(resolved, system)
    assert abs(psnr - manifest["validation"]["psnr_db"]) <= PSNR_TOLERANCE_DB


def test_overrides_outside_the_hash_keep_the_shipped_weights(tmp_path, capsys):
    resolved = semsim.load_scenario(SISO, "standard", {"data.test_images": 8,
                                                       "snr.eval_db": [0.0, 10.0]})
    semsim.trained_system(resolved, "deepjscc", profile=None, workdir=tmp_path)
    assert "using shipped weights siso_awgn/standard/deepjscc@" in capsys.readouterr().out
    record = json.loads((tmp_path / "checkpoints" / "deepjscc" / "weights.json").read_text())
    assert record["weights"] == "shipped"


@pytest.mark.parametrize("kwargs, message", [
    ({"profile": "quick"}, r"^no shipped weights for siso_awgn/quick/deepjscc .*retrain=True"),
    ({"overrides": {"train.learning_rate": 0.001}},
     r"^the shipped weights of siso_awgn/standard/deepjscc do not match this config \(config "
     r"hash differs \(changed: train\)\);.*retrain=True"),
])
def test_no_matching_checkpoint_is_a_one_line_error(kwargs, message):
    with pytest.raises(semsim.NoShippedWeights, match=message) as err:
        semsim.trained_system(SISO, "deepjscc", **kwargs)
    assert "\n" not in str(err.value)


def test_unknown_or_classic_system(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    with pytest.raises(KeyError, match="no system named 'nosuch' in scenario 'tiny_api'"):
        semsim.trained_system(path, "nosuch")
    with pytest.raises(ValueError, match="'separation' .* has no learned weights"):
        semsim.trained_system(path, "separation")
    with pytest.raises(semsim.NoShippedWeights, match="no shipped weights for tiny_api/standard"):
        semsim.trained_system(path, "deepjscc")


@pytest.mark.slow  # trains a tiny model twice for a few steps
def test_retrain_trains_as_semsim_run(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    system = semsim.trained_system(path, "deepjscc", retrain=True, workdir=tmp_path / "api")
    assert "deepjscc: training from scratch" in capsys.readouterr().out
    ours = tmp_path / "api" / "checkpoints" / "deepjscc"
    assert json.loads((ours / "final.json").read_text()) == {"steps_done": 6, "steps_planned": 6}
    # the runner, in its own directory, trains the same weights from the same stream
    results = semsim.run(path, out=tmp_path / "run", systems=["deepjscc"], progress=False)
    assert results.systems["deepjscc"].weights == "trained"
    mine = weights_arrays(ours / "final.weights.h5")
    runner = weights_arrays(tmp_path / "run" / "checkpoints" / "deepjscc" / "final.weights.h5")
    assert mine.keys() == runner.keys() and len(mine) > 0
    assert all(np.array_equal(mine[k], runner[k]) for k in mine)
    # the returned system holds these weights: a fresh build that loads the file agrees
    fresh = semsim.build_system(path, "deepjscc")
    fresh.model.load_weights(ours / "final.weights.h5")
    held, loaded = system.model.get_weights(), fresh.model.get_weights()
    assert len(held) == len(loaded) > 0
    assert all(np.array_equal(a, b) for a, b in zip(held, loaded, strict=True))


def test_a_shipped_checkpoints_measured_convergence_reaches_the_results(tmp_path):
    """The manifest's ``convergence`` (benchmarks/convergence.py) travels with the
    shipped weights: into the run's weights record, and from there into the training
    column and the plots' legend as NOT converged."""
    from semsim.report.markdown import training_status
    from semsim.report.plots import _label
    from semsim.report.results import SystemResults
    from semsim.weights.shipped import weights_record

    path = WEIGHTS_DIR / "mu_mimo_4users" / "standard" / "deepjscc.manifest.json"
    convergence = read_manifest(path)["convergence"]
    scenario = SCENARIOS_DIR / "mu_mimo_4users.yaml"
    semsim.trained_system(scenario, "deepjscc", workdir=tmp_path)
    record = weights_record(tmp_path / "checkpoints" / "deepjscc")
    assert record["weights_convergence"] == convergence
    assert record["training_trend"] is None  # shipped: no history trained here
    one = dict(snr_db=[10.0], psnr_db=[20.0], psnr_ci95_db=[0.1], psnr_std_db=[1.0],
               psnr_of_mean_mse_db=[20.0], exact_images=[0], ssim=[0.5], ssim_ci95=[0.01],
               ms_ssim=[0.5], ms_ssim_ci95=[0.01], cr=[0.1667], n_images=[4])
    system = SystemResults(type="deepjscc", steps_done=7000, steps_planned=7000, **one,
                           **record)
    assert system.not_converged == (not convergence["converged"])
    low, high = convergence["steps"]
    word = "converged" if convergence["converged"] else "NOT converged"
    assert training_status(system) == (f"7000 steps, {word}: {convergence['gain_db']:+.2f} dB "
                                       f"from {low} to {high} steps ({convergence['method']})")
    assert _label("deepjscc", system) == ("deepjscc" if convergence["converged"]
                                          else "deepjscc (not converged)")


def test_weights_without_a_measurement_say_so():
    """Trained weights with neither a measured convergence (a shipped manifest without
    ``convergence``) nor a validation history (weights trained in the run without
    validation rows) are not shown as if they were converged: their training column says
    the convergence was not measured. A system that trains nothing shows "-"."""
    from semsim.report.markdown import training_status
    from semsim.report.results import SystemResults

    one = dict(snr_db=[10.0], psnr_db=[20.0], psnr_ci95_db=[0.1], psnr_std_db=[1.0],
               psnr_of_mean_mse_db=[20.0], exact_images=[0], ssim=[0.5], ssim_ci95=[0.01],
               ms_ssim=[0.5], ms_ssim_ci95=[0.01], cr=[0.1667], n_images=[4])
    shipped = SystemResults(type="swinjscc", steps_done=8000, steps_planned=8000,
                            weights="shipped", **one)
    assert training_status(shipped) == "8000 steps, convergence not measured"
    trained = SystemResults(type="swinjscc", steps_done=8000, steps_planned=8000,
                            weights="trained", **one)
    assert training_status(trained) == "8000 steps, convergence not measured"
    assert training_status(SystemResults(type="separation", **one)) == "-"
