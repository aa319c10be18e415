"""Readers of peer results: cloud MOGPR layout (file made by tests/data/mogpr_cloud/make_data.py) and CropSAR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from comparison import result_files as rf
from comparison.errors import BandNotFound, NoMatchingDates, UnknownResultLayout

CLOUD = Path(__file__).resolve().parents[1] / "data" / "mogpr_cloud" / "mogpr_s1_s2_sample.nc"


@pytest.fixture(scope="module")
def cloud() -> xr.DataArray:
    return rf.read_cloud_mogpr(CLOUD)


def test_cloud_bands_restored_by_order(cloud: xr.DataArray) -> None:
    assert cloud.dims == ("t", "bands", "y", "x")
    assert cloud["bands"].values.tolist() == ["RVI", "NDVI", "RVI_FUSETS_STD", "NDVI_FUSETS_STD", "RVI_RAW",
                                              "NDVI_RAW"]
    raw = xr.open_dataset(CLOUD)
    np.testing.assert_array_equal(cloud.sel(bands="NDVI_RAW").values, raw["unkown_band_5"].values)
    # Time axis: the 5-day grid from the first date is part of it, and raw NDVI exists only on raw dates.
    days = (cloud["t"].values - cloud["t"].values[0]).astype("timedelta64[D]").astype(int)
    assert set(range(0, days.max(), 5)) <= set(days.tolist())
    assert np.isfinite(cloud.sel(bands="NDVI_RAW")).any(("y", "x")).sum() < cloud.sizes["t"]


def test_cloud_names_lost_read_by_order() -> None:
    ds = xr.open_dataset(CLOUD)
    names = ["RVI", "NDVI"] + [f"unkown_band_{i}" for i in range(2, 6)]
    anon = ds.rename({v: f"band_{i}" for i, v in enumerate(names)})
    with pytest.raises(UnknownResultLayout, match=r"bands \['band_0', 'band_1'.*inputs \['RVI', 'NDVI'\]"):
        rf.read_cloud_mogpr(anon)
    cube = rf.read_cloud_mogpr(anon, by_order=True)
    assert cube["bands"].values.tolist()[:2] == ["RVI", "NDVI"]
    np.testing.assert_array_equal(cube.sel(bands="RVI_RAW").values, ds["unkown_band_4"].values)


def test_cloud_unknown_layout_lists_bands() -> None:
    ds = xr.open_dataset(CLOUD)[["RVI", "NDVI", "unkown_band_2"]]
    with pytest.raises(UnknownResultLayout, match=r"\['RVI', 'NDVI', 'unkown_band_2'\]"):
        rf.read_cloud_mogpr(ds)
    means_only = rf.read_cloud_mogpr(xr.open_dataset(CLOUD)[["RVI", "NDVI"]])
    assert means_only["bands"].values.tolist() == ["RVI", "NDVI"]


def test_fusets_std_converted_to_real_std(cloud: xr.DataArray) -> None:
    """The file's std bands are FuseTS' var·σ; converting back must give a std with var·σ = std²/σ."""
    std = rf.fusets_std_to_std(cloud, "NDVI")
    sigma = cloud.sel(bands="NDVI_RAW").std("t")
    np.testing.assert_allclose((std**2 / sigma).values, cloud.sel(bands="NDVI_FUSETS_STD").values, rtol=1e-5)
    assert float(std.min()) > 0
    with pytest.raises(BandNotFound, match=r"'LAI_FUSETS_STD'.*\['RVI', 'NDVI'"):
        rf.fusets_std_to_std(cloud, "LAI")


def test_score_only_at_matching_dates(cloud: xr.DataArray) -> None:
    pred = cloud.sel(bands="NDVI").drop_vars("bands")
    truth = cloud.sel(bands="NDVI_RAW").drop_vars("bands")
    s2_dates = truth["t"].values[np.isfinite(truth).any(("y", "x")).values]
    obs = truth.sel(t=s2_dates).copy()  # a separate series holding only the S2 dates
    obs = obs.assign_coords(t=obs["t"].values + np.timedelta64(3, "h"))  # other time of day, same calendar date
    score = rf.score_at_matching_dates(pred, obs)
    assert score["n_dates"] == len(s2_dates)
    assert score["n"] == int(np.isfinite(obs).sum())
    assert 0 < score["rmse"] < 0.1 and score["r2"] > 0.8  # MOGPR mean vs its own inputs: close, not equal
    shifted = obs.assign_coords(t=obs["t"].values + np.timedelta64(1000, "D"))
    with pytest.raises(NoMatchingDates, match="No common date"):
        rf.score_at_matching_dates(pred, shifted)


@pytest.mark.parametrize("field", ["BIDS_demo", "BIDS_workshop"])
def test_cropsar_reader(field: str) -> None:
    path = rf.FIELD_DATA / f"{field}_cropsar_ndvi.nc"
    ndvi = rf.read_cropsar(path)
    raw = xr.open_dataset(path, mask_and_scale=False)["NDVI"]
    assert raw.dtype == np.uint8 or raw.attrs.get("_Unsigned") == "true"
    dn = raw.values.astype(np.int16) % 256
    assert np.array_equal(np.isnan(ndvi.values), dn == 255) and (dn == 255).any()
    np.testing.assert_allclose(ndvi.values[dn != 255], dn[dn != 255] * 0.004 - 0.08)
    assert float(ndvi.min()) >= -0.08 and float(ndvi.max()) <= 0.94
    with pytest.raises(BandNotFound, match=r"No variable 'LAI'.*\['crs', 'NDVI'\]"):
        rf.read_cropsar(path, variable="LAI")


@pytest.mark.parametrize("field,slope", [("BIDS_demo", 0.00397), ("BIDS_workshop", 0.00392)])
def test_cropsar_scale_fits_004_on_shipped_fields(field: str, slope: float) -> None:
    s2 = xr.open_dataset(rf.FIELD_DATA / f"{field}_raw_s2_ndvi_field.nc")["NDVI"]
    got, intercept = rf.fit_cropsar_scale(rf.FIELD_DATA / f"{field}_cropsar_ndvi.nc", s2)
    assert got == pytest.approx(slope, abs=5e-5)
    assert abs(got - 0.004) < abs(got - 0.00432)
