"""Phenology of gap-filled series against phenology of the dense real S2 series (``s1ndvi compare --phenology``).

Reference: :mod:`udf.phenology` (same parameters throughout) on the scored pixels' real S2 NDVI with *every*
observation (nothing hidden, no cloud-dip screening: on the sample, single low values between two high ones are
often real harvests that the S1-only model sees too). For each protocol (default P2_60, P2_90, P3) and each method,
the same phenology of the method's gap-filled series: its mean, with its predictive std weighting the smoothing where
the method has one (DL, MOGPR), as a user would run the phenology UDF on a fused cube — restricted to the
reference's span (first to last S2 observation of the pixel), so that both sides see the same edges. The code only
sees :class:`comparison.compare.methods.Prediction` objects, so it does not depend on the particular DL model.

Seasons are matched per pixel, one to one, by the overlap of their extents (minimum to minimum; intersection over
union ≥ :data:`MATCH_OVERLAP`, greedy from the largest), then the rest by nearest peak (≤ :data:`PEAK_DAYS`).
``Gapped`` is the phenology of the protocol's gapped series as is (no fill), the bar every fill must clear. Per
protocol and method: median and 90th percentile of |ΔSOS|, |ΔPOS|, |ΔEOS| in days over matched seasons where both
dates exist, for all reference seasons and for the seasons *touched* by hidden data (a hidden observation between the
season's two minima; only there can gap filling change anything); reference seasons missed and extra seasons found;
and the share of (pixel, farming year) pairs whose season count agrees (years the reference data span; a method
without output there counts as disagreeing).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np
import xarray as xr

from comparison.compare.methods import Prediction
from udf.evaluation.protocols import Protocol
from udf.phenology import PhenologyConfig, farming_years, pixel_seasons, year_counts
from udf.preprocess import times_to_days
from udf.seasons import Seasons

_log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PROTOCOLS", "MATCH_OVERLAP", "PEAK_DAYS", "match_seasons", "phenology_scores", "phenology_section",
           "score_seasons", "series_seasons", "touched_seasons"]

DEFAULT_PROTOCOLS = ("P2_60", "P2_90", "P3")
MATCH_OVERLAP = 0.5
"""Smallest intersection over union of two seasons' extents (minimum to minimum) for them to be the same season."""
PEAK_DAYS = 45.0
"""Seasons not matched by overlap are matched by nearest peak when the peaks are at most this many days apart."""
DATES = ("SOS", "POS", "EOS")


def series_seasons(values: np.ndarray, std: Optional[np.ndarray], pixels: np.ndarray, days: np.ndarray,
                   config: PhenologyConfig, span: Optional[tuple[np.ndarray, np.ndarray]] = None
                   ) -> tuple[Seasons, np.ndarray]:
    """Seasons and per-farming-year counts ``(Y, N)`` of the ``pixels`` of a ``(t, y, x)`` series.

    Args:
        values: ``(t, y, x)`` NDVI series.
        std: ``(t, y, x)`` predictive std (weights the smoothing) or None.
        pixels: ``(y, x)`` bool, the pixels to analyse.
        days: ``(t,)`` days since 1970-01-01.
        config: phenology parameters.
        span: per selected pixel, first and last day to keep (values outside are ignored), or None.
    """
    idx = np.flatnonzero(pixels.ravel())
    nt = values.shape[0]

    def pick(a: np.ndarray) -> np.ndarray:
        out = np.asarray(a, dtype=np.float64).reshape(nt, -1)[:, idx].T
        if span is not None:
            out = np.where((days[None, :] >= span[0][:, None]) & (days[None, :] <= span[1][:, None]), out, np.nan)
        return out

    seasons = pixel_seasons(pick(values), days, None if std is None else pick(std), config)
    return seasons, year_counts(seasons, farming_years(days[0], days[-1], config.year_start), config)


