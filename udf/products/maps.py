"""PNG maps a person can read: per farming year, the number of seasons and the start of each season (as dates)."""

import logging
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["phenology_maps"]

_log = logging.getLogger(__name__)


def _date_formatter():  # type: ignore[no-untyped-def]
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos=None: str(np.datetime64(int(round(v)), "D")) if np.isfinite(v) else "")


def _extent(pheno: xr.DataArray) -> list[float]:
    x, y = pheno["x"].values, pheno["y"].values
    dx = abs(float(x[1] - x[0])) if x.size > 1 else 1.0
    dy = abs(float(y[1] - y[0])) if y.size > 1 else 1.0
    return [float(x.min()) - dx / 2, float(x.max()) + dx / 2, float(y.min()) - dy / 2, float(y.max()) + dy / 2]


def phenology_maps(pheno: xr.DataArray, out: Path, max_seasons: int) -> list[Path]:
    """Write ``seasons_<year>.png`` per farming year: a map of N_SEASONS and one SOS map per season slot with data.

    Args:
        pheno: the phenology cube (one ``t`` label per farming year).
        out: folder.
        max_seasons: season slots in ``pheno``.

    Returns:
        The written files.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    out.mkdir(parents=True, exist_ok=True)
    geographic = "GEOGCS" in str(pheno.attrs.get("crs", ""))[:10] or "4326" in str(pheno.attrs.get("crs", ""))[-12:]
    written = []
    for k, start in enumerate(pheno["t"].values):
        year = pheno.isel(t=k)
        if not np.isfinite(year.values).any():
            _log.info("No season determined in the farming year from %s (too little data in it): no map",
                      str(start)[:10])
            continue
        slots = [s for s in range(1, max_seasons + 1) if np.isfinite(year.sel(bands=f"SOS_{s}").values).any()]
        n = 1 + max(1, len(slots))
        fig, axes = plt.subplots(1, n, figsize=(4.3 * n, 4.2), squeeze=False, layout="constrained")
        fig.suptitle(f"Farming year from {str(start)[:10]} (white: not determined / no such season)", fontsize=10)
        counts = year.sel(bands="N_SEASONS").values
        top = int(max(max_seasons, np.nanmax(counts) if np.isfinite(counts).any() else 0))
        cmap = ListedColormap(["#d9d9d9"] + list(plt.get_cmap("Greens")(np.linspace(0.35, 1.0, top))))
        norm = BoundaryNorm(np.arange(-0.5, top + 1.5), cmap.N)
        ax = axes[0, 0]
        im = ax.imshow(counts, cmap=cmap, norm=norm, extent=_extent(pheno), interpolation="nearest")
        ax.set_title("Number of seasons (grey: none)", fontsize=9)
        fig.colorbar(im, ax=ax, ticks=range(top + 1), shrink=0.8, label="seasons")
        for i, s in enumerate(slots or [1], start=1):
            ax = axes[0, i]
            im = ax.imshow(year.sel(bands=f"SOS_{s}").values, cmap="viridis", extent=_extent(pheno),
                           interpolation="nearest")
            ax.set_title(f"Start of season {s} (SOS_{s})", fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.8, format=_date_formatter(), label="date")
        for ax in axes[0]:
            ax.ticklabel_format(useOffset=False, style="plain")
            ax.set_xlabel("longitude (°)" if geographic else "x (m)", fontsize=8)
            ax.set_ylabel("latitude (°)" if geographic else "y (m)", fontsize=8)
            ax.tick_params(labelsize=7)
            if geographic:
                ax.set_aspect(1 / max(0.1, np.cos(np.deg2rad(float(np.mean(pheno["y"].values))))))
        path = out / f"seasons_{str(start)[:7]}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    _log.info("Wrote %d phenology map(s) to %s", len(written), out)
    return written
