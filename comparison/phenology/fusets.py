"""This project's phenology against FuseTS' own phenology output for the BIDS_demo field (Castilla y León, 2019).

``BIDS_demo_phenology.nc`` is what FuseTS' openEO phenology service returned for the field: Phenolopy's
``calc_phenometrics`` with its defaults on the CropSAR NDVI series of 2019 (its ``pos_values`` are exactly each
pixel's CropSAR maximum in DN, checked here). That method finds **one** season per pixel and year: POS is the
series' maximum, SOS the lowest value on the rising part before it and EOS the lowest value on the falling part after
it ("first_of_slope", on the unsmoothed 5-day values), all as day of year. Ours finds every season on the smoothed
curve and dates SOS/EOS where the curve crosses 20 % of the season's amplitude above each base (TIMESAT's seasonal
amplitude method), on a continuous time axis.

Both run here on the same CropSAR series; per field pixel, our season whose peak is nearest FuseTS' POS is compared
(signed differences ours − FuseTS); ours on the field's real S2 series (the dense reference) is compared as well.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from comparison.compare.field_case import field_truth  # noqa: E402
from comparison.figures.style import legend_right, save  # noqa: E402
from comparison.result_files import CROPSAR_OFFSET, CROPSAR_SCALE, FIELD_DATA, read_cropsar  # noqa: E402
from udf.phenology import PhenologyConfig, farming_years, pixel_seasons, year_counts  # noqa: E402
from udf.preprocess import times_to_days  # noqa: E402
from udf.seasons import Seasons  # noqa: E402

__all__ = ["FUSETS_PHENOLOGY", "fusets_phenology_comparison", "read_fusets_phenology"]

FUSETS_PHENOLOGY = "BIDS_demo_phenology.nc"
PEAK_DAYS = 45.0
"""Our season compared with FuseTS' is the one whose peak is nearest FuseTS' POS, at most this many days away."""
DATES = ("SOS", "POS", "EOS")


def read_fusets_phenology(path: Path) -> dict[str, np.ndarray]:
    """FuseTS' phenology: ``SOS``/``POS``/``EOS`` ``(y, x)`` in days since 1970-01-01, ``pos_values``, ``x``, ``y``.

    The file stores ``sos_times``/``pos_times``/``eos_times`` as day of year of the ``phenology`` label's year and
    ``pos_values`` in CropSAR DN.
    """
    if not path.exists():
        raise FileNotFoundError(f"FuseTS phenology file '{path}' not found (see comparison/data/*/ATTRIBUTION.md)")
    with xr.open_dataset(path) as ds:
        missing = [v for v in ("sos_times", "pos_times", "eos_times", "pos_values") if v not in ds]
        if missing or "phenology" not in ds.dims:
            raise KeyError(f"'{path}' lacks {missing or ['phenology dimension']}; variables {list(ds.data_vars)}")
        year_start = times_to_days(ds["phenology"].values[:1])[0]
        out = {name: year_start + ds[f"{name.lower()}_times"].values[0] - 1.0 for name in DATES}
        out.update(pos_values=ds["pos_values"].values[0], x=ds["x"].values, y=ds["y"].values)
    return out


def _nearest(seasons: Seasons, target: np.ndarray) -> dict[str, np.ndarray]:
    """Per pixel, SOS/POS/EOS of the season whose peak is nearest ``target`` (NaN if none within PEAK_DAYS)."""
    dist = np.abs(np.where(seasons.present, seasons.peak_day, np.nan) - target[:, None])
    has = np.isfinite(dist).any(1)
    best = np.argmin(np.where(np.isfinite(dist), dist, np.inf), axis=1)
    rows = np.arange(len(target))
    ok = has & (dist[rows, best] <= PEAK_DAYS)
    return {d: np.where(ok, getattr(seasons, d.lower())[rows, best], np.nan) for d in DATES}


def _stats(delta: np.ndarray) -> dict:
    d = delta[np.isfinite(delta)]
    if d.size == 0:
        return {"n": 0}
    return {"n": int(d.size), "median": float(np.median(d)), "p10": float(np.percentile(d, 10)),
            "p90": float(np.percentile(d, 90)), "median_abs": float(np.median(np.abs(d)))}


def _series(cube: xr.DataArray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(N, T)`` series of a ``(t, y, x)`` cube on the grid ``y`` × ``x`` (nearest labels within 1 m)."""
    sub = cube.sel(y=y, x=x, method="nearest", tolerance=1.0)
    return np.asarray(sub.transpose("y", "x", "t").values, dtype=np.float64).reshape(len(y) * len(x), -1)


