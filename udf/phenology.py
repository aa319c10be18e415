"""Multi-season phenology per farming year from an NDVI time series (gap-filled or not), vectorised over pixels.

Method (TIMESAT-style; Jönsson & Eklundh 2004, "TIMESAT — a program for analyzing time-series of satellite sensor
data", Computers & Geosciences 30, 833–845; Eklundh & Jönsson, TIMESAT 3.3 manual):

1. **Smoothing.** Each pixel's NDVI is smoothed by a weighted Whittaker smoother on the cube's own time axis in days
   (:mod:`udf.whittaker`; regular or irregular steps, missing values weight 0). ``smoothing_days`` is the period the
   smoother halves (default 40 days: 10-day noise is damped ~17×, a 100-day crop cycle kept at 97 %). With an
   ``NDVI_STD`` band (the fusion UDF's predictive std) the weights are ``(noise_std² + q²) / (noise_std² + std²)``
   (``noise_std`` 0.01, ``q`` the pixel's 10 % quantile of its std, by default; ``noise_std`` 0 restores the
   pixel-relative ``(g / std)²``): uncertain values pull the curve less.
2. **Seasons** on a continuous time axis (days since 1970-01-01, never day of year), so a November → February crop
   is one season, and two or three crops a year are separate seasons whenever the curve drops between them (a fallow
   or a flooding dip) by at least ``min_amplitude`` and ``min_relative_amplitude`` × the pixel's NDVI range
   (:mod:`udf.seasons`). Start (SOS) and end (EOS) of season are the times the smoothed curve crosses
   ``base + sos_fraction × amplitude`` on the left and ``base + eos_fraction × amplitude`` on the right (TIMESAT's
   "seasonal amplitude" method, 20 % / 20 % by default), amplitude = peak − mean of the left and right minima; POS is
   the curve's maximum (parabolic refinement between time steps); seasons whose ``EOS − SOS`` is shorter than
   ``min_length_days`` are dropped.
3. **Honest gaps.** A season cut by the start or end of the data gets NaN SOS or EOS (never a guessed date); a season
   whose peak lies outside the data is not reported; dates read off the spline inside a data gap longer than
   ``max_gap_days`` are NaN; pixels with fewer than 4 valid values are NaN everywhere.
4. **Farming years.** Each season belongs to the farming year that contains its peak (years start on ``year_start``,
   default 1 November: a season peaking in January 2018 belongs to the year 2017-11-01). Per year and pixel the
   seasons fill slots 1…``max_seasons`` in time order (when there are more, the ``max_seasons`` largest amplitudes
   are kept). ``N_SEASONS`` counts every season peaking in the year; it is NaN where the pixel's valid data do not
   span the whole year (within ``max_gap_days`` at either end), because a count there would be a lower bound.

5. **Uncertainty** (:mod:`udf.season_uncertainty`). With ``NDVI_STD`` and ``k_sigma`` > 0, a season's amplitude and
   every rise or fall that separates two seasons must also exceed ``k_sigma`` × its std, so that a dip or bump no
   larger than the fusion's uncertainty does not make or split seasons. ``noise_std`` > 0 switches the smoothing
   weights to ``noise_std² / (noise_std² + std²)``. With ``uncertainty`` each season also gets ``CONF_k``, the
   probability (normal errors: ``NDVI_STD`` and the pixel's residual noise) that its amplitude and its delimiting
   valleys exceed the detection threshold, and ``SOS_STD_k``/``POS_STD_k``/``EOS_STD_k``, the spread of each date
   over ``uncertainty_samples`` seeded perturbations of the series within its std (time-correlated over
   ``smoothing_days``).

6. **Paddy flooding** (:mod:`udf.flooding`). With ``flood_sos`` and the cube's ``VV``/``VH`` bands, ``SOS_FLOOD_k``
   is the first day of the open-water run (both polarisations very low for ≥ 2 weeks) before each season's NDVI rise.

Output: a cube ``(t, bands, y, x)`` with one ``t`` label per farming year the input overlaps (the year's start date),
bands ``SOS_k, POS_k, EOS_k`` (days since 1970-01-01, float), ``LOS_k`` (days), ``PEAK_k`` (smoothed NDVI at POS),
``AMP_k`` for k = 1…``max_seasons``, then ``N_SEASONS`` (then the uncertainty bands, see 5.); float32, NaN where there
is no season.
"""

import logging
from dataclasses import dataclass, fields

import numpy as np
import xarray

