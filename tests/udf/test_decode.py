"""One decoder, one no-data rule per encoding: every reader of a file gets the same array (udf.ingest.decode).

Entry points: netCDF ingest (:func:`udf.ingest.base.open_bands`, float64), GeoTIFF ingest
(:func:`udf.ingest.geotiff.decode`, float32) and the backend's lazy reader (:func:`local_backend.cubes.readers.
open_source`, float32, for netCDF and GeoTIFF). Each test writes one encoding to disk and compares what they read.
"""

from pathlib import Path

import netCDF4
import numpy as np
import pytest

from local_backend.cubes.readers import open_source
from udf.ingest.base import open_bands
from udf.ingest.decode import Encoding, compressed_db_to_linear, ndvi_from_reflectance, s1_nodata
from udf.ingest.geotiff import decode, open_raster
from udf.preprocess import s1_to_linear

Y, X = 3, 4


def _netcdf(path: Path, band: str, raw: np.ndarray, dtype: str, attrs: dict, fill=None) -> Path:
    """A (t=1, y, x) netCDF file holding ``raw`` exactly as stored (no automatic encoding)."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("t", 1)
        nc.createDimension("y", Y)
        nc.createDimension("x", X)
        t = nc.createVariable("t", "i4", ("t",))
        t.units = "days since 2020-01-01"
        t[:] = [10]
        for dim, n in (("y", Y), ("x", X)):
            nc.createVariable(dim, "f8", (dim,))[:] = np.arange(n) * 10.0 + 5
        var = nc.createVariable(band, dtype, ("t", "y", "x"), fill_value=fill)
        var.set_auto_maskandscale(False)
        for key, value in attrs.items():
            var.setncattr(key, value)
        var[:] = raw.reshape(1, Y, X)
    return path


def _geotiff(path: Path, raw: np.ndarray, nodata, scale: float = 1.0, offset: float = 0.0) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=X, height=Y, count=1, dtype=raw.dtype, nodata=nodata,
                       crs="EPSG:32631", transform=from_origin(0, Y * 10, 10, 10)) as dst:
        dst.write(raw.reshape(1, Y, X))
        dst.scales, dst.offsets = (scale,), (offset,)
    return path


def _read_netcdf(path: Path, band: str, variable: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(netCDF ingest, backend lazy reader) of one band (stored as ``variable``), each as ``(y, x)``."""
    ingest = open_bands(path, (band,))[0][band].values[0]
    lazy = open_source(path)[variable or band].values[0]
    assert ingest.dtype == np.float64 and lazy.dtype == np.float32
    return ingest, lazy


