"""S1 flooding start of paddy seasons (SOS_FLOOD): found before a rice season, NaN for a dryland one."""

import numpy as np
import pytest
import xarray as xr

from udf.errors import BandNotAvailable
from udf.flooding import flood_sos
from udf.phenology import PhenologyConfig, band_names, phenology_cube

from .test_phenology import curve, day, grid, year_values

DAYS = grid("2019-11-01", "2020-10-31", 6)
SEASON = ("2020-02-01", "2020-06-01")
FLOOD = (day("2020-01-10"), day("2020-02-15"))


def s1_db(flooded: bool) -> tuple[np.ndarray, np.ndarray]:
    vv, vh = np.full(DAYS.size, -9.0), np.full(DAYS.size, -16.0)
    if flooded:
        wet = (DAYS >= FLOOD[0]) & (DAYS <= FLOOD[1])
        vv[wet], vh[wet] = -19.0, -26.0
    vv[(DAYS > day("2020-08-01")) & (DAYS < day("2020-08-20"))] = -18.0  # a short wet spell later: too short / late
    vh[(DAYS > day("2020-08-01")) & (DAYS < day("2020-08-20"))] = -25.0
    return vv, vh


def test_flooding_start_before_the_rice_season_and_nan_for_dryland():
    vv = np.stack([s1_db(True)[0], s1_db(False)[0]])
    vh = np.stack([s1_db(True)[1], s1_db(False)[1]])
    sos = np.array([[day("2020-02-20")], [day("2020-02-20")]])
    peak = np.array([[day("2020-04-01")], [day("2020-04-01")]])
    got = flood_sos(vv, vh, DAYS, sos, peak)
    first_wet = DAYS[DAYS >= FLOOD[0]][0]
    assert got[0, 0] == first_wet and np.isnan(got[1, 0])
    vv[0, DAYS >= FLOOD[0]] = np.nan  # no S1 over the flooding: no date
    assert np.isnan(flood_sos(vv, vh, DAYS, sos, peak)[0, 0])


def test_sos_flood_band_from_a_linear_s1_cube():
    ndvi = curve(DAYS, [SEASON])
    vv, vh = s1_db(True)
    values = np.stack([ndvi, 10 ** (vv / 10), 10 ** (vh / 10)], 1)[:, :, None, None]
    t = DAYS.astype(np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    cube = xr.DataArray(values, dims=("t", "bands", "y", "x"),
                        coords={"t": t, "bands": ["NDVI", "VV", "VH"], "y": [0.0], "x": [0.0]})
    out = phenology_cube(cube, PhenologyConfig(flood_sos=True))
    assert list(out["bands"].values) == band_names(3, flooding=True)
    got = year_values(out, "2019-11-01")
    assert abs(got["SOS_FLOOD_1"] - FLOOD[0]) <= 6 and got["SOS_FLOOD_1"] < got["SOS_1"]
    assert np.isnan(got["SOS_FLOOD_2"])
    with pytest.raises(BandNotAvailable, match="VH"):
        phenology_cube(cube.sel(bands=["NDVI", "VV"]), PhenologyConfig(flood_sos=True))