def fusets_phenology_comparison(out: Path, config: PhenologyConfig = PhenologyConfig(),
                                data: Path = FIELD_DATA) -> tuple[dict, str]:
    """Compare with FuseTS' BIDS_demo phenology; writes ``phenology_fusets.png`` into ``out``."""
    fusets = read_fusets_phenology(data / FUSETS_PHENOLOGY)
    cropsar = read_cropsar(data / "BIDS_demo_cropsar_ndvi.nc")
    cs_days = times_to_days(cropsar["t"].values)
    cs = _series(cropsar, fusets["y"], fusets["x"])
    field = np.isfinite(fusets["POS"].ravel()) & np.isfinite(cs).any(1)
    dn_max = np.round((np.nanmax(np.where(np.isfinite(cs), cs, -np.inf), 1) - CROPSAR_OFFSET) / CROPSAR_SCALE)
    check = float(np.nanmax(np.abs(dn_max[field] - fusets["pos_values"].ravel()[field])))
    ours_cs = pixel_seasons(cs[field], cs_days, None, config)
    s2 = field_truth("BIDS_demo", data).sel(bands="NDVI")
    ours_s2 = pixel_seasons(_series(s2, fusets["y"], fusets["x"])[field], times_to_days(s2["t"].values), None, config)
    target = fusets["POS"].ravel()[field]
    theirs = {d: fusets[d].ravel()[field] for d in DATES}
    on_cs, on_s2 = _nearest(ours_cs, target), _nearest(ours_s2, target)
    year = PhenologyConfig(**{**config.__dict__, "year_start": "01-01"})
    counts = year_counts(ours_cs, farming_years(cs_days[0], cs_days[-1], "01-01"), year)[0]
    payload = {"field_pixels": int(field.sum()), "fusets_pos_equals_cropsar_max_dn": check,
               "fusets_median_pos": str(np.datetime64(int(np.median(target)), "D")),
               "seasons_2019_on_cropsar": {str(int(k)): int((counts == k).sum())
                                           for k in np.unique(counts[np.isfinite(counts)])},
               "ours_cropsar_minus_fusets": {d: _stats(on_cs[d] - theirs[d]) for d in DATES},
               "ours_s2_minus_fusets": {d: _stats(on_s2[d] - theirs[d]) for d in DATES},
               "ours_s2_minus_ours_cropsar": {d: _stats(on_s2[d] - on_cs[d]) for d in DATES}}
    _figure(cropsar, cs[field], ours_cs, theirs, np.flatnonzero(field), out / "phenology_fusets.png")
    payload["figure"] = "phenology_fusets.png"
    return payload, _markdown(payload)


def _cells(stats: dict) -> list[str]:
    return [f"{s['median']:+.0f} ({s['p10']:+.0f} … {s['p90']:+.0f}), n={s['n']}" if s.get("n") else "–"
            for s in (stats[d] for d in DATES)]


def _markdown(p: dict) -> str:
    counts = ", ".join(f"{k} season(s): {v} px" for k, v in p["seasons_2019_on_cropsar"].items())
    return "\n".join([
        f"**FuseTS' own phenology (BIDS_demo field, {p['field_pixels']} pixels, 2019).** FuseTS' service ran "
        "Phenolopy on the CropSAR NDVI series (its `pos_values` equal each pixel's CropSAR maximum in DN: largest "
        f"difference {p['fusets_pos_equals_cropsar_max_dn']:.0f} DN). Signed differences in days, median "
        "(10th … 90th percentile), ours minus FuseTS, our season with the nearest peak:", "",
        "| comparison | ΔSOS | ΔPOS | ΔEOS |", "|---|---:|---:|---:|",
        "| ours on CropSAR (FuseTS' input) − FuseTS | " + " | ".join(_cells(p["ours_cropsar_minus_fusets"])) + " |",
        "| ours on real S2 (the dense reference) − FuseTS | " + " | ".join(_cells(p["ours_s2_minus_fusets"])) + " |",
        "| ours on real S2 − ours on CropSAR | " + " | ".join(_cells(p["ours_s2_minus_ours_cropsar"])) + " |", "",
        f"Seasons our phenology finds in calendar 2019 on CropSAR: {counts}; FuseTS' median POS is "
        f"{p['fusets_median_pos']}.", "",
        "Why they differ: (1) *definition* — FuseTS dates SOS at the lowest value of the rise before the peak and EOS "
        "at the lowest value of the fall after it (the very start of green-up and the end of senescence, read off "
        "unsmoothed 5-day values), ours where the smoothed curve crosses 20 % of the amplitude above each base, so "
        "our SOS is later and our EOS earlier by construction; POS is the maximum in both (raw vs smoothed, so within "
        "a few days); (2) *one season a year* — FuseTS keeps only the yearly maximum and takes its slopes anywhere in "
        "the calendar year, so a second crop or a January rise moves its SOS/EOS (its earliest SOS is 1 January); ours "
        "separates seasons at dips and would report a second one; (3) *day of year* — FuseTS' times restart on "
        "1 January, so a season crossing the new year cannot be represented; this field's season lies inside 2019, "
        "so that limitation does not show here.", "", f"![FuseTS vs ours]({p['figure']})"])


def _figure(cropsar: xr.DataArray, cs: np.ndarray, ours: Seasons, theirs: dict[str, np.ndarray], flat: np.ndarray,
            out: Path, n: int = 3) -> Path:
    """Series of ``n`` field pixels (CropSAR, our smoothed curve) with both methods' SOS/POS/EOS."""
    pick = np.linspace(0, len(cs) - 1, n + 2).astype(int)[1:-1]
    t = cropsar["t"].values
    fig, axes = plt.subplots(n, 1, figsize=(12, 2.8 * n), squeeze=False)
    for row, k in enumerate(pick):
        ax = axes[row, 0]
        ax.plot(t, cs[k], ".", color="0.4", ms=4, label="CropSAR NDVI (FuseTS' input)")
        ax.plot(t, ours.smoothed[k], "-", color="tab:blue", label="smoothed (ours)")
        for d, style in zip(DATES, ("-", ":", "--")):
            if np.isfinite(theirs[d][k]):
                ax.axvline(np.datetime64(int(theirs[d][k]), "D"), color="tab:orange", ls=style, lw=1.5,
                           label=f"{d} FuseTS")
            for s in np.flatnonzero(ours.present[k]):
                value = getattr(ours, d.lower())[k, s]
                if np.isfinite(value):
                    ax.axvline(np.datetime64(int(value), "D"), color="tab:green", ls=style, lw=1.5, label=f"{d} ours")
        y, x = np.unravel_index(flat[k], (cropsar.sizes["y"], cropsar.sizes["x"]))
        ax.set_title(f"BIDS_demo pixel y={y}, x={x}", fontsize=9)
        ax.set_ylabel("NDVI")
        legend_right(ax)
    fig.tight_layout()
    return save(fig, out, dpi=100)