from udf.errors import BandNotAvailable, DimensionNotAvailable, InvalidContext, InvalidValues, TooFewTimeSteps
from udf.flooding import flood_sos
from udf.preprocess import times_to_days
from udf.season_uncertainty import date_spread
from udf.seasons import MIN_OBSERVATIONS, Seasons, detect_seasons

_log = logging.getLogger(__name__)

__all__ = ["PhenologyConfig", "band_names", "check_phenology_cube", "config_bands", "farming_years", "phenology_arrays",
           "phenology_cube", "pixel_seasons", "std_weights", "year_counts"]

SLOT_METRICS = ("SOS", "POS", "EOS", "LOS", "PEAK", "AMP")
"""Per-slot output bands, in order (suffixed ``_1`` … ``_max_seasons``)."""
UNCERTAINTY_METRICS = ("CONF", "SOS_STD", "POS_STD", "EOS_STD")
"""Per-slot bands added after ``N_SEASONS`` with ``uncertainty``."""
CHUNK_PIXELS = 65536
"""Pixels processed at once (memory is bounded by this, not by the cube)."""
_STD_CLIP = (0.01, 100.0)


@dataclass(frozen=True)
class PhenologyConfig:
    """Parameters of the phenology extraction (the UDF's context keys have the same names)."""

    year_start: str = "11-01"
    """Month and day (``MM-DD``) on which a farming year starts."""
    max_seasons: int = 3
    """Season slots per farming year."""
    min_amplitude: float = 0.1
    """NDVI rise and fall that separate two seasons; the smallest season amplitude reported."""
    min_relative_amplitude: float = 0.25
    """The same as a fraction of the range of the pixel's smoothed curve (the larger of the two applies)."""
    min_length_days: float = 30.0
    """Seasons with EOS − SOS shorter than this are dropped."""
    sos_fraction: float = 0.2
    """Start of season: left base + this fraction of the amplitude."""
    eos_fraction: float = 0.2
    """End of season: right base + this fraction of the amplitude."""
    smoothing_days: float = 40.0
    """Period (days) that the Whittaker smoother halves."""
    max_gap_days: float = 60.0
    """Dates inside data gaps longer than this are NaN."""
    noise_std: float = 0.01
    """With ``NDVI_STD``: smoothing weights ``noise_std² / (noise_std² + std²)`` (a value as uncertain as
    ``noise_std`` weighs half); 0: the pixel-relative weights ``(g / std)²`` of earlier versions. 0.01 was chosen
    leave-one-site-out on three dense sites (docs/phenology.md): relative weights let the fused series' wiggles
    through and found 6–10× more false seasons."""
    std_floor_quantile: float = 0.1
    """With ``noise_std``: weights ``(noise_std² + q²) / (noise_std² + std²)``, ``q`` this quantile of each pixel's
    ``NDVI_STD`` (0: absolute weights). A uniformly uncertain series (e.g. S1 only) is then smoothed like a certain
    one: with absolute weights a uniform std of 0.05 widened a 120-day season by 8–10 days at each end."""
    k_sigma: float = 0.0
    """With ``NDVI_STD``: a season's amplitude and the dips that separate seasons must exceed ``k_sigma`` × their std
    (0: off; chosen leave-one-site-out among 0, 0.5, 1, 2: larger values lost more true seasons than false ones)."""
    uncertainty: bool = False
    """Also output ``CONF_k`` (season confidence) and ``SOS_STD_k``, ``POS_STD_k``, ``EOS_STD_k`` (days)."""
    uncertainty_samples: int = 16
    """Perturbed series per pixel for the date stds (the cost grows linearly; :mod:`udf.season_uncertainty`)."""
    seed: int = 0
    """Seed of the perturbations."""
    flood_sos: bool = False
    """Also output ``SOS_FLOOD_k``: the start of the flooding before each season (paddy rice) from the cube's
    ``VV``/``VH`` bands (dB or linear), NaN where no flooding precedes it (:mod:`udf.flooding`)."""

    def __post_init__(self) -> None:
        _month_day(self.year_start)
        if not isinstance(self.max_seasons, int) or isinstance(self.max_seasons, bool) or self.max_seasons < 1:
            raise InvalidContext(f"'max_seasons'={self.max_seasons!r}; expected a positive integer.")
        for name in ("min_amplitude", "smoothing_days", "max_gap_days", "min_length_days", "noise_std", "k_sigma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) \
                    or value < 0 or (value == 0 and name not in ("min_length_days", "noise_std", "k_sigma")):
                raise InvalidContext(f"'{name}'={value!r}; expected a positive number.")
        for name in ("uncertainty", "flood_sos"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidContext(f"'{name}'={getattr(self, name)!r}; expected true or false.")
        for name, low in (("uncertainty_samples", 2), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidContext(f"'{name}'={value!r}; expected an integer ≥ {low}.")
        if isinstance(self.std_floor_quantile, bool) or not isinstance(self.std_floor_quantile, (int, float)) \
                or not 0 <= self.std_floor_quantile <= 1:
            raise InvalidContext(f"'std_floor_quantile'={self.std_floor_quantile!r}; expected a number in [0, 1].")
        for name in ("sos_fraction", "eos_fraction", "min_relative_amplitude"):
            value, low = getattr(self, name), (0 if name == "min_relative_amplitude" else 1e-9)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < 1:
                raise InvalidContext(f"'{name}'={value!r}; expected a number in [{low:g}, 1).")

    @classmethod
    def from_context(cls, context: dict | None) -> "PhenologyConfig":
        """Build from a UDF context; unknown keys raise :class:`InvalidContext` listing the known ones."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(context or {}) - set(known))
        if unknown:
            raise InvalidContext(f"Unknown phenology context key(s) {unknown}; known keys: {known}.")
        return cls(**dict(context or {}))


def _month_day(text: str) -> tuple[int, int]:
    try:
        month, day = (int(p) for p in str(text).split("-"))
        np.datetime64(f"2001-{month:02d}-{day:02d}")
    except ValueError as exc:
        raise InvalidContext(f"'year_start'={text!r}; expected a month and day 'MM-DD' (not 02-29), e.g. '11-01'.") \
            from exc
    return month, day


def band_names(max_seasons: int, uncertainty: bool = False, flooding: bool = False) -> list[str]:
    """Output band names: ``SOS_1, POS_1, EOS_1, LOS_1, PEAK_1, AMP_1, …, N_SEASONS``.

    With ``uncertainty``, then ``CONF_1, SOS_STD_1, POS_STD_1, EOS_STD_1, CONF_2, …``; with ``flooding``, then
    ``SOS_FLOOD_1, …``.
    """
    out = [f"{m}_{k}" for k in range(1, max_seasons + 1) for m in SLOT_METRICS] + ["N_SEASONS"]
    if uncertainty:
        out += [f"{m}_{k}" for k in range(1, max_seasons + 1) for m in UNCERTAINTY_METRICS]
    if flooding:
        out += [f"SOS_FLOOD_{k}" for k in range(1, max_seasons + 1)]
    return out


def config_bands(config: "PhenologyConfig") -> list[str]:
    """Output band names of a configuration."""
    return band_names(config.max_seasons, config.uncertainty, config.flood_sos)


def farming_years(first_day: float, last_day: float, year_start: str) -> np.ndarray:
    """Start days (days since 1970-01-01) of every farming year overlapping ``[first_day, last_day]``."""
    month, day = _month_day(year_start)
    first = np.datetime64(int(np.floor(first_day)), "D")
    year = int(str(first)[:4]) - 1
    starts = []
    while True:
        start = np.datetime64(f"{year:04d}-{month:02d}-{day:02d}").astype(np.int64)
        nxt = np.datetime64(f"{year + 1:04d}-{month:02d}-{day:02d}").astype(np.int64)
        if start > last_day:
            break
        if nxt > first_day:
            starts.append(start)
        year += 1
    return np.asarray(starts, dtype=np.float64)


def std_weights(std: np.ndarray | None, noise_std: float = 0.0, floor_quantile: float = 0.0) -> np.ndarray | None:
    """Smoothing weights from a predictive std; 1 where the std is missing.

    With ``noise_std`` > 0: ``(noise_std² + q²) / (noise_std² + std²)``, ``q`` the row's ``floor_quantile``
    quantile of its std (0 when ``floor_quantile`` is 0: absolute weights, a std equal to ``noise_std`` halves a
    value's weight; with a quantile, a row's best-known values keep weight ≈ 1, so a uniformly uncertain series is
    not smoothed harder than a certain one). Otherwise ``(g / std)²`` per pixel row, clipped to [0.01, 100], ``g``
    the row's geometric-mean std (robust to a few huge values).
    """
    if std is None:
        return None
    if noise_std > 0:
        sd = np.asarray(std, dtype=np.float64)
        floor: float | np.ndarray = 0.0
        if floor_quantile > 0:  # the row's quantile of its positive stds (lower order statistic), 0 without any
            ok = np.isfinite(sd) & (sd > 0)
            ranked = np.sort(np.where(ok, sd, np.inf), axis=1)
            k = np.floor(floor_quantile * np.maximum(ok.sum(1) - 1, 0)).astype(np.int64)
            floor = np.take_along_axis(ranked, k[:, None], 1)
            floor = np.where(np.isfinite(floor), floor, 0.0)
        with np.errstate(invalid="ignore"):
            w = np.minimum((noise_std ** 2 + floor ** 2) / (noise_std ** 2 + sd ** 2), 1.0)
        return np.where(np.isfinite(w), w, 1.0)
    ok = np.isfinite(std) & (std > 0)
    log_std = np.log(np.where(ok, std, 1.0), dtype=np.float64)
    with np.errstate(all="ignore"):
        mean = np.where(ok, log_std, 0.0).sum(1, keepdims=True) / ok.sum(1, keepdims=True)
        w = np.clip(np.exp(2.0 * (mean - log_std)), *_STD_CLIP)
    w = np.where(ok, w, np.nan)
    return np.where(np.isfinite(w), w, 1.0)


def _slot_years(seasons_day: np.ndarray, amp: np.ndarray, year: tuple[float, float], max_seasons: int
                ) -> np.ndarray:
    """Slot ``(N, S)`` of each season peaking in ``year`` = [start, end); -1 for the others.

    When more than ``max_seasons`` seasons peak in the year, the largest amplitudes are kept, in time order.
    """
    with np.errstate(invalid="ignore"):
        inside = (seasons_day >= year[0]) & (seasons_day < year[1]) & np.isfinite(amp)
    order = np.argsort(np.where(inside, -amp, np.inf), axis=1, kind="stable")
    keep = np.zeros_like(inside)
    rows = np.arange(inside.shape[0])[:, None]
    keep[rows, order[:, :max_seasons]] = True
    keep &= inside
    return np.where(keep, np.cumsum(keep, axis=1) - 1, -1)


def _fill_years(seasons: Seasons, starts: np.ndarray, cfg: PhenologyConfig,
                flood: np.ndarray | None = None) -> np.ndarray:
    """``(Y, B, N)`` output bands for one chunk of pixels."""
    n, m = seasons.amp.shape[0], cfg.max_seasons
    out = np.full((len(starts), len(config_bands(cfg)), n), np.nan, dtype=np.float32)
    per = {"SOS": seasons.sos, "POS": seasons.pos, "EOS": seasons.eos, "LOS": seasons.eos - seasons.sos,
           "PEAK": seasons.peak, "AMP": seasons.amp}
    extra = {"CONF": seasons.confidence, "SOS_STD": seasons.sos_std, "POS_STD": seasons.pos_std,
             "EOS_STD": seasons.eos_std} if cfg.uncertainty else {}
    n_slot, n_extra, first_extra = len(SLOT_METRICS), len(UNCERTAINTY_METRICS), len(SLOT_METRICS) * m + 1
    first_flood = first_extra + (n_extra * m if cfg.uncertainty else 0)
    rows = np.arange(n)
    for y, start in enumerate(starts):
        slot = _slot_years(seasons.peak_day, seasons.amp, (start, _next_year(start, cfg.year_start)), m)
        for s in range(slot.shape[1]):
            has = slot[:, s] >= 0
            for j, name in enumerate(SLOT_METRICS):
                out[y, slot[has, s] * n_slot + j, rows[has]] = per[name][has, s]
            for j, name in enumerate(extra):
                out[y, first_extra + slot[has, s] * n_extra + j, rows[has]] = extra[name][has, s]
            if flood is not None:
                out[y, first_flood + slot[has, s], rows[has]] = flood[has, s]
    out[:, first_extra - 1] = year_counts(seasons, starts, cfg)
    return out


def year_counts(seasons: Seasons, starts: np.ndarray, cfg: PhenologyConfig) -> np.ndarray:
    """``N_SEASONS`` ``(Y, N)``: the number of seasons peaking in each farming year.

    NaN where the pixel's valid data do not span the year (within ``max_gap_days`` at either end).
    """
    out = np.full((len(starts), seasons.amp.shape[0]), np.nan)
    for y, start in enumerate(starts):
        end = _next_year(start, cfg.year_start)
        with np.errstate(invalid="ignore"):
            inside = (seasons.peak_day >= start) & (seasons.peak_day < end) & np.isfinite(seasons.amp)
            covered = (seasons.first_day <= start + cfg.max_gap_days) & (seasons.last_day >= end - cfg.max_gap_days)
        out[y] = np.where(covered, inside.sum(1), np.nan)
    return out


def _next_year(start: float, year_start: str) -> float:
    year = int(str(np.datetime64(int(start), "D"))[:4]) + 1
    month, day = _month_day(year_start)
    return float(np.datetime64(f"{year:04d}-{month:02d}-{day:02d}").astype(np.int64))


def phenology_arrays(ndvi: np.ndarray, days: np.ndarray, std: np.ndarray | None = None,
                     config: PhenologyConfig = PhenologyConfig(),
                     s1_db: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Phenology of ``N`` pixel series.

    Args:
        ndvi: ``(N, T)`` NDVI, NaN missing.
        days: ``(T,)`` strictly increasing days since 1970-01-01.
        std: ``(N, T)`` predictive std of the NDVI (weights the smoothing), or None.
        config: parameters.
        s1_db: ``(VV, VH)`` ``(N, T)`` backscatter in dB, needed with ``config.flood_sos``.

    Returns:
        ``(year starts (Y,) in days since 1970-01-01, values (Y, B, N) float32)`` with bands :func:`band_names`.
    """
    days = np.asarray(days, dtype=np.float64)
    starts = farming_years(days[0], days[-1], config.year_start)
    if config.flood_sos and s1_db is None:
        raise BandNotAvailable("'flood_sos' needs the cube's 'VV' and 'VH' bands (S1 backscatter).")
    out = np.empty((len(starts), len(config_bands(config)), ndvi.shape[0]), dtype=np.float32)
    for lo in range(0, ndvi.shape[0], CHUNK_PIXELS):
        part = slice(lo, lo + CHUNK_PIXELS)
        seasons = pixel_seasons(ndvi[part], days, None if std is None else std[part], config)
        flood = None
        if config.flood_sos and s1_db is not None:
            flood = flood_sos(s1_db[0][part], s1_db[1][part], days, seasons.sos, seasons.peak_day)
        out[:, :, part] = _fill_years(seasons, starts, config, flood)
    return starts, out


def pixel_seasons(ndvi: np.ndarray, days: np.ndarray, std: np.ndarray | None = None,
                  config: PhenologyConfig = PhenologyConfig()) -> Seasons:
    """All seasons of ``N`` pixel series ``(N, T)`` over the whole time axis (before the farming-year split).

    With ``config.uncertainty`` the seasons' ``sos_std``, ``pos_std``, ``eos_std`` are filled
    (:func:`udf.season_uncertainty.date_spread`).
    """
    params = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in _NOT_DETECTION}
    weights = std_weights(std, config.noise_std, config.std_floor_quantile)
    seasons = detect_seasons(ndvi, days, weights, sigma=std, k_sigma=config.k_sigma, **params)
    if config.uncertainty:
        spread = date_spread(np.asarray(ndvi, dtype=np.float64), np.asarray(days, dtype=np.float64), seasons, std,
                             weights, {**params, "sigma": std, "k_sigma": config.k_sigma},
                             config.uncertainty_samples, config.seed, corr_days=config.smoothing_days)
        seasons.sos_std, seasons.pos_std, seasons.eos_std = spread
    return seasons


_NOT_DETECTION = ("year_start", "max_seasons", "noise_std", "std_floor_quantile", "k_sigma", "uncertainty",
                  "uncertainty_samples", "seed", "flood_sos")


def _as_db(values: np.ndarray, band: str) -> np.ndarray:
    """S1 backscatter in dB: values that are all in [0, 10] are linear power and converted; dB is kept."""
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() >= 0 and finite.max() <= 10:
        with np.errstate(divide="ignore", invalid="ignore"):
            return 10.0 * np.log10(np.where(values > 0, values, np.nan))
    if finite.size and (finite.max() > 30 or finite.min() < -60):
        raise InvalidValues(f"Band '{band}' ranges {finite.min():.3g}…{finite.max():.3g}: expected S1 backscatter in "
                            "dB (about −40…10) or linear power (0…10).")
    return values


def check_phenology_cube(cube: xarray.DataArray) -> xarray.DataArray:
    """Check a phenology input cube and return it as ``(t, bands, y, x)``, sorted by ``t``.

    Raises:
        DimensionNotAvailable: a dim of ``t``, ``bands``, ``y``, ``x`` is missing, or another one is present.
        BandNotAvailable: no ``NDVI`` band.
        TooFewTimeSteps: fewer than 4 time labels.
        InvalidValues: ``t`` labels that are not dates or repeat, NDVI outside [-1, 1].
    """
    if "time" in cube.dims and "t" not in cube.dims:
        cube = cube.rename({"time": "t"})
    want = ("t", "bands", "y", "x")
    missing, extra = [d for d in want if d not in cube.dims], [d for d in cube.dims if d not in want]
    if missing or extra:
        raise DimensionNotAvailable(f"Phenology needs a cube with dims {want}; got {tuple(cube.dims)} (missing "
                                    f"{missing}, unexpected {extra}).")
    bands = [str(b) for b in cube["bands"].values] if "bands" in cube.coords else []
    if "NDVI" not in bands:
        raise BandNotAvailable(f"Phenology needs an 'NDVI' band (optionally 'NDVI_STD'); the cube has bands {bands}.")
    if cube.sizes["t"] < MIN_OBSERVATIONS:
        raise TooFewTimeSteps(f"The cube has {cube.sizes['t']} time step(s) along 't'; phenology needs at least "
                              f"{MIN_OBSERVATIONS} (a season has a rise, a peak and a fall).")
    days = times_to_days(cube["t"].values)
    if np.unique(days).size != days.size:
        raise InvalidValues("Labels of dimension 't' repeat; each date must appear once.")
    cube = cube.isel(t=np.argsort(days, kind="stable")).transpose(*want)
    ndvi = cube.sel(bands="NDVI").values
    bad = np.isfinite(ndvi) & (np.abs(ndvi) > 1.0 + 1e-6)
    if bad.any():
        raise InvalidValues(f"Band 'NDVI' has {int(bad.sum())} value(s) outside [-1, 1] (e.g. {ndvi[bad][0]:.3g}): "
                            "scaled NDVI (e.g. 0–255 or 0–10000) must be converted to NDVI first.")
    return cube


def phenology_cube(cube: xarray.DataArray, config: PhenologyConfig = PhenologyConfig()) -> xarray.DataArray:
    """Phenology of every pixel of a cube ``(t, bands[NDVI (, NDVI_STD)], y, x)`` (other bands are ignored).

    Returns:
        float32 cube ``(t, bands, y, x)``: one ``t`` label per farming year the input overlaps (its start date),
        bands :func:`band_names`, the input's ``y``/``x`` labels and ``crs`` attribute.
    """
    cube = check_phenology_cube(cube)
    days = times_to_days(cube["t"].values)
    ny, nx, nt = cube.sizes["y"], cube.sizes["x"], cube.sizes["t"]

    def series(band: str) -> np.ndarray:  # the cube's float dtype: chunks become float64 one at a time
        values = cube.sel(bands=band).transpose("y", "x", "t").values
        return values.reshape(-1, nt) if values.dtype.kind == "f" else values.astype(np.float64).reshape(-1, nt)

    names = [str(b) for b in cube["bands"].values]
    std = series("NDVI_STD") if "NDVI_STD" in names else None
    s1_db = None
    if config.flood_sos:
        missing = [b for b in ("VV", "VH") if b not in names]
        if missing:
            raise BandNotAvailable(f"'flood_sos' needs bands 'VV' and 'VH' (S1 backscatter); the cube lacks {missing} "
                                   f"(bands {names}).")
        s1_db = (_as_db(series("VV"), "VV"), _as_db(series("VH"), "VH"))
    starts, values = phenology_arrays(series("NDVI"), days, std, config, s1_db)
    _log.info("Phenology of %d pixels × %d steps: %d farming year(s) from %s", ny * nx, nt, len(starts),
              str(np.datetime64(int(starts[0]), "D")) if len(starts) else "-")
    labels = (starts.astype(np.int64).astype("datetime64[D]")).astype("datetime64[ns]")
    attrs = {k: v for k, v in cube.attrs.items() if k == "crs"}
    attrs.update(phenology_dates="days since 1970-01-01", phenology_year_start=config.year_start)
    return xarray.DataArray(values.reshape(len(starts), -1, ny, nx), dims=("t", "bands", "y", "x"),
                            coords={"t": labels, "bands": config_bands(config),
                                    "y": cube["y"].values,
                                    "x": cube["x"].values}, attrs=attrs)