def match_seasons(ref: Seasons, got: Seasons, min_overlap: float = MATCH_OVERLAP,
                  peak_days: Optional[float] = None) -> np.ndarray:
    """``(N, S_ref)`` slot of ``got`` matched to each reference season (-1: none).

    Seasons are compared by their extent (left minimum to right minimum); pairs are taken greedily by decreasing
    intersection over union, which must reach ``min_overlap``. Extents rather than peaks: on a long plateau the peak
    date of two equally good curves can be months apart while the season is the same. With ``peak_days``, the
    seasons left unmatched on both sides are then paired greedily by nearest peak day, at most ``peak_days`` apart
    (a season whose extent a spurious split or merge changed is still the same season).
    """
    out = np.full(ref.amp.shape, -1, dtype=np.int64)
    for i in range(ref.amp.shape[0]):
        r, g = np.flatnonzero(ref.present[i]), np.flatnonzero(got.present[i])
        if r.size == 0 or g.size == 0:
            continue
        a0, a1 = ref.start_day[i, r][:, None], ref.end_day[i, r][:, None]
        b0, b1 = got.start_day[i, g][None, :], got.end_day[i, g][None, :]
        inter = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None)
        iou = inter / np.maximum(np.maximum(a1, b1) - np.minimum(a0, b0), 1e-9)
        while iou.size and iou.max() >= min_overlap:
            a, b = np.unravel_index(np.argmax(iou), iou.shape)
            out[i, r[a]] = g[b]
            iou[a, :], iou[:, b] = -1.0, -1.0
        if peak_days is not None:
            _match_peaks(ref, got, i, out, peak_days)
    return out


def _match_peaks(ref: Seasons, got: Seasons, i: int, out: np.ndarray, peak_days: float) -> None:
    """Pair the unmatched seasons of row ``i`` by nearest peak (≤ ``peak_days``), in place."""
    used = set(out[i][out[i] >= 0].tolist())
    r = [s for s in np.flatnonzero(ref.present[i]) if out[i, s] < 0]
    g = [s for s in np.flatnonzero(got.present[i]) if s not in used]
    if not r or not g:
        return
    d = np.abs(ref.peak_day[i, r][:, None] - got.peak_day[i, g][None, :])
    d = np.where(np.isfinite(d), d, np.inf)
    while d.min() <= peak_days:
        a, b = np.unravel_index(np.argmin(d), d.shape)
        out[i, r[a]] = g[b]
        d[a, :], d[:, b] = np.inf, np.inf


def touched_seasons(ref: Seasons, hidden: np.ndarray, days: np.ndarray) -> np.ndarray:
    """``(N, S)`` reference seasons with a hidden observation between their two minima (``hidden`` ``(N, T)``)."""
    out = np.zeros(ref.amp.shape, dtype=bool)
    for s in range(ref.amp.shape[1]):
        lo, hi = ref.start_day[:, s, None], ref.end_day[:, s, None]
        with np.errstate(invalid="ignore"):
            out[:, s] = ref.present[:, s] & (hidden & (days[None, :] >= lo) & (days[None, :] <= hi)).any(1)
    return out


def _quantiles(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"n": 0, "median": float("nan"), "p90": float("nan")}
    return {"n": int(values.size), "median": float(np.median(values)), "p90": float(np.percentile(values, 90))}


def score_seasons(ref: Seasons, got: Seasons, ref_counts: np.ndarray, got_counts: np.ndarray,
                  touched: np.ndarray) -> dict:
    """Date errors (all and touched seasons), missed / extra seasons and season-count agreement."""
    match = match_seasons(ref, got, peak_days=PEAK_DAYS)
    rows = np.arange(ref.amp.shape[0])[:, None]
    rec: dict = {"reference_seasons": int(ref.present.sum()), "touched_seasons": int((touched & ref.present).sum()),
                 "matched": int((match >= 0).sum()), "missed": int((ref.present & (match < 0)).sum()),
                 "extra": int(got.present.sum() - (match >= 0).sum())}
    for name in DATES:
        a = getattr(ref, name.lower())
        b = np.where(match >= 0, getattr(got, name.lower())[rows, np.clip(match, 0, None)], np.nan)
        err = np.abs(b - a)
        ok = np.isfinite(err)
        rec[name] = {"all": _quantiles(err[ok]), "touched": _quantiles(err[ok & touched])}
    years = np.isfinite(ref_counts)
    agree = years & (got_counts == ref_counts)
    rec["count"] = {"pixel_years": int(years.sum()), "agree": int(agree.sum()),
                    "agreement": float(agree.sum() / years.sum()) if years.any() else float("nan"),
                    "no_output": int((years & ~np.isfinite(got_counts)).sum())}
    return rec


