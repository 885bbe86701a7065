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
from semsim.report.results import BDDeltas, BDResults, ResultsFile, SystemResults, write_csv


def quality(psnr, **more):
    """Core per-SNR lists of a system with ``psnr`` as headline."""
    n = len(psnr)
    values = dict(psnr_db=psnr, psnr_ci95_db=[0.5] * n, psnr_std_db=[1.0] * n,
                  psnr_of_mean_mse_db=[p - 1 for p in psnr], exact_images=[0] * n,
                  ssim=[0.8] * n, ssim_ci95=[0.01] * n, ms_ssim=[0.9] * n,
                  ms_ssim_ci95=[0.02] * n, cr=[0.05, 0.08][:n], n_images=[8] * n)
    values.update(more)
    return values


def make_results() -> ResultsFile:
    return ResultsFile(
        semsim_version="0.1.0", created="2025-01-01T00:00:00+00:00", profile="quick",
        data="builtin", scenario={"name": "demo", "description": "demo run"},
        metrics={"psnr_cap_db": 83.005},
        systems={
            "ref": SystemResults(type="reference", snr_db=[0.0, 10.0],
                                 **quality([20.5, 28.0], psnr_ci95_db=[0.25, 0.75]),
                                 train_seconds=3.0, eval_seconds=1.0, steps_done=600,
                                 steps_planned=2000, kept_maps=[3.5, 6.0]),
            "sep": SystemResults(type="separation", snr_db=[0.0, 10.0],
                                 **quality([12.0, 26.0], exact_images=[0, 3]),
                                 target_cr=[0.05, 0.08], failed=[1.0, 0.0]),
        })


def test_round_trip(tmp_path):
    results = make_results()
    results.write(tmp_path / "results.json")
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["schema_version"] == 3 and data["bd"] is None
    assert data["systems"]["ref"]["steps_done"] == 600
    assert data["systems"]["ref"]["kept_maps"] == [3.5, 6.0]  # extras sit beside core lists
    again = ResultsFile.read(tmp_path / "results.json")
    assert again == results
    assert again.systems["sep"].extras() == {"target_cr": [0.05, 0.08], "failed": [1.0, 0.0]}


def test_schema_rejects_bad_files(tmp_path):
    with pytest.raises(pydantic.ValidationError, match="psnr_db has 1 values, snr_db has 2"):
        SystemResults(type="x", snr_db=[0, 1], **quality([1]))
    with pytest.raises(pydantic.ValidationError, match="extra 'kept' must be a list of 2"):
        SystemResults(type="x", snr_db=[0, 1], **quality([1, 2]), kept=[1])
    with pytest.raises(pydantic.ValidationError, match="psnr_db holds a non-finite value"):
        SystemResults(type="x", snr_db=[0], **quality([float("inf")]))
    with pytest.raises(pydantic.ValidationError, match="give both or neither"):
        SystemResults(type="x", snr_db=[0], **quality([1]), steps_done=3)
    data = make_results().model_dump(mode="json")
    data["schema_version"] = 1  # the format before the 8-bit headline and intervals
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="schema_version 1 is not supported"):
        ResultsFile.read(tmp_path / "r.json")


def test_version_2_files_are_read_without_bd(tmp_path):
    """A file written before the bd section (version 2, no "bd" key) loads with bd null
    and is written back as version 3."""
    data = make_results().model_dump(mode="json")
    data.pop("bd")
    data["schema_version"] = 2
    (tmp_path / "r.json").write_text(json.dumps(data))
    old = ResultsFile.read(tmp_path / "r.json")
    assert old.bd is None and old.schema_version == 3 and old.systems == make_results().systems
    data["bd"] = None
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="version 2 file has no 'bd'"):
        ResultsFile.read(tmp_path / "r.json")


def _with_bd() -> ResultsFile:
    results = make_results()
    return results.model_copy(update={"bd": BDResults(
        anchor="ref", method="pchip", rate="CBR", min_rate_points=4,
        curves={"ref": ["ref"], "sep": ["sep"]}, snr_db=[0.0, 10.0],
        deltas={"sep": BDDeltas(bd_rate_percent=[None, -12.345], bd_psnr_db=[None, 0.5],
                                notes=["too few", None])})})


def test_bd_section_round_trip_and_report(tmp_path):
    results = _with_bd()
    results.write(tmp_path / "results.json")
    assert json.loads((tmp_path / "results.json").read_text())["bd"]["deltas"]["sep"][
        "bd_rate_percent"] == [None, -12.345]
    assert ResultsFile.read(tmp_path / "results.json") == results
    report = write_report(results, [], tmp_path / "report.md").read_text()
    assert "## Bjontegaard deltas" in report and "Against `ref`" in report
    assert "| curve | 0 dB | 10 dB |" in report
    assert "| sep | n/a / n/a [1] | -12.3 % / +0.50 dB |" in report
    assert "[1] too few" in report
    with pytest.raises(pydantic.ValidationError, match="bd_psnr_db has 1 values"):
        BDResults(anchor="a", method="pchip", rate="CBR", min_rate_points=4, curves={},
                  snr_db=[0.0, 1.0], deltas={"b": {"bd_rate_percent": [1.0, 2.0],
                                                   "bd_psnr_db": [1.0], "notes": [None, None]}})


