"""``aggregate_temporal_period`` labelled like cloud backends: one label per period, its start date (datetime64).

processes-dask labels periods with strings (``"2018-07"`` for a dekad numbered by day of year, month ends for
``month``), which breaks ``merge_cubes`` with other cubes and UDFs expecting dates. Periods here cover the data's
time range; a period without any acquisition is kept, all NaN, so two cubes aggregated over the same range share
the same labels.
"""

import logging
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr

from local_backend.errors import ProcessParameterInvalid

_log = logging.getLogger(__name__)

PERIODS = ("hour", "day", "week", "dekad", "month", "season", "tropical-season", "year", "decade", "decade-ad")
"""Periods of the openEO ``aggregate_temporal_period`` spec."""


def _dekad_start(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.normalize().replace(day=min(21, 1 + 10 * ((ts.day - 1) // 10)))


def _next_dekad(ts: pd.Timestamp) -> pd.Timestamp:
    if ts.day < 21:
        return ts + pd.Timedelta(days=10)
    return (ts + pd.offsets.MonthBegin(1)).normalize()


def _month_group_start(ts: pd.Timestamp, first_month: int, months: int) -> pd.Timestamp:
    offset = (ts.month - first_month) % 12
    start = ts.normalize().replace(day=1) - pd.DateOffset(months=offset % months)
    return pd.Timestamp(start)


def period_start(ts: pd.Timestamp, period: str) -> pd.Timestamp:
    """Start of the period containing ``ts``."""
    starts: dict[str, Callable[[pd.Timestamp], pd.Timestamp]] = {
        "hour": lambda t: t.floor("h"),
        "day": lambda t: t.normalize(),
        "week": lambda t: (t - pd.Timedelta(days=t.weekday())).normalize(),
        "dekad": _dekad_start,
        "month": lambda t: t.normalize().replace(day=1),
        "season": lambda t: _month_group_start(t, 12, 3),
        "tropical-season": lambda t: _month_group_start(t, 11, 6),
        "year": lambda t: pd.Timestamp(year=t.year, month=1, day=1),
        "decade": lambda t: pd.Timestamp(year=t.year - t.year % 10, month=1, day=1),
        "decade-ad": lambda t: pd.Timestamp(year=t.year - (t.year - 1) % 10, month=1, day=1),
    }
    return starts[period](ts)


def next_start(start: pd.Timestamp, period: str) -> pd.Timestamp:
    """Start of the period after the one starting at ``start``."""
    steps: dict[str, Callable[[pd.Timestamp], pd.Timestamp]] = {
        "hour": lambda t: t + pd.Timedelta(hours=1),
        "day": lambda t: t + pd.Timedelta(days=1),
        "week": lambda t: t + pd.Timedelta(days=7),
        "dekad": _next_dekad,
        "month": lambda t: t + pd.DateOffset(months=1),
        "season": lambda t: t + pd.DateOffset(months=3),
        "tropical-season": lambda t: t + pd.DateOffset(months=6),
        "year": lambda t: t + pd.DateOffset(years=1),
        "decade": lambda t: t + pd.DateOffset(years=10),
        "decade-ad": lambda t: t + pd.DateOffset(years=10),
    }
    return pd.Timestamp(steps[period](start))


def period_edges(times: np.ndarray, period: str) -> np.ndarray:
    """Period boundaries (datetime64[ns]) covering ``times``: starts of every period plus the end of the last."""
    first, last = pd.Timestamp(times.min()), pd.Timestamp(times.max())
    edges = [period_start(first, period)]
    while edges[-1] <= last:
        edges.append(next_start(edges[-1], period))
    return np.array(edges, dtype="datetime64[ns]")


def aggregate_temporal_period(data: xr.DataArray, reducer: Callable[..., Any], period: str,
                              dimension: str | None = None, context: Any = None) -> xr.DataArray:
    """Reduce every period of ``period`` along the time dimension with ``reducer``; labels are period starts."""
    dim = dimension or "t"
    if dim not in data.dims:
        raise ProcessParameterInvalid("aggregate_temporal_period", "dimension",
                                      f"'{dim}' not in the cube's dimensions {list(data.dims)}")
    if period not in PERIODS:
        raise ProcessParameterInvalid("aggregate_temporal_period", "period", f"'{period}' is not one of {PERIODS}")
    times = np.asarray(data[dim].values).astype("datetime64[ns]")
    edges = period_edges(times, period)
    index = np.searchsorted(edges, times, side="right") - 1
    axis = data.get_axis_num(dim)
    template = data.isel({dim: 0}, drop=True)
    parts = []
    for k in range(len(edges) - 1):
        members = np.flatnonzero(index == k)
        if members.size == 0:
            parts.append(xr.full_like(template, np.nan, dtype=np.float32))
            continue
        values = reducer(data.isel({dim: members}).data, axis=axis, keepdims=False,
                         positional_parameters={"data": 0}, named_parameters={"context": context})
        parts.append(template.copy(data=values))
    out = xr.concat(parts, dim=xr.Variable(dim, edges[:-1])).transpose(*data.dims)
    out.attrs = dict(data.attrs)
    _log.info("aggregate_temporal_period %s: %d acquisitions into %d periods", period, times.size, len(parts))
    return out
