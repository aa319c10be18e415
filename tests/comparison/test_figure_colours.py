"""Every method its own colour (never black, the observations' colour), the DL family's ±1σ band drawn for each
variant, and hatching that shows on the phenology bars (checked on the matplotlib objects)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex, to_rgb

from comparison.compare.methods import Prediction
from comparison.figures.plots import draw_breakdown
from comparison.figures.series import draw_series
from comparison.figures.style import colour, family, has_band
from comparison.phenology.report import draw_scores

DEMO_METHODS = ("DL zero-shot", "DL adapted", "MOGPR", "Linear", "Whittaker", "SeedMLP")


def _luminance(c) -> float:
    r, g, b = to_rgb(c)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_families_and_colours() -> None:
    assert family("DL zero-shot") == family("DL adapted") == family("DL") == "DL"
    assert family("MOGPR-GPy") == "MOGPR" and family("DLX") is None and family("Linear") == "Linear"
    names = (*DEMO_METHODS, "DL", "MOGPR-GPy", "DL fine-tuned", "something else")
    hexes = {n: to_hex(colour(n)) for n in names}
    assert len({hexes[n] for n in DEMO_METHODS}) == len(DEMO_METHODS), hexes
    assert hexes["DL fine-tuned"] not in (hexes["DL zero-shot"], hexes["DL adapted"])
    assert all(_luminance(c) > 0.15 for c in hexes.values()), hexes  # none black or near it
    assert has_band("DL zero-shot") and has_band("DL adapted") and has_band("MOGPR-file") and not has_band("Linear")


def _series_inputs():
    times = np.datetime64("2021-01-01") + np.arange(12) * np.timedelta64(10, "D")
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.2, 0.8, (12, 2, 2))
    hidden = np.zeros(truth.shape, bool)
    hidden[4:7] = True
    preds = {name: Prediction(truth + 0.01 * k, np.full(truth.shape, 0.05) if k < 3 else None, 4)
             for k, name in enumerate(DEMO_METHODS)}
    return times, truth, {"P2_60": hidden}, {"P2_60": preds}


def test_series_draw_each_dl_variant_in_its_own_colour_with_its_band() -> None:
    times, truth, hidden, preds = _series_inputs()
    fig = draw_series(times, truth, hidden, preds, n_pixels=1)
    ax = fig.axes[0]
    lines = {ln.get_label(): to_hex(ln.get_color()) for ln in ax.get_lines()}
    for name in DEMO_METHODS:
        assert lines[name] == to_hex(colour(name)), name
    assert lines["DL zero-shot"] != lines["DL adapted"]
    bands = {c.get_label(): to_hex(c.get_facecolor()[0][:3]) for c in ax.collections if isinstance(c, PolyCollection)}
    for name in ("DL zero-shot", "DL adapted", "MOGPR"):
        assert bands[f"{name} ±1σ"] == to_hex(colour(name)), bands
    assert "Linear ±1σ" not in bands
    legend = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"DL zero-shot ±1σ", "DL adapted ±1σ"} <= legend
    plt.close(fig)


def test_breakdown_bars_take_each_methods_colour() -> None:
    row = {"mae": 0.1, "by_distance": {"0-10": {"mae": 0.05, "n": 10}, "10-30": {"mae": 0.1, "n": 5}}}
    fig = draw_breakdown({"P2_60": {m: dict(row) for m in DEMO_METHODS}}, "by_distance", "days")
    ax = fig.axes[0]
    got = {c.get_label(): to_hex(c.patches[0].get_facecolor()[:3]) for c in ax.containers}
    assert got == {m: to_hex(colour(m)) for m in DEMO_METHODS}
    plt.close(fig)


@pytest.fixture
def phenology_payload() -> dict:
    dates = {d: {"touched": {"median": 5.0 + k, "p90": 20.0}} for k, d in enumerate(("SOS", "POS", "EOS"))}
    methods = {m: {**dates, "matched": 3, "count": {"agreement": 0.8}} for m in ("DL zero-shot", "DL adapted", "MOGPR")}
    return {"protocols": {"P2_60": methods}}


def test_phenology_bars_show_their_hatching(phenology_payload) -> None:
    fig = draw_scores(phenology_payload)
    bars = [p for p in fig.axes[0].patches if p.get_hatch()]
    assert {p.get_hatch() for p in bars} == {"..", "//"} and len(bars) == 6
    for p in bars:  # black hatching needs a face light enough to show on, and a face that is not the hatch colour
        assert _luminance(p.get_facecolor()) > 0.25 and to_hex(p.get_edgecolor()[:3]) == "#000000"
    faces = {to_hex(p.get_facecolor()[:3]) for p in fig.axes[0].patches}
    assert {to_hex(colour(m)) for m in ("DL zero-shot", "DL adapted", "MOGPR")} <= faces
    plt.close(fig)
