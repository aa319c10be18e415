"""Figure of a phenology result: maps per farming year and the series of a few pixels with their seasons.

Maps of N_SEASONS, SOS_1 and POS_1 (dates on the colour bars as calendar dates), then the NDVI series of a few pixels
with the smoothed curve and the detected seasons shaded.
"""

import logging
from pathlib import Path

import numpy as np
import xarray as xr

from udf.phenology import PhenologyConfig, check_phenology_cube, pixel_seasons
from udf.seasons import Seasons

_log = logging.getLogger(__name__)

__all__ = ["example_pixels", "phenology_figure"]


def _date_label(value: float, _pos: object = None) -> str:
    return str(np.datetime64(int(round(value)), "D")) if np.isfinite(value) else ""


def _map_years(pheno: xr.DataArray) -> list[int]:
    """Farming years worth a row: those with a defined N_SEASONS, else the one with most POS_1 (at most 3)."""
    counts = np.isfinite(pheno.sel(bands="N_SEASONS").values).sum((1, 2))
    years = [int(i) for i in np.flatnonzero(counts)]
    if not years:
        years = [int(np.argmax(np.isfinite(pheno.sel(bands="POS_1").values).sum((1, 2))))]
    return years[:3]


def example_pixels(pheno: xr.DataArray, year: int, n: int = 3) -> list[tuple[int, int]]:
    """Up to ``n`` pixels with different season counts in ``year`` (highest first), each the most central one."""
    count = pheno.sel(bands="N_SEASONS").values[year]
    if not np.isfinite(count).any():
        count = np.isfinite(pheno.sel(bands="POS_1").values[year]).astype(float)
    ny, nx = count.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    dist = (yy - (ny - 1) / 2) ** 2 + (xx - (nx - 1) / 2) ** 2
    picks = []
    for value in sorted(np.unique(count[np.isfinite(count)]), reverse=True)[:n]:
        where = np.where(count == value, dist, np.inf)
        picks.append(tuple(int(v) for v in np.unravel_index(np.argmin(where), where.shape)))
    return picks  # type: ignore[return-value]


def _maps(fig, grid, pheno: xr.DataArray, years: list[int]) -> None:  # type: ignore[no-untyped-def]
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    nmax = np.nanmax(np.append(pheno.sel(bands="N_SEASONS").values, 1.0))
    for row, y in enumerate(years):
        label = str(pheno["t"].values[y])[:10]
        for col, band in enumerate(("N_SEASONS", "SOS_1", "POS_1")):
            ax = fig.add_subplot(grid[row, col])
            values = pheno.sel(bands=band).values[y]
            if band == "N_SEASONS":
                im = ax.imshow(values, cmap="viridis", vmin=-0.5, vmax=nmax + 0.5, interpolation="nearest")
                bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
                bar.locator = MaxNLocator(integer=True)
                bar.update_ticks()
                bar.set_label("seasons peaking in the year")
            else:
                im = ax.imshow(values, cmap="plasma", interpolation="nearest")
                bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, format=FuncFormatter(_date_label))
                bar.set_label("date")
            ax.set_title(f"{band}, farming year from {label}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])


def _shade(ax, seasons: Seasons, i: int) -> None:  # type: ignore[no-untyped-def]
    def day(v: float) -> np.datetime64:
        return np.datetime64(int(round(v)), "D")

    for s in np.flatnonzero(seasons.present[i]):
        sos, eos = seasons.sos[i, s], seasons.eos[i, s]
        left = sos if np.isfinite(sos) else seasons.start_day[i, s]
        right = eos if np.isfinite(eos) else seasons.end_day[i, s]
        cut = not (np.isfinite(sos) and np.isfinite(eos))
        ax.axvspan(day(left), day(right), color="tab:green", alpha=0.12 if cut else 0.25, hatch="//" if cut else None,
                   label="season cut (SOS or EOS unknown)" if cut else "season SOS → EOS")
        if np.isfinite(seasons.pos[i, s]):
            ax.axvline(day(seasons.pos[i, s]), color="tab:green", lw=1, ls="--", label="POS")


def _series(fig, grid, cube: xr.DataArray, pixels: list[tuple[int, int]], config: PhenologyConfig) -> None:  # type: ignore[no-untyped-def]
    t = cube["t"].values
    days = t.astype("datetime64[s]").astype(np.int64) / 86400.0
    ndvi = np.stack([cube.sel(bands="NDVI").values[:, y, x] for y, x in pixels])
    names = [str(b) for b in cube["bands"].values]
    std = np.stack([cube.sel(bands="NDVI_STD").values[:, y, x] for y, x in pixels]) if "NDVI_STD" in names else None
    seasons = pixel_seasons(ndvi, days, std, config)
    for i, (y, x) in enumerate(pixels):
        ax = fig.add_subplot(grid[i])
        ax.plot(t, ndvi[i], "o", ms=3, color="0.3", label="NDVI (input)")
        ax.plot(t, seasons.smoothed[i], "-", color="tab:blue", lw=1.5, label="smoothed")
        _shade(ax, seasons, i)
        ax.set_ylabel("NDVI")
        ax.set_title(f"pixel y={y}, x={x}: {int(seasons.present[i].sum())} season(s) over the cube", fontsize=9)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def phenology_figure(cube: xr.DataArray, pheno: xr.DataArray, out: str | Path,
                     config: PhenologyConfig = PhenologyConfig()) -> Path:
    """Write the figure (PNG) for an NDVI ``cube`` and its phenology ``pheno`` (from :func:`phenology_cube`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cube = check_phenology_cube(cube)
    years = _map_years(pheno)
    pixels = example_pixels(pheno, years[0])
    fig = plt.figure(figsize=(15, 3.6 * len(years) + 2.6 * max(len(pixels), 1)))
    outer = fig.add_gridspec(2, 1, height_ratios=[3.6 * len(years), 2.6 * max(len(pixels), 1)], hspace=0.25)
    _maps(fig, outer[0].subgridspec(len(years), 3, wspace=0.5), pheno, years)
    if pixels:
        _series(fig, outer[1].subgridspec(len(pixels), 1, hspace=0.6), cube, pixels, config)
    fig.subplots_adjust(left=0.05, right=0.8, top=0.96, bottom=0.04)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    _log.info("Wrote phenology figure %s", out)
    return out
