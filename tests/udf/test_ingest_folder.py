"""Planetary Computer / STAC downloads: per-scene COG folders, the download helper on local items, refusals."""

import json

import numpy as np
import pytest
import rasterio

from tests.udf.gee_files import CRS, TRANSFORM, Series, write_tif
from udf.errors import UnsupportedLayout
from udf.ingest.options import IngestOptions
from udf.ingest.sources import make_cube


def _s1_scene(root, stamp, vv, vh, state, rel, collection="sentinel-1-rtc", item=True):
    folder = root / f"{stamp}_{state[:4].upper().rstrip('E')}_{rel:03d}"
    for name, values in (("vv", vv), ("vh", vh)):
        arr = np.where(np.isfinite(values), values, -32768).astype(np.float32)
        write_tif(folder / f"{name}.tif", arr[None], None, nodata=-32768)
    if item:
        props = {"datetime": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z",
                 "sat:orbit_state": state, "sat:relative_orbit": rel}
        (folder / "item.json").write_text(json.dumps({"collection": collection, "properties": props}))
    return folder


def _s2_scene(root, stamp, red, nir, scl, baseline="04.00", item=True):
    folder = root / stamp
    for name, values in (("B04", red), ("B08", nir), ("SCL", scl)):
        write_tif(folder / f"{name}.tif", values[None].astype(np.uint16), None, nodata=0)
    if item:
        props = {"datetime": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T02:55:49Z", "s2:processing_baseline": baseline}
        (folder / "item.json").write_text(json.dumps({"collection": "sentinel-2-l2a", "properties": props}))
    return folder


def test_scene_folders_give_gamma0_cube_with_orbits_and_boa_offset(tmp_path):
    s = Series(nt=8, start="2022-03-01", step_days=6)
    root1, root2 = tmp_path / "sentinel-1-rtc", tmp_path / "sentinel-2-l2a"
    for i, stamp in enumerate(s.stamps()):
        state, rel = ("descending", 32) if i % 2 == 0 else ("ascending", 127)
        _s1_scene(root1, stamp, 10 ** (s.vv_db[i] / 10), 10 ** (s.vh_db[i] / 10), state, rel)
        _s2_scene(root2, stamp, s.red[i] + 1000, s.nir[i] + 1000, s.scl[i])
    cube = make_cube([root1], [root2], IngestOptions(period=None, orbit_normalisation="none"))
    assert "gamma0 RTC" in cube.attrs["s1_backscatter"] and cube.attrs["source_s1"].startswith("stac-folders")
    assert cube.attrs["s2_level"] == "L2A surface reflectance"
    np.testing.assert_allclose(cube.sel(bands="NDVI").values, s.ndvi(), atol=1e-6)
    np.testing.assert_allclose(cube.sel(bands="VV").values, 10 ** (s.vv_db / 10), rtol=1e-5)
    assert "ASC_127: 4" in cube.attrs["s1_orbits"] and "DESC_032: 4" in cube.attrs["s1_orbits"]
    normalised = make_cube([root1], [root2], IngestOptions(period=None, orbit_pair_days=7))
    assert "reference" in normalised.attrs["s1_orbits"]


def test_scene_folder_refusals(tmp_path):
    s = Series(nt=2, start="2022-03-01")
    root = tmp_path / "s2"
    _s2_scene(root, s.stamps()[0], s.red[0], s.nir[0], s.scl[0], item=False)
    with pytest.raises(UnsupportedLayout, match=r"no item.json with 's2:processing_baseline'"):
        make_cube([_s1(tmp_path, s)], [root], IngestOptions())
    grd = tmp_path / "grd"
    _s1_scene(grd, s.stamps()[0], np.ones(s.shape[1:]), np.ones(s.shape[1:]), "ascending", 1, "sentinel-1-grd")
    with pytest.raises(UnsupportedLayout, match="uncalibrated amplitude"):
        make_cube([grd], None, IngestOptions())
    broken = tmp_path / "broken"
    _s2_scene(broken, s.stamps()[0], s.red[0], s.nir[0], s.scl[0])
    (broken / s.stamps()[0] / "B08.tif").unlink()
    with pytest.raises(UnsupportedLayout, match=r"has assets \['B04', 'SCL'\] but not all of \('B04', 'B08'\)"):
        make_cube([_s1(tmp_path, s)], [broken], IngestOptions())


def _s1(tmp_path, s):
    root = tmp_path / "s1"
    if not root.exists():
        for i, stamp in enumerate(s.stamps()):
            _s1_scene(root, stamp, 10 ** (s.vv_db[i] / 10), 10 ** (s.vh_db[i] / 10), "descending", 32)
    return root


def test_download_scenes_writes_what_the_reader_reads(tmp_path):
    pystac = pytest.importorskip("pystac")
    pytest.importorskip("odc.stac")
    from pyproj import Transformer

    from udf.ingest.stac_download import download_scenes, geobox_for, group_items

    s = Series(nt=3, ny=20, nx=24, start="2021-06-01")
    west, north = TRANSFORM.c, TRANSFORM.f
    east, south = west + 24 * 50, north - 20 * 50
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon0, lat0 = to_ll.transform(west, south)
    lon1, lat1 = to_ll.transform(east, north)
    items = []
    for i, stamp in enumerate(s.stamps()):
        for half in (0, 1):  # two slices of one pass: one scene
            data = np.full((1, 20, 24), -32768, np.float32)
            rows = slice(0, 10) if half == 0 else slice(10, 20)
            data[0, rows] = 10 ** (s.vv_db[i][rows] / 10)
            href = write_tif(tmp_path / "remote" / f"{stamp}_{half}_vv.tif", data, None, nodata=-32768)
            when = np.datetime64(s.times[i], "s").astype(object)
            item = pystac.Item(f"S1_{stamp}_{half}", {"type": "Polygon", "coordinates": [[
                [lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]}, [lon0, lat0, lon1, lat1],
                when.replace(second=half), {"sat:orbit_state": "descending", "sat:relative_orbit": 32},
                collection="sentinel-1-rtc")
            item.add_asset("vv", pystac.Asset(str(href), media_type="image/tiff"))
            item.add_asset("vh", pystac.Asset(str(href), media_type="image/tiff"))
            items.append(item)
    assert len(group_items(items)) == 3
    geobox = geobox_for((lon0, lat0, lon1, lat1), CRS, 50)
    folders = download_scenes(items, ["vv", "vh"], tmp_path / "out", geobox)
    assert [f.name for f in folders] == [f"{st}_DESC_032" for st in s.stamps()]
    cube = make_cube([tmp_path / "out"], None, IngestOptions(period=None)).compute()
    with rasterio.open(folders[0] / "vv.tif") as src:
        assert src.crs.to_epsg() == 32749 and not (src.read(1) == -32768).any()  # slices fused, no-data not data
    assert json.loads((folders[0] / "item.json").read_text())["ids"] == [f"S1_{s.stamps()[0]}_0",
                                                                        f"S1_{s.stamps()[0]}_1"]
    vv = cube.sel(bands="VV").values
    inner = np.isfinite(vv)
    assert inner.mean() > 0.8
    sub = 10 ** (s.vv_db / 10)
    ys = np.round((TRANSFORM.f - cube["y"].values) / 50 - 0.5).astype(int)
    xs = np.round((cube["x"].values - TRANSFORM.c) / 50 - 0.5).astype(int)
    ok = (ys >= 0) & (ys < 20)
    okx = (xs >= 0) & (xs < 24)
    np.testing.assert_allclose(vv[:, ok][:, :, okx], sub[:, ys[ok]][:, :, xs[okx]], rtol=1e-5)
