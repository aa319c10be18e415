"""Collections from netCDF, zarr and GeoTIFF files, with generated or sidecar STAC metadata."""

import json
from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401 - .rio accessor to write the GeoTIFF fixtures
import xarray as xr

from local_backend.cubes.collections import LocalCollectionCatalog
from local_backend.errors import CollectionNotFound, ProcessParameterInvalid

CRS_WKT = 'PROJCS["WGS 84 / UTM zone 31N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",3],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1],AUTHORITY["EPSG","32631"]]'  # noqa: E501


def _dataset(seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    coords = {"t": np.array(["2020-01-01", "2020-01-11", "2020-01-21"], dtype="datetime64[ns]"),
              "y": 5600000.0 - 10 * np.arange(6), "x": 500000.0 + 10 * np.arange(5)}
    decoded = rng.integers(1, 1000, size=(3, 6, 5)) * 0.5
    red = decoded.copy()
    red[0, 0, 0] = np.nan
    ds = xr.Dataset({"RED": (("time", "y", "x"), red), "NIR": (("time", "y", "x"), decoded + 0.5)},
                    coords={"time": coords["t"], "y": coords["y"], "x": coords["x"]})
    for v in ("RED", "NIR"):  # stored as uint16 x 0.5 with fill 0, decoded by hand by the reader
        ds[v].encoding = {"_FillValue": np.uint16(0), "scale_factor": 0.5, "dtype": "uint16"}
    ds["spatial_ref"] = xr.DataArray(0, attrs={"crs_wkt": CRS_WKT})
    return ds


def test_netcdf_zarr_geotiff(tmp_path: Path) -> None:
    _dataset().to_netcdf(tmp_path / "CUBE_NC.nc")
    zarr_ds = _dataset()
    for v in ("RED", "NIR"):
        zarr_ds[v].encoding = {}  # float32 with NaN (zarr v3 cannot take the uint16 CF encoding in this xarray)
    zarr_ds.astype(np.float32).to_zarr(tmp_path / "CUBE_ZARR.zarr", zarr_format=2)
    tif_dir = tmp_path / "CUBE_TIF"
    tif_dir.mkdir()
    for i, day in enumerate(["2020-01-01", "2020-01-11"]):
        band = xr.DataArray(np.full((1, 6, 5), i + 1.0, dtype=np.float32), dims=("band", "y", "x"),
                            coords={"band": [1], "y": _dataset()["y"], "x": _dataset()["x"]})
        band.rio.write_crs("EPSG:32631").rio.to_raster(tif_dir / f"img_{day}.tif")
    catalog = LocalCollectionCatalog(tmp_path)
    assert set(catalog.collections) == {"CUBE_NC", "CUBE_ZARR", "CUBE_TIF"}
    for cid in ("CUBE_NC", "CUBE_ZARR"):
        meta = catalog.get_collection_metadata(cid)
        dims = meta["cube:dimensions"]
        assert sorted(dims["bands"]["values"]) == ["NIR", "RED"] and dims["x"]["reference_system"] == 32631
        assert dims["t"]["extent"] == ["2020-01-01T00:00:00Z", "2020-01-21T00:00:00Z"] and dims["x"]["step"] == 10
        cube = catalog.open_cube(cid, ["NIR"])
        values = cube.values
        assert cube.dims == ("t", "bands", "y", "x") and cube.dtype == np.float32
        assert not np.isnan(values[0, 0, 0, 0]) and values[0, 0, 1, 1] == float(_dataset()["NIR"][0, 1, 1])
    assert np.isnan(catalog.open_cube("CUBE_NC", ["RED"]).values[0, 0, 0, 0])  # fill value 0 → NaN
    cube = catalog.open_cube("CUBE_TIF")
    assert cube.sizes["t"] == 2 and float(cube.isel(t=1).mean()) == 2.0
    assert catalog.get_collection_metadata("CUBE_TIF")["cube:dimensions"]["x"]["reference_system"] == 32631


def test_sidecar_overrides_id_and_bands(tmp_path: Path) -> None:
    _dataset().to_netcdf(tmp_path / "file.nc")
    sidecar = {"id": "MY_ID", "description": "custom", "cube:dimensions": {"bands": {"values": ["NIR"]}}}
    (tmp_path / "file.json").write_text(json.dumps(sidecar))
    catalog = LocalCollectionCatalog(tmp_path)
    meta = catalog.get_collection_metadata("MY_ID")
    assert meta["description"] == "custom" and meta["cube:dimensions"]["bands"]["values"] == ["NIR"]
    with pytest.raises(CollectionNotFound, match="available collections: \\['MY_ID'\\]"):
        catalog.get("file")
    with pytest.raises(ProcessParameterInvalid, match="RED"):
        catalog.open_cube("MY_ID", ["RED"])


def test_unreadable_file_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "broken.nc").write_text("not netcdf")
    _dataset().to_netcdf(tmp_path / "ok.nc")
    assert set(LocalCollectionCatalog(tmp_path).collections) == {"ok"}
    assert "broken.nc" in caplog.text
