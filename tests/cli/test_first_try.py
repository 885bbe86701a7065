"""What a new user meets first: a fast ``--help``, a failed start that does not block the
next one, ``--overwrite``, ``--set``/``--seed`` overrides and ``-q``/``-v`` logging."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semsim.cli.main import main
from semsim.report.results import ResultsFile
from tests.scenario.toy_system import register

register()
ROOT = Path(__file__).resolve().parents[2]

TINY = """\
name: tiny_first
description: tiny first-try scenario
seed: 5
link: {nr: 2, nt: 2}
snr: {eval_db: [0, 10]}
data: DATA
systems:
  - {name: a, type: toy, params: {cr: 0.4}}
train: {steps: 2, batch_size: 4}
eval: {batch_size: 4, samples: 1}
"""
BUILTIN = "{train_images: 3, test_images: 8}"


def scenario(tmp_path: Path, data: str = BUILTIN) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("DATA", data))
    return path


def heavy_modules_after(code: str) -> list[str]:
    """Top-level packages among TensorFlow, Keras, Sionna, matplotlib that ``code``
    (run in a fresh interpreter) leaves imported."""
    probe = (f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & "
             "{'tensorflow', 'keras', 'sionna', 'matplotlib'}))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    return eval(run.stdout.strip().splitlines()[-1])  # a printed list of names


def test_help_imports_no_tensorflow_keras_or_sionna():
    code = ("from semsim.cli.main import main\n"
            "for argv in (['--help'], ['run', '--help'], ['ber', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass")
    assert heavy_modules_after(code) == []


def test_import_semsim_is_light():
    assert heavy_modules_after("import semsim") == []


@pytest.mark.parametrize("data, message", [
    ("{source: folder, path: NOWHERE, test_images: 1}", "is not a directory"),
    ("{source: folder, path: JUNK, train_glob: [a.png], test_glob: [b.png]}",
     "cannot identify image file"),
    ("{source: folder, path: ONE, train_glob: [a.png], test_glob: [b.png], test_images: 3}",
     "data.test_images is 3 but the data set has only 1"),
    ("{train_images: 2, test_images: 100000}", "data.test_images is 100000"),
])
def test_data_errors_stop_before_the_run_directory_exists(tmp_path, capsys, data, message):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"not a png")
    (junk / "b.png").write_bytes(b"not a png either")
    one = tmp_path / "one"
    one.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(one / name)
    data = (data.replace("NOWHERE", str(tmp_path / "nowhere")).replace("JUNK", str(junk))
            .replace("ONE", str(one)))
    out = tmp_path / "run"
    assert main(["run", str(scenario(tmp_path, data)), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: data: ")
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_second_run_needs_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    path = scenario(tmp_path)
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    first = ResultsFile.read(out / "results.json")
    (out / "stale.txt").write_text("left by the first run")
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--resume to continue it, --overwrite to replace it" in err
    assert main(["run", str(path), "--out", str(out), "--no-progress", "--overwrite"]) == 0
    assert not (out / "stale.txt").exists()
    again = ResultsFile.read(out / "results.json")
    assert again.systems["a"].psnr_db == first.systems["a"].psnr_db
    with pytest.raises(SystemExit):
        main(["run", str(path), "--out", str(out), "--resume", "--overwrite"])


def test_set_and_seed_override_the_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(scenario(tmp_path)), "--out", str(out), "--no-progress",
                 "--set", "train.steps=3", "--set", "link.nr=4", "--set", "snr.eval_db=[5]",
                 "--set", "systems.a.params.cr=0.25", "--seed", "9"]) == 0
    resolved = (out / "scenario.resolved.yaml").read_text()
    results = ResultsFile.read(out / "results.json")
    assert results.scenario["train"]["steps"] == 3 and results.scenario["link"]["nr"] == 4
    assert results.scenario["seed"] == 9 and results.systems["a"].snr_db == [5.0]
    assert results.systems["a"].cr == pytest.approx([0.25])
    assert json.loads((out / "checkpoints/a/toy_state.json").read_text())["step"] == 3
    assert "seed: 9" in resolved


@pytest.mark.parametrize("setting, message", [
    ("train.steps=-5", "train.steps: Input should be greater than 0 (got -5)"),
    ("link.nrr=3", "link: unknown key 'nrr'"),
    ("systems.zz.params.cr=0.1", "systems.zz.params.cr: no entry named 'zz' under systems"),
    ("systems.a.params.cr=2", "systems[0].params.cr: Input should be less than or equal to 1"),
])
def test_bad_overrides_name_the_key(tmp_path, capsys, setting, message):
    out = tmp_path / "run"
    assert main(["run", str(scenario(tmp_path)), "--out", str(out), "--set", setting]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_malformed_set_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(scenario(tmp_path)), "--set", "train.steps"])
    assert exit_info.value.code == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("flag, level", [("-q", logging.WARNING), ("-v", logging.DEBUG),
                                         (None, logging.INFO)])
def test_quiet_and_verbose_set_the_logging_level(tmp_path, flag, level):
    argv = [flag] if flag else []
    for args in ([*argv, "validate", str(scenario(tmp_path))],
                 ["validate", str(scenario(tmp_path)), *argv]):
        logging.getLogger("semsim").setLevel(logging.NOTSET)
        assert main(args) == 0
        assert logging.getLogger("semsim").level == level


def test_quiet_hides_the_status_lines_of_ber(tmp_path, capsys):
    argv = ["ber", "--fading", "none", "--snr-db", "6", "--bits", "2000",
            "--out", str(tmp_path / "ber")]
    assert main(argv) == 0
    assert "wrote " in capsys.readouterr().err
    assert main([*argv, "-q"]) == 0
    assert "wrote " not in capsys.readouterr().err


def _fit_one_epoch() -> None:
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((8, 2), np.float32), np.zeros((8, 1), np.float32), epochs=1,
              batch_size=4, verbose=1)


def test_no_progress_silences_keras_progress_bars(tmp_path, capfd, monkeypatch):
    """A learned system's prepare() calls fit(verbose=1): inside a --no-progress run
    Keras prints no bar; outside it (before and after) it does."""
    import semsim.scenario.runner as runner

    _fit_one_epoch()
    assert "2/2" in capfd.readouterr().out  # Keras's bar, shown by default
    real_run, inside = runner.run_scenario, {}

    def fit_then_run(resolved, options):
        capfd.readouterr()
        _fit_one_epoch()
        inside["out"] = capfd.readouterr().out
        return real_run(resolved, options)

    monkeypatch.setattr(runner, "run_scenario", fit_then_run)
    assert main(["run", str(scenario(tmp_path)), "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    assert "2/2" not in inside["out"]
    _fit_one_epoch()
    assert "2/2" in capfd.readouterr().out  # restored after the run


def test_a_command_starts_tensorflow_without_its_native_start_up_log():
    """TensorFlow 2.21 prints absl INFO records (and, without a GPU, a cuInit error) on the
    native stderr while it starts, whatever TF_CPP_MIN_LOG_LEVEL says; a fresh ``semsim run``
    shows only its own error line; ``-v`` shows TensorFlow's records and the devices found."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "semsim", "run", "no_such_file.yaml"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert run.returncode == 2
    assert run.stderr == "no_such_file.yaml: cannot read the file: No such file or directory\n"
    verbose = subprocess.run([sys.executable, "-m", "semsim", "-v", "run", "no_such_file.yaml"],
                             capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert verbose.returncode == 2
    lines = verbose.stderr.splitlines()
    assert any(line.startswith("I0000 ") for line in lines), verbose.stderr
    assert any(re.fullmatch(r"TensorFlow \S+: (no GPU found; running on the CPU|\d+ GPU\(s\): .+)",
                            line) for line in lines), verbose.stderr


def test_the_native_log_filter_keeps_warnings_and_errors():
    from semsim.cli.native_log import filter_native_log

    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR\n"
            "I0000 00:00:1796173579.316278    1916 port.cc:153] oneDNN custom operations are on.\n"
            "I0000 00:00:1796173731.327710   10054 cpu_feature_guard.cc:227] This binary is "
            "optimized\n"
            "To enable the following instructions: AVX2 FMA, rebuild TensorFlow.\n"
            "W1130 12:00:01.000000    1916 gpu.cc:9] Not enough memory\n"
            "  second line of the warning\n"
            "E0000 00:00:1796173583.560166    1916 cuda_platform.cc:52] failed call to cuInit: "
            "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
            "E0000 00:00:1796173583.560167    1916 other.cc:1] a real error\n")
    assert filter_native_log(text) == ("W1130 12:00:01.000000    1916 gpu.cc:9] Not enough memory\n"
                    "  second line of the warning\n"
                    "E0000 00:00:1796173583.560167    1916 other.cc:1] a real error\n")


def test_python_output_passes_the_native_log_filter_unchanged(capfd):
    """Python's writes to sys.stderr inside the block are kept apart from the native ones,
    so a Python warning after a dropped INFO record is not dropped as its tail."""
    import os

    from semsim.cli.native_log import filtered_native_stderr

    with filtered_native_stderr():
        os.write(2, b"I0000 00:00:1.0  1 port.cc:1] info\n")
        print("a.py:3: DeprecationWarning: old", file=sys.stderr)
        os.write(2, b"W1130 12:00:01.000000  1 gpu.cc:9] a warning\n")
    err = capfd.readouterr().err
    assert err == ("a.py:3: DeprecationWarning: old\n"
                   "W1130 12:00:01.000000  1 gpu.cc:9] a warning\n")
