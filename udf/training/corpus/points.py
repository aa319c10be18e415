"""Readers of WorldCereal point extractions (parquet): one row per point and period ("long") or per point ("wide").

Both hold, per point and composite period, S1 σ⁰ VV/VH as uint16 "compressed dB" (dB = 20·log10(v) − 83; 0 and 65535
no data) and S2 L2A reflectance × 10000 (65535 no data) of an already cloud-masked composite (a period without a
clear view is 65535). Points have no spatial neighbourhood; each point is its own validation group.
"""

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from udf.errors import CubeError
from udf.ingest.decode import compressed_db_to_linear, ndvi_from_reflectance
from udf.training.corpus.series import UINT16_NODATA, SeriesSet

_log = logging.getLogger(__name__)

__all__ = ["read_long_points", "read_wide_points", "wide_dates"]

_LONG_COLUMNS = ("sample_id", "timestamp", "S1-SIGMA0-VV", "S1-SIGMA0-VH", "S2-L2A-B04", "S2-L2A-B08")
_WIDE_COLUMN = re.compile(r"^(SAR|OPTICAL)-(VV|VH|B04|B08)-ts(\d+)-\d+m$")


def _read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        return pd.read_parquet(path, columns=columns)
    except ImportError as exc:
        raise ImportError("Reading parquet point tables needs pyarrow: pip install pyarrow") from exc
    except (KeyError, ValueError) as exc:
        raise CubeError(f"'{path}' does not have the columns {columns}: {exc}") from exc


def _grid_name(days: np.ndarray) -> str:
    step = float(np.nanmedian(np.diff(days, axis=-1))) if days.shape[-1] > 1 else 30.0
    return "dekad" if step < 15 else "month"


def read_long_points(path: str | Path, site: str) -> SeriesSet:
    """Read a long table (``sample_id``, ``timestamp``, S1/S2 columns) into one :class:`SeriesSet`.

    Timestamps are rounded to the nearest day (some extractions stamp a month start as 22:00 UTC of the day before);
    the time axis is the union of every point's dates, a point missing a date gets NaN there.
    """
    path = Path(path)
    df = _read_parquet(path, list(_LONG_COLUMNS))
    stamps = pd.to_datetime(df["timestamp"])
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert(None)
    df = df.assign(day=stamps.dt.round("D"))
    dates = np.sort(df["day"].unique())
    ids = np.sort(df["sample_id"].unique())
    row = pd.Index(ids).get_indexer(df["sample_id"])
    col = pd.Index(dates).get_indexer(df["day"])
    n, t = len(ids), len(dates)

    def grid(column: str, fill: float) -> np.ndarray:
        out = np.full((n, t), fill, dtype=np.float64)
        out[row, col] = df[column].to_numpy(dtype=np.float64)
        return out

    s1 = np.stack([compressed_db_to_linear(grid("S1-SIGMA0-VV", 0)), compressed_db_to_linear(grid("S1-SIGMA0-VH", 0))],
                  axis=-1)
    ndvi = ndvi_from_reflectance(grid("S2-L2A-B04", UINT16_NODATA), grid("S2-L2A-B08", UINT16_NODATA), UINT16_NODATA)
    day_numbers = (dates.astype("datetime64[D]").astype(np.int64)).astype(np.float64)
    days = np.broadcast_to(day_numbers, (n, t)).copy()
    out = SeriesSet(site=site, source=path.name, grid=_grid_name(day_numbers), days=days, s1=s1, ndvi=ndvi,
                    group=np.arange(n), attrs={"s1": "sigma0 compressed dB", "s2": "cloud-masked composite"})
    _log.info("Read %s", out.describe())
    return out


def wide_dates(start: pd.Timestamp, steps: int, grid: str) -> np.ndarray:
    """Start days of ``steps`` consecutive dekads or months from ``start`` (days since 1970-01-01)."""
    if grid == "month":
        stamps = [start + pd.DateOffset(months=k) for k in range(steps)]
    elif grid == "dekad":
        stamps, cur = [], start
        for _ in range(steps):
            stamps.append(cur)
            cur = cur + pd.Timedelta(days=10) if cur.day < 21 else (cur + pd.offsets.MonthBegin(1)).normalize()
    else:
        raise ValueError(f"Unknown grid {grid!r}; expected 'dekad' or 'month'.")
    return np.array([np.datetime64(s.date(), "D").astype(np.int64) for s in stamps], dtype=np.float64)


def read_wide_points(path: str | Path, site: str, rows: np.ndarray | None = None) -> SeriesSet:
    """Read a wide table (one row per point; ``SAR-VV-ts{N}-20m``, ``OPTICAL-B04-ts{N}-10m``, ... and ``start_date``).

    ``ts0`` is at the row's ``start_date``; the step (dekad or month) follows from ``start_date``/``end_date`` and the
    number of steps.

    Args:
        path: parquet file.
        site: site name.
        rows: boolean mask or index of the rows to keep (e.g. one latitude band), default all.
    """
    path = Path(path)
    df = _read_parquet(path)
    if rows is not None:
        df = df.iloc[np.flatnonzero(rows) if np.asarray(rows).dtype == bool else rows]
    found: dict[tuple[str, int], str] = {}
    for name in df.columns:
        m = _WIDE_COLUMN.match(str(name))
        if m:
            found[(m.group(2), int(m.group(3)))] = str(name)
    steps = 1 + max((k for _, k in found), default=-1)
    missing = [f"{b}-ts{k}" for b in ("VV", "VH", "B04", "B08") for k in range(steps) if (b, k) not in found]
    if steps < 2 or missing or "start_date" not in df:
        raise CubeError(f"'{path}' is not a wide point table: expected SAR-VV/VH-ts{{N}} and OPTICAL-B04/B08-ts{{N}} "
                        f"columns and start_date; missing {missing[:6]} (steps found: {steps}).")

    def block(band: str) -> np.ndarray:
        return df[[found[(band, k)] for k in range(steps)]].to_numpy(dtype=np.float64)

    starts = pd.to_datetime(df["start_date"]).dt.normalize()
    span = (pd.to_datetime(df["end_date"]) - starts).dt.days.median() if "end_date" in df else 30.0 * (steps - 1)
    grid = "dekad" if span / (steps - 1) < 15 else "month"
    days = np.stack([wide_dates(s, steps, grid) for s in starts])
    s1 = np.stack([compressed_db_to_linear(block("VV")), compressed_db_to_linear(block("VH"))], axis=-1)
    out = SeriesSet(site=site, source=path.name, grid=grid, days=days, s1=s1,
                    ndvi=ndvi_from_reflectance(block("B04"), block("B08"), UINT16_NODATA), group=np.arange(len(df)),
                    attrs={"s1": "sigma0 compressed dB", "s2": "cloud-masked composite"})
    _log.info("Read %s", out.describe())
    return out
