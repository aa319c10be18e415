"""Figures a reviewer accepts: colour bars, readable ticks, legends off the data, hidden windows shaded, ±1σ said,
in-sample methods marked, values beyond the axis shown and counted, every figure linked from the report."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from comparison.compare.core import CompareOptions, plan, prepare_cube
from comparison.compare.evaluate import evaluate
from comparison.compare.methods import Prediction, linear_method
from comparison.compare.report import FIGURE_NOTES, site_figures
from comparison.figures.plots import bin_label, draw_breakdown, draw_residuals, draw_scatter
from comparison.figures.series import draw_series, hidden_windows
from tests.conftest import make_cube
from udf.evaluation.protocols import spatial_block_split
from udf.ingest.cube_io import write_cube

IN_SAMPLE_NOTE = "in-sample: the service saw every observation"


@pytest.fixture(scope="module")
def scored() -> tuple[xr.DataArray, dict, dict, dict]:
    """A small comparison: DL-like (with std, 3 values > 1 and 1 < -0.1 on hidden observations), an in-sample
    peer and linear interpolation, under P1 and P2_60."""
    cube = prepare_cube(make_cube(nt=30, ny=16, nx=16, units="linear", seed=3))
    truth = cube.sel(bands="NDVI").values
    _, protocols = plan(cube, CompareOptions(protocols=("P1", "P2_60"), block=4), spatial_block_split((16, 16), 4))
    where = np.argwhere(protocols["P1"].hidden)

    def dl(masked: xr.DataArray, pixels: np.ndarray) -> Prediction:
        mean = np.nan_to_num(truth, nan=0.5) + 0.02
        for k, (t, y, x) in enumerate(where[:4]):
            mean[t, y, x] = -0.4 if k == 3 else 1.3
        return Prediction(mean, np.full(truth.shape, 0.05), truth[0].size)

    def peer(masked: xr.DataArray, pixels: np.ndarray) -> Prediction:
        return Prediction(np.nan_to_num(truth, nan=0.5), None, 0, note=IN_SAMPLE_NOTE)

    pixels = protocols["P1"].hidden.any(0) | protocols["P2_60"].hidden.any(0)
    metrics, predictions = evaluate(cube, protocols, {"DL": dl, "CropSAR": peer, "Linear": linear_method()}, pixels)
    return cube, protocols, metrics, predictions


def _hidden(protocols: dict) -> dict[str, np.ndarray]:
    return {p: prot.hidden for p, prot in protocols.items()}


def _overlaps(boxes: list) -> bool:
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_scatter_has_one_colour_bar_and_counts_values_beyond_the_axis(scored) -> None:
    cube, protocols, metrics, predictions = scored
    fig = draw_scatter(cube.sel(bands="NDVI").values, _hidden(protocols), predictions, metrics)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == "hidden observations per hexagon (log scale)"
    titles = {ax.get_title() for ax in fig.axes}
    dl_p1 = next(t for t in titles if t.startswith("DL P1"))
    assert dl_p1.endswith("beyond axis (on edge): 1 pred. < -0.1, 3 pred. > 1")
    assert any(t.startswith("CropSAR (in-sample) P1") for t in titles)
    plt.close(fig)


def test_breakdown_ticks_are_readable_and_the_legend_is_off_the_bars(scored) -> None:
    _, _, metrics, _ = scored
    fig = draw_breakdown(metrics, "by_distance", "days to nearest kept observation")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_xticklabels()]
    for ax in panels:
        labels = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        assert len(labels) == 4 and not _overlaps(labels), [t.get_text() for t in ax.get_xticklabels()]
    (legend,) = fig.legends
    assert not any(legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)) for ax in panels)
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["DL", "CropSAR (in-sample)", "Linear"]
    hatched = [b for ax in panels for b in ax.patches if b.get_label() == "CropSAR (in-sample)" or b.get_hatch()]
    assert hatched and all(b.get_hatch() == "///" for b in hatched)
    assert bin_label(">=60d or none kept") == "≥ 60 d\nor none kept" and bin_label("0-15d") == "0–15 d"
    plt.close(fig)


def test_residual_legends_sit_under_the_panels_and_count_clipped_residuals(scored) -> None:
    cube, protocols, metrics, predictions = scored
    fig = draw_residuals(cube.sel(bands="NDVI").values, _hidden(protocols), predictions, metrics)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        assert legend.get_window_extent(renderer).y1 < ax.get_window_extent(renderer).y0
    assert not _overlaps([ax.get_legend().get_window_extent(renderer) for ax in fig.axes])
    truth = cube.sel(bands="NDVI").values
    beyond = int((np.abs(predictions["P1"]["DL"].mean - truth)[protocols["P1"].hidden] > 0.6).sum())
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert beyond > 0 and texts[0].startswith("DL MAE") and texts[0].endswith(f", {beyond} beyond ±0.6")
    assert texts[1].startswith("CropSAR (in-sample) MAE")
    plt.close(fig)


def test_series_shade_hidden_windows_label_the_band_and_mark_in_sample(scored) -> None:
    cube, protocols, metrics, predictions = scored
    fig = draw_series(cube["t"].values, cube.sel(bands="NDVI").values, _hidden(protocols), predictions, n_pixels=2)
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert {"hidden window", "DL ±1σ", "CropSAR (in-sample)", "S2 hidden"} <= set(texts)
    line = next(h for h, t in zip(legend.legend_handles, texts) if t == "CropSAR (in-sample)")
    assert line.get_linestyle() == "--"
    p2 = fig.axes[2]  # first P2_60 panel: one contiguous window
    spans = [p for p in p2.patches if p.get_label() in ("hidden window", "_nolegend_")]
    assert len(spans) == 1
    plt.close(fig)


def test_hidden_windows_are_runs_not_broken_by_a_kept_observation() -> None:
    observed = np.array([1, 1, 0, 1, 1, 1, 1, 0, 1], bool)
    hidden = np.array([0, 1, 0, 1, 0, 1, 1, 0, 1], bool)
    assert hidden_windows(np.arange(9), observed, hidden) == [(1, 3), (5, 8)]


def test_series_values_beyond_the_axis_are_counted() -> None:
    times = np.datetime64("2021-01-01") + np.arange(6) * np.timedelta64(10, "D")
    truth = np.full((6, 1, 1), 0.5)
    hidden = np.zeros((6, 1, 1), bool)
    hidden[2] = True
    mean = np.array([0.5, 1.2, 1.3, 0.5, -0.3, 0.5])[:, None, None]
    fig = draw_series(times, truth, {"P1": hidden}, {"P1": {"MOGPR": Prediction(mean, None, 1)}}, n_pixels=1)
    assert fig.axes[0].get_title().endswith("beyond axis (on edge): 1 MOGPR < -0.1, 2 MOGPR > 1.05")
    plt.close(fig)


def test_site_figures_are_all_linked_with_what_to_look_at(scored, tmp_path: Path) -> None:
    cube, protocols, metrics, predictions = scored
    text = site_figures(tmp_path, cube, protocols, predictions, metrics, prefix="field_x_")
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == len(FIGURE_NOTES) == 5
    for name in pngs:
        assert f"([{name}]({name}))" in text and f"]({name})\n" in text + "\n"
    assert "CropSAR (in-sample): these results saw the hidden values" in text


def test_compare_report_links_every_png_it_writes(cli, tmp_path: Path) -> None:
    cube = write_cube(make_cube(nt=30, ny=16, nx=16, units="db", seed=4), tmp_path / "cube.nc")
    out = tmp_path / "cmp"
    status, said, _ = cli("compare", "--cube", cube, "--out", out, "--no-dl", "--mogpr", "none", "--block", "4",
                          "--protocol", "P1,P2_60")
    assert status == 0 and said.strip().startswith(f"Wrote {out / 'report.md'}")
    report = (out / "report.md").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs and all(f"]({name})" in report for name in pngs)
    linked = re.findall(r"\*\*([^*]+)\*\* \(\[([^]]+\.png)\]", report)
    assert sorted(name for _, name in linked) == pngs
    assert all(FIGURE_NOTES[key][0] in dict(linked) for key in FIGURE_NOTES)
