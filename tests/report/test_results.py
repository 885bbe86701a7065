"""results.json schema round trip, CSV, figures and report.md."""

from __future__ import annotations

import csv
import json

import numpy as np
import pydantic
import pytest
from PIL import Image

from semsim.report.markdown import write_report
from semsim.report.plots import plot_results, plot_samples
from semsim.report.results import ResultsFile, SystemResults, write_csv


def make_results() -> ResultsFile:
    return ResultsFile(
        semsim_version="0.1.0", created="2025-01-01T00:00:00+00:00", profile="quick",
        data="builtin", scenario={"name": "demo", "description": "demo run"},
        systems={
            "ref": SystemResults(type="reference", snr_db=[0.0, 10.0], psnr_db=[20.5, 28.0],
                                 psnr_std_db=[1.0, 1.5], cr=[0.05, 0.08], n_images=[8, 8],
                                 train_seconds=3.0, eval_seconds=1.0,
                                 kept_maps=[3.5, 6.0]),
            "sep": SystemResults(type="separation", snr_db=[0.0, 10.0], psnr_db=[12.0, 26.0],
                                 psnr_std_db=[0.0, 2.0], cr=[0.05, 0.08], n_images=[8, 8],
                                 target_cr=[0.05, 0.08], failed=[1.0, 0.0]),
        })


def test_round_trip(tmp_path):
    results = make_results()
    results.write(tmp_path / "results.json")
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["schema_version"] == 1
    assert data["systems"]["ref"]["kept_maps"] == [3.5, 6.0]  # extras sit beside core lists
    again = ResultsFile.read(tmp_path / "results.json")
    assert again == results
    assert again.systems["sep"].extras() == {"target_cr": [0.05, 0.08], "failed": [1.0, 0.0]}


def test_schema_rejects_bad_files(tmp_path):
    with pytest.raises(pydantic.ValidationError, match="psnr_db has 1 values, snr_db has 2"):
        SystemResults(type="x", snr_db=[0, 1], psnr_db=[1], psnr_std_db=[0, 0], cr=[1, 1],
                      n_images=[1, 1])
    with pytest.raises(pydantic.ValidationError, match="extra 'kept' must be a list of 2"):
        SystemResults(type="x", snr_db=[0, 1], psnr_db=[1, 2], psnr_std_db=[0, 0], cr=[1, 1],
                      n_images=[1, 1], kept=[1])
    with pytest.raises(pydantic.ValidationError, match="psnr_db holds a non-finite value"):
        SystemResults(type="x", snr_db=[0], psnr_db=[float("inf")], psnr_std_db=[0], cr=[1],
                      n_images=[1])
    data = make_results().model_dump(mode="json")
    data["schema_version"] = 2
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="schema_version 2 is not supported"):
        ResultsFile.read(tmp_path / "r.json")


def test_csv_has_one_row_per_system_and_snr(tmp_path):
    write_csv(make_results(), tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["system"], r["snr_db"]) for r in rows] == [
        ("ref", "0.0"), ("ref", "10.0"), ("sep", "0.0"), ("sep", "10.0")]
    assert rows[1]["psnr_db"] == "28.0" and rows[1]["kept_maps"] == "6.0"
    assert rows[1]["failed"] == "" and rows[2]["failed"] == "1.0"


def test_figures_and_report(tmp_path):
    results = make_results()
    figures = plot_results(results, tmp_path)
    assert [f.name for f in figures] == ["psnr_vs_snr.png", "psnr_vs_cr.png", "cr_vs_snr.png",
                                         "extras_vs_snr.png"]
    originals = np.zeros((2, 8, 8, 3), np.uint8)
    grid = plot_samples("ref", originals, {0.0: originals, 10.0: originals + 200},
                        tmp_path / "samples_ref.png")
    for figure in [*figures, grid]:
        with Image.open(figure) as image:
            assert image.size[0] > 100 and image.size[1] > 100
    report = write_report(results, [*figures, grid], tmp_path / "report.md").read_text()
    assert "| ref | reference | 20.50 dB / CR 0.0500 | 28.00 dB / CR 0.0800 |" in report
    assert "![samples_ref](samples_ref.png)" in report
    assert report.startswith("# demo\n\ndemo run\n")
