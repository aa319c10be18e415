"""``report.md`` of ``s1ndvi run``: what was read and decided, S2 coverage, the trust report, the outputs."""

import logging
from pathlib import Path

import numpy as np
import xarray as xr

from udf.training.budget import describe_budget

__all__ = ["write_report"]

_log = logging.getLogger(__name__)

_INPUT_KEYS = ("source_s1", "source_s2", "input_variables_used", "input_variables_ignored", "input_grid_variables",
               "ingest_decisions", "s1_units_input", "s1_backscatter", "s1_orbit_normalisation", "ndvi_cloud_mask",
               "composite_period", "s1_warning", "ndvi_warning")


def _coverage_by_year(cube: xr.DataArray, starts: list[str]) -> list[str]:
    t = cube["t"].values
    ok = np.isfinite(cube.sel(bands="NDVI").values)
    lines = []
    bounds = [np.datetime64(s) for s in starts] + [np.datetime64("9999-01-01")]
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = (t >= a) & (t < b)
        if sel.any():
            lines.append(f"- farming year from {str(a)[:10]}: {int(sel.sum())} steps, {100 * ok[sel].mean():.1f} % "
                         f"of pixel-steps with S2 NDVI")
    return lines


def write_report(path: Path, opts: "object", cube: xr.DataArray, summaries: dict, cogs: list[Path],
                 maps: list[Path], runner: "object") -> Path:
    """Write the report (Markdown) and return its path."""
    s = summaries
    c = s["cube"]
    lines = ["# s1ndvi run report", "",
             f"Input: {', '.join(getattr(opts, 'inputs'))}; cube {c['sizes']} from {c['first']} to {c['last']}.", "",
             "## What was read and decided", ""]
    lines += [f"- **{k}**: {cube.attrs[k]}" for k in _INPUT_KEYS if k in cube.attrs]
    cov = c["s2"]
    years = list(s["phenology"]["years"])
    lines += ["", "## Sentinel-2 coverage", "",
              f"- {100 * cov['values_with_ndvi']:.1f} % of pixel-steps hold an S2 NDVI; "
              f"{100 * cov['pixels_with_any_ndvi']:.1f} % "
              f"of pixels have at least one; median {cov['median_ndvi_per_pixel']:.0f} observations per pixel; "
              f"{cov['steps_with_any_ndvi']} of {cov['steps']} steps have some."]
    lines += _coverage_by_year(cube, years)
    a = s["adapt"]
    lines += ["", "## Adaptation and trust", ""]
    if a.get("adapted"):
        spent = f" ({describe_budget(a['budget'])})" if "budget" in a else ""
        lines += [f"Adapted on the cube's clear pixels{spent}; weights {a['weights']}.", "", "```",
                  a["trust_report_text"], "```"]
    else:
        lines += [f"Not adapted ({a.get('reason')}); weights: {a.get('weights') or 'shipped'}. Without adaptation "
                  "there is no trust report on this cube: the shipped weights' leave-one-site-out scores apply "
                  "(README)."]
    f = s["fuse"]
    lines += ["", "## Fused NDVI", "",
              f"- NDVI defined for {100 * f['ndvi_defined']:.1f} % of pixel-steps (NaN where a pixel had no valid S1 "
              f"at all); median NDVI_STD {f['median_std']:.3f}."]
    lines += ["", "## Phenology per farming year", ""]
    for year, rec in s["phenology"]["years"].items():
        counts = ", ".join(f"{k} season(s): {v} px" for k, v in rec["pixels_by_number_of_seasons"].items()) or "none"
        lines.append(f"- from {year}: {counts}; not determined (data do not span the year): {rec['undetermined']} px")
    out = path.parent
    lines += ["", "## Outputs", "",
              "- `cube.nc` (model cube), `fused.nc` (NDVI, NDVI_STD), `phenology.nc` (SOS/POS/EOS … per year; dates "
              "in days since 1970-01-01)",
              f"- {len(cogs)} Cloud-Optimised GeoTIFFs under `cog/<farming year>/` (NDVI.tif and NDVI_STD.tif: one band "
              "per step, described by its date; SOS_k/POS_k/EOS_k.tif: days since 1970-01-01; N_SEASONS.tif)",
              *[f"- map `{m.relative_to(out)}`" for m in maps]]
    reused = getattr(runner, "reused", [])
    if reused:
        lines += ["", f"Stages reused from an earlier run: {', '.join(reused)}."]
    path.write_text("\n".join(lines) + "\n")
    _log.info("Wrote report %s", path)
    return path