def phenology_scores(cube: xr.DataArray, protocols: dict[str, Protocol], predictions: dict[str, dict[str, Prediction]],
                     config: PhenologyConfig = PhenologyConfig(), names: tuple[str, ...] = DEFAULT_PROTOCOLS
                     ) -> tuple[dict, dict]:
    """Scores of every method's phenology against the reference, per protocol in ``names`` that was run.

    Returns:
        ``payload`` (JSON-ready) and ``seasons`` (``"reference"`` and protocol → method → :class:`Seasons`, with the
        scored pixel mask under ``"pixels"``) for figures.
    """
    days = times_to_days(cube["t"].values)
    pixels = np.zeros((cube.sizes["y"], cube.sizes["x"]), dtype=bool)
    for prot in protocols.values():
        pixels |= prot.hidden.any(0)
    idx = np.flatnonzero(pixels.ravel())
    truth = cube.sel(bands="NDVI").values.reshape(len(days), -1)[:, idx].T.astype(np.float64)  # (N, T)
    seen = np.isfinite(truth)
    span = (np.where(seen, days, np.inf).min(1), np.where(seen, days, -np.inf).max(1))
    ones = np.ones((idx.size, 1), dtype=bool)
    ref, ref_counts = series_seasons(truth.T, None, ones, days, config)
    payload: dict = {"config": asdict(config), "match_overlap": MATCH_OVERLAP, "pixels": int(idx.size),
                     "reference": {"seasons": int(ref.present.sum()), "pixel_years": int(np.isfinite(ref_counts).sum()),
                                   "mean_seasons_per_year": float(np.nanmean(ref_counts)) if idx.size else None,
                                   "observations": int(seen.sum())},
                     "protocols": {}}
    seasons: dict = {"reference": ref, "pixels": pixels}
    for pname in (p for p in names if p in protocols and p in predictions):
        hidden = protocols[pname].hidden.reshape(len(days), -1)[:, idx].T
        touched = touched_seasons(ref, hidden, days)
        payload["protocols"][pname], seasons[pname] = {}, {}
        gapped = Prediction(protocols[pname].apply(cube.sel(bands="NDVI").values), None, int(idx.size))
        for mname, pred in {"Gapped": gapped, **predictions[pname]}.items():
            got, counts = series_seasons(pred.mean, pred.std, pixels, days, config, span)
            payload["protocols"][pname][mname] = score_seasons(ref, got, ref_counts, counts, touched)
            seasons[pname][mname] = got
            _log.info("Phenology %s/%s: median |ΔSOS| %s d (touched)", pname, mname,
                      payload["protocols"][pname][mname]["SOS"]["touched"]["median"])
    return payload, seasons


def phenology_section(cube: xr.DataArray, protocols: dict[str, Protocol],
                      predictions: dict[str, dict[str, Prediction]], out: Path,
                      config: PhenologyConfig = PhenologyConfig(), fusets: bool = False) -> tuple[dict, str]:
    """The phenology part of a report: scores (:func:`phenology_scores`), figures in ``out`` and Markdown.

    Args:
        cube: the truth cube the protocols were drawn on (its NDVI is the reference series).
        protocols: protocol name → hidden observations.
        predictions: protocol → method → prediction, as returned by :func:`comparison.compare.evaluate.evaluate`.
        out: folder for the figures.
        config: phenology parameters (the UDF's defaults).
        fusets: also compare with FuseTS' own phenology of the BIDS_demo field (:mod:`comparison.phenology.fusets`).

    Returns:
        ``(payload, markdown)``: JSON-ready scores and the report section's body.
    """
    from comparison.phenology.report import phenology_markdown, scores_figure, seasons_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    payload, seasons = phenology_scores(cube, protocols, predictions, config)
    files = [scores_figure(payload, out / "phenology_scores.png")]
    if "P2_60" in seasons:
        files.append(seasons_figure(cube, protocols["P2_60"], predictions["P2_60"], seasons, "P2_60",
                                    out / "phenology_series.png"))
    payload["figures"] = [f.name for f in files]
    markdown = phenology_markdown(payload)
    if fusets:
        from comparison.phenology.fusets import fusets_phenology_comparison

        payload["fusets_BIDS_demo"], text = fusets_phenology_comparison(out, config)
        markdown += "\n\n" + text
    return payload, markdown
