"""Mixed Sentinel-1 orbits: does per-orbit normalisation (``udf.ingest.orbits``) make the series smoother? REAL data.

1. The embedded WorldCereal S1 series (``udf/data/sample``, Flanders 2017-08 → 2018-11, 32 x 32 px at 20 m,
   159 ascending acquisitions) holds two relative orbits, told apart by their acquisition time (17:32 and 17:40 UTC;
   each repeats every 6 days with S1A + S1B). Offsets are estimated on the first half of the period with the shipped
   rule and applied to the second half, where the series are scored: mean |dB step| between consecutive
   acquisitions (what a per-acquisition cube and the training re-composites see) and between consecutive 5-, 10- and
   12-day composites. Variants: mixed as they come (baseline), one offset per orbit (median over pixels),
   per-pixel offsets (shipped), and one orbit only (kept apart; fewer acquisitions).
2. The FuseTS fields (``comparison/data/fusets_field_2019``, Castilla y León 2019): field-mean RVI of ascending
   and descending passes; offset = median ASC − DESC difference over pairs at most 3 days apart on the first half of
   the year, scored on the second half.

Usage::

    python benchmarks/bench_orbit_normalisation.py
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from udf.ingest.base import load_s1  # noqa: E402
from udf.ingest.compositing import composite_s1, regular_grid  # noqa: E402
from udf.ingest.orbits import apply_offsets, pixel_offsets, plan_orbits  # noqa: E402
from udf.ingest.sample import sample_files  # noqa: E402


def tracks_by_time_of_day(times: np.ndarray, gap_minutes: float = 3.0) -> np.ndarray:
    """Label acquisitions by clusters of their UTC time of day (one relative orbit passes at the same time)."""
    minutes = (times.astype("datetime64[s]").astype(np.int64) % 86400) / 60.0
    order = np.sort(np.unique(np.round(minutes, 1)))
    starts = order[np.concatenate([[True], np.diff(order) > gap_minutes])]
    idx = np.searchsorted(starts, minutes, side="right") - 1
    return np.array([f"{int(starts[i] // 60):02d}:{int(starts[i] % 60):02d}" for i in idx])


def roughness(db: np.ndarray) -> np.ndarray:
    """Mean |step| in dB between consecutive time steps, per band: ``(T, B, Y, X)`` → ``(B,)``."""
    return np.nanmean(np.abs(np.diff(db, axis=0)), axis=(0, 2, 3))


def worldcereal() -> list[dict]:
    """Rows of the WorldCereal table."""
    s1 = load_s1(sample_files()["s1"], s1_units="db")
    t, lin = s1["t"].values, s1.values.astype(np.float64)
    tracks = tracks_by_time_of_day(t)
    fit = t < t[0] + (t[-1] - t[0]) / 2
    plan_fit = plan_orbits(t[fit], tracks[fit])
    off = pixel_offsets(lin[fit], plan_fit)
    ev = ~fit
    plan_ev = plan_orbits(t[ev], tracks[ev])
    spread = np.nanpercentile(off[0, 0], [5, 50, 95])
    print(f"orbits {plan_fit.counts} (reference {plan_fit.reference}); per-pixel VV offset of {plan_fit.others[0]}: "
          f"5th/50th/95th percentile {spread[0]:+.2f} / {spread[1]:+.2f} / {spread[2]:+.2f} dB")
    scalar = np.broadcast_to(np.nanmedian(off, axis=(2, 3))[:, :, None, None], off.shape)
    variants = {"mixed (baseline)": (lin[ev], t[ev]),
                "one offset per orbit": (apply_offsets(lin[ev], scalar, plan_ev), t[ev]),
                "per-pixel offsets (shipped)": (apply_offsets(lin[ev], off, plan_ev), t[ev])}
    for name in sorted(set(tracks)):
        keep = ev & (tracks == name)
        variants[f"orbit {name} only"] = (lin[keep], t[keep])
    edges = {d: regular_grid(np.datetime64(str(t[ev][0])[:10]), np.datetime64(str(t[-1])[:10]) + 1, d)
             for d in (5, 10, 12)}
    rows = []
    for name, (values, times) in variants.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            row = {"variant": name, "acq": len(times), "acquisition": roughness(10 * np.log10(values))}
            for d, e in edges.items():
                comp = composite_s1(values.astype(np.float32), times, e)
                row[f"{d}D"] = roughness(10 * np.log10(comp))
                row[f"{d}D empty"] = float(np.isnan(comp[:, 0]).all(axis=(1, 2)).mean())
        rows.append(row)
    return rows


def fusets() -> list[str]:
    """Lines of the FuseTS table."""
    lines = []
    for field in ("BIDS_demo", "BIDS_workshop"):
        df = pd.read_csv(REPO / "comparison" / "data" / "fusets_field_2019" / f"{field}_mogpr_input.csv",
                         parse_dates=["date"])
        asc = df.dropna(subset=["RVI_ASC"])[["date", "RVI_ASC"]].sort_values("date")
        desc = df.dropna(subset=["RVI_DESC"])[["date", "RVI_DESC"]].sort_values("date")
        pairs = pd.merge_asof(asc, desc, on="date", direction="nearest", tolerance=pd.Timedelta("3D")).dropna()
        diff = (pairs["RVI_ASC"] - pairs["RVI_DESC"]).to_numpy()
        half = (pd.to_datetime(pairs["date"]) < pd.Timestamp("2019-07-01", tz="UTC")).to_numpy()
        offset = float(np.median(diff[half]))
        before, after = np.abs(diff[~half]).mean(), np.abs(diff[~half] - offset).mean()
        step = np.abs(np.diff(desc["RVI_DESC"].to_numpy())).mean()
        lines.append(f"| {field} | {len(pairs)} | {offset:+.3f} | {before:.3f} | {after:.3f} | {after / before:.2f} "
                     f"| {step:.3f} |")
    return lines


def main() -> None:
    """Print both tables."""
    rows = worldcereal()
    base = rows[0]
    print("\nWorldCereal 31UDS S1, scored on the second half (acquisitions after the midpoint); mean |dB step| VV / VH,"
          " ratio to mixed")
    print("| variant | acquisitions | per acquisition | 5-day | 10-day | 12-day | empty 5-day steps |\n|" + "---|" * 7)
    for r in rows:
        cells = [f"{r[k][0]:.2f} / {r[k][1]:.2f} ({r[k][0] / base[k][0]:.2f} / {r[k][1] / base[k][1]:.2f})"
                 for k in ("acquisition", "5D", "10D", "12D")]
        print(f"| {r['variant']} | {r['acq']} | " + " | ".join(cells) + f" | {r['5D empty']:.0%} |")
    print("\nFuseTS fields, RVI (field mean): ASC − DESC pairs at most 3 days apart; offset fitted on 2019-01..06, "
          "scored on 2019-07..12")
    print("| field | pairs | median offset | mean abs pair diff before | after | ratio | mean abs DESC step |\n|"
          + "---|" * 7)
    print("\n".join(fusets()))


if __name__ == "__main__":
    main()