def _read_geotiff(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(GeoTIFF ingest, backend lazy reader) of band 1, each as ``(y, x)``."""
    ingest = decode(open_raster(path), [0]).compute()[0]
    lazy = open_source(path)["B1"].values
    return ingest, lazy


def _same(*arrays: np.ndarray) -> None:
    """Identical after rounding to float32, NaN at the same places."""
    first = np.asarray(arrays[0], dtype=np.float32)
    for other in arrays[1:]:
        np.testing.assert_array_equal(first, np.asarray(other, dtype=np.float32))


def test_netcdf_cf_scale_offset_fill_and_missing_value(tmp_path):
    raw = np.array([-9999, -1, 0, 1, 2, 3, 100, 32767, -32768, -32767, 7, 5], dtype=np.int16)
    path = _netcdf(tmp_path / "cf.nc", "B", raw, "i2",
                   {"scale_factor": 0.01, "add_offset": 5.0, "missing_value": np.int16(-1)}, fill=np.int16(-9999))
    ingest, lazy = _read_netcdf(path, "B")
    expected = raw.astype(np.float64) * 0.01 + 5.0
    expected[(raw == -9999) | (raw == -1)] = np.nan  # declared fills only: the signed default fill -32767 is data
    np.testing.assert_array_equal(ingest.ravel(), expected)
    _same(ingest, lazy)


def test_unsigned_largest_value_is_nodata_in_netcdf_declared_or_not(tmp_path):
    """openEO exports store uint16 as int16 + _Unsigned and write 65535 undeclared: the old lazy reader kept it."""
    raw = np.array([-1, 0, 1, 1000, 32767, -32768, 12, 13, 14, 15, 16, 17], dtype=np.int16)  # -1 is 65535
    path = _netcdf(tmp_path / "u.nc", "S2-L2A-B04", raw, "i2", {"_Unsigned": "true"})
    ingest, lazy = _read_netcdf(path, "B04", "S2-L2A-B04")
    assert np.isnan(ingest.ravel()[0]) and ingest.ravel()[5] == 32768 and ingest.ravel()[1] == 0
    _same(ingest, lazy)


def test_belgium_openeo_sample_decodes_alike_in_ingest_and_backend():
    sample = Path(__file__).resolve().parents[2] / "udf/data/sample/belgium_monthly_2020/belgium_2020_monthly_100x100.nc"
    ingest = open_bands(sample, ("B04", "B08"))[0]
    lazy = open_source(sample)
    for band in ("B04", "B08"):
        got = lazy[f"S2-L2A-{band}"].values
        _same(ingest[band].values, got)
        assert np.isnan(got).sum() == 20000 and np.nanmax(got) < 20000  # 65535 (undeclared) is no-data


def test_geotiff_nodata_declared_only(tmp_path):
    raw = np.array([0, 1, 2, 65535, 400, 500, 600, 700, 800, 900, 0, 3], dtype=np.uint16)
    ingest, lazy = _read_geotiff(_geotiff(tmp_path / "n.tif", raw, nodata=0, scale=0.5, offset=1.0))
    expected = (raw * 0.5 + 1.0).astype(np.float32)
    expected[raw == 0] = np.nan  # declared; 65535 is a value in a GeoTIFF (GDAL has no default no-data)
    np.testing.assert_array_equal(ingest.ravel(), expected)
    _same(ingest, lazy)


def test_compressed_db_decodes_alike_from_netcdf_and_geotiff(tmp_path):
    raw = np.array([0, 65535, 1, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 65534], dtype=np.uint16)
    nc_ingest, nc_lazy = _read_netcdf(_netcdf(tmp_path / "db.nc", "VV", raw, "u2", {}), "VV")
    tif_ingest, tif_lazy = _read_geotiff(_geotiff(tmp_path / "db.tif", raw, nodata=None))
    _same(nc_ingest, nc_lazy)
    _same(tif_ingest, tif_lazy)
    linear = [s1_to_linear(a, "uint16_db") for a in (nc_ingest, nc_lazy, tif_ingest, tif_lazy)]
    _same(*linear, compressed_db_to_linear(raw).reshape(Y, X))
    assert np.isnan(linear[0].ravel()[:2]).all() and np.isfinite(linear[0].ravel()[2:]).all()
    assert linear[0].ravel()[3] == pytest.approx(10 ** ((20 * 3 - 83) / 10), rel=1e-6)


def test_linear_float_nan_inf_and_zero(tmp_path):
    raw = np.array([np.nan, np.inf, -np.inf, 0.0, 0.01, 0.02, 0.5, 1.0, 2.0, 1e-4, 0.3, 0.4], dtype=np.float32)
    nc_ingest, nc_lazy = _read_netcdf(_netcdf(tmp_path / "f.nc", "VH", raw, "f4", {}, fill=np.float32(np.nan)), "VH")
    tif_ingest, tif_lazy = _read_geotiff(_geotiff(tmp_path / "f.tif", raw, nodata=np.nan))
    _same(nc_ingest, nc_lazy, tif_ingest, tif_lazy)
    assert np.isnan(nc_lazy.ravel()[:3]).all() and nc_lazy.ravel()[3] == 0  # ±inf no-data; 0 is S1's rule only
    assert np.isnan(s1_nodata(nc_lazy).ravel()[:4]).all()


def test_encoding_rules_per_source():
    raw = np.array([0, 255, 7], dtype=np.uint8)
    assert np.isnan(Encoding.from_cf({}).decode(raw))[1]
    assert not np.isnan(Encoding.from_geotiff(None).decode(raw)).any()
    assert np.isnan(Encoding.from_geotiff(0).decode(raw)).tolist() == [True, False, False]
    assert Encoding.from_cf({"_FillValue": np.nan}).fills == ()
    signed = Encoding.from_cf({"_Unsigned": "true", "_FillValue": np.int16(-1)})
    assert np.isnan(signed.decode(np.array([-1, 1], dtype=np.int16))).tolist() == [True, False]


def test_ndvi_from_reflectance_keeps_precision_and_no_data():
    red = np.array([0.1, 0.0, -0.1, np.nan, 0.2, 0.3], dtype=np.float32)
    nir = np.array([0.3, 0.3, 0.3, 0.3, np.inf, 0.3], dtype=np.float32)
    out = ndvi_from_reflectance(red, nir)
    assert out.dtype == np.float32
    assert np.isnan(out[1:5]).all() and out[5] == 0
    assert out[0] == (nir[0] - red[0]) / (nir[0] + red[0])  # computed in float32
    wide = ndvi_from_reflectance(red.astype(np.float64), nir.astype(np.float64))
    r64, n64 = np.float64(red[0]), np.float64(nir[0])
    assert wide[0] == np.float32((n64 - r64) / (n64 + r64))  # computed in float64
    assert np.isnan(ndvi_from_reflectance(np.array([65535.0]), np.array([100.0]), nodata=65535)).all()


def test_period_folder_decodes_like_the_lazy_reader(tmp_path):
    """The composited reader (period GeoTIFFs) applies the same rules: declared nodata, ±inf, and 0 for S1 only."""
    import rasterio
    from rasterio.transform import from_origin

    from udf.ingest.composited import CompositedOptions, composited_cube

    rng = np.random.default_rng(0)
    folder = tmp_path / "periods"
    folder.mkdir()
    stored = []
    for k in (1, 2):
        raw = rng.uniform(0.01, 0.5, (3, Y, X)).astype(np.float32)
        raw[2] = rng.uniform(-0.2, 0.9, (Y, X))
        raw[0, 0, :3] = (-9999.0, np.inf, 0.0)
        raw[1, 1, :2] = (np.nan, 0.0)
        raw[2, 2, :2] = (-9999.0, 0.0)  # 0 is a valid NDVI
        with rasterio.open(folder / f"period_{k:02d}.tif", "w", driver="GTiff", width=X, height=Y, count=3,
                           dtype="float32", nodata=-9999.0, crs="EPSG:32631",
                           transform=from_origin(0, Y * 10, 10, 10)) as dst:
            dst.write(raw)
            dst.descriptions = ("VV", "VH", "NDVI")
        stored.append(folder / f"period_{k:02d}.tif")
    cube = composited_cube([folder], CompositedOptions(start="2020-01-01", period="10D", s1_units="linear"))
    for k, path in enumerate(stored):
        lazy = open_source(path)
        for band in ("VV", "VH"):
            _same(cube.sel(bands=band).values[k], s1_to_linear(s1_nodata(lazy[band].values), "linear"))
        _same(cube.sel(bands="NDVI").values[k], lazy["NDVI"].values)
    vv = cube.sel(bands="VV").values[0, 0]
    assert np.isnan(vv[:3]).all() and np.isfinite(vv[3])
    assert cube.sel(bands="NDVI").values[0, 2, 1] == 0 and np.isnan(cube.sel(bands="NDVI").values[0, 2, 0])