def test_an_scsc_system_whose_proxy_does_not_track_the_chain_is_flagged(tmp_path):
    # proxy_psnr_db: the proxy-vs-chain PSNR an scsc system reports (the same at every
    # SNR); below 20 dB its training failed, which the report, the terminal table and the
    # plot labels say. 20.0 itself tracks (the bound is exclusive).
    from semsim.cli.run import summary_table
    from semsim.report.plots import _label

    results = make_results()
    common = dict(snr_db=[0.0, 10.0], **quality([15.7, 16.0]), steps_done=900,
                  steps_planned=900)
    results.systems["scsc_q28"] = SystemResults(type="scsc", proxy_psnr_db=[16.04, 16.04],
                                                **common)
    results.systems["scsc_q34"] = SystemResults(type="scsc", proxy_psnr_db=[20.0, 20.0],
                                                **common)
    failed, tracks = results.systems["scsc_q28"], results.systems["scsc_q34"]
    assert failed.proxy_failed and not tracks.proxy_failed
    assert not results.systems["ref"].proxy_failed  # systems without a proxy
    report = write_report(results, [], tmp_path / "report.md").read_text()
    assert "**Proxy does not track the chain: scsc_q28** (the PSNR" in report
    assert ("| scsc_q28 | scsc | 900 steps, convergence not measured, proxy FAILED: 16.04 dB "
            "against the chain |") in report
    assert "| scsc_q34 | scsc | 900 steps, convergence not measured |" in report
    assert _label("scsc_q28", failed) == "scsc_q28 (proxy failed)"
    assert _label("scsc_q34", tracks) == "scsc_q34"
    rows = [row for row in summary_table(results).columns[0].cells]
    assert "scsc_q28 (proxy FAILED)" in rows and "scsc_q34" in rows


def test_csv_has_one_row_per_system_and_snr(tmp_path):
    write_csv(make_results(), tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["system"], r["snr_db"]) for r in rows] == [
        ("ref", "0.0"), ("ref", "10.0"), ("sep", "0.0"), ("sep", "10.0")]
    assert rows[1]["psnr_db"] == "28.0" and rows[1]["kept_maps"] == "6.0"
    assert rows[1]["psnr_ci95_db"] == "0.75" and rows[3]["exact_images"] == "3"
    assert rows[0]["steps_done"] == "600" and rows[2]["steps_done"] == ""
    assert rows[1]["failed"] == "" and rows[2]["failed"] == "1.0"


def test_figures_and_report(tmp_path):
    results = make_results()
    figures = plot_results(results, tmp_path)
    assert [f.name for f in figures] == ["psnr_vs_snr.png", "psnr_vs_cr.png", "ssim_vs_snr.png",
                                         "ms_ssim_vs_snr.png", "cr_vs_snr.png",
                                         "extras_vs_snr.png"]
    originals = np.zeros((2, 8, 8, 3), np.uint8)
    grid = plot_samples("ref", originals, {0.0: originals, 10.0: originals + 200},
                        tmp_path / "samples_ref.png")
    for figure in [*figures, grid]:
        with Image.open(figure) as image:
            assert image.size[0] > 100 and image.size[1] > 100
    report = write_report(results, [*figures, grid], tmp_path / "report.md").read_text()
    assert ("| ref | reference | 600/2000 steps, UNDER-TRAINED | 20.50 ± 0.25 dB / CR 0.0500 "
            "| 28.00 ± 0.75 dB / CR 0.0800 |") in report
    assert "| sep | separation | - | 12.00 ± 0.50 dB / CR 0.0500 | 26.00 ± 0.50 dB (3 exact)" \
        in report
    assert "**Warning: under-trained: ref**" in report and "counted at 83.00 dB" in report
    assert "| ref | reference | 0.800 ± 0.010 / 0.900 ± 0.020 |" in report
    assert "![samples_ref](samples_ref.png)" in report
    assert report.startswith("# demo\n\ndemo run\n")


def test_psnr_plot_draws_the_95_percent_intervals_as_error_bars(tmp_path, monkeypatch):
    import matplotlib.axes

    drawn = []
    original = matplotlib.axes.Axes.errorbar

    def spy(self, x, y, *args, **kwargs):
        drawn.append((self, list(x), list(y), list(kwargs.get("yerr")), kwargs.get("label")))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    plot_results(make_results(), tmp_path)
    drawn = [(ax.get_title(), *rest) for ax, *rest in drawn]  # titles are set after drawing
    psnr = [d for d in drawn if d[0].startswith("PSNR vs SNR")]
    assert psnr[0][1:] == ([0.0, 10.0], [20.5, 28.0], [0.25, 0.75], "ref (under-trained)")
    assert psnr[1][4] == "sep"
    ssim = [d for d in drawn if d[0].startswith("SSIM vs SNR")]
    assert ssim[0][3] == [0.01, 0.01]


def test_failing_write_leaves_the_previous_file(tmp_path, monkeypatch):
    results = make_results()
    results.write(tmp_path / "results.json")
    before = (tmp_path / "results.json").read_text()
    changed = results.model_copy(update={"profile": "other"})

    def broken(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_text", broken)
    with pytest.raises(OSError, match="No space left"):
        changed.write(tmp_path / "results.json")
    monkeypatch.undo()
    assert (tmp_path / "results.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left
