"""Small GeoTIFFs in the layouts ``s1ndvi cube`` reads, written in the tests (synthetic values, real encodings)."""

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

CRS = "EPSG:32749"
TRANSFORM = from_origin(440000.0, 9240000.0, 50.0, 50.0)


def write_tif(path: Path, data: np.ndarray, names: list[str] | None, nodata: float | None = None,
              transform=TRANSFORM, crs: str = CRS, tiled: bool = False) -> Path:
    """Write ``data`` ``(bands, y, x)`` as a pixel-interleaved GeoTIFF with band descriptions ``names``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1], "width": data.shape[2],
               "dtype": data.dtype, "crs": crs, "transform": transform, "nodata": nodata, "interleave": "pixel",
               "compress": "deflate"}
    if tiled:
        profile.update(tiled=True, blockxsize=16, blockysize=16)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(names or []):
            dst.set_band_description(i + 1, name)
    return path


class Series:
    """A seeded S1/S2 series on a small grid: dB backscatter, reflectance x 10000, SCL with clouds."""

    def __init__(self, nt: int = 6, ny: int = 20, nx: int = 24, seed: int = 0, start: str = "2019-11-01",
                 step_days: int = 12, cloud: float = 0.3):
        rng = np.random.default_rng(seed)
        self.shape = (nt, ny, nx)
        self.times = np.datetime64(start, "s") + np.arange(nt) * np.timedelta64(step_days, "D")
        self.vv_db = rng.uniform(-18, -6, self.shape).astype(np.float32)
        self.vh_db = (self.vv_db - rng.uniform(5, 9, self.shape)).astype(np.float32)
        self.red = rng.integers(300, 1500, self.shape).astype(np.uint16)
        self.nir = (self.red + rng.integers(100, 4000, self.shape)).astype(np.uint16)
        self.scl = np.where(rng.random(self.shape) < cloud, 9, 4).astype(np.uint16)
        self.scl[:, :2, :2] = 8

    def ndvi(self) -> np.ndarray:
        """NDVI from the reflectance, NaN where SCL is not 4/5/6."""
        r, n = self.red.astype(np.float64), self.nir.astype(np.float64)
        out = (n - r) / (n + r)
        out[~np.isin(self.scl, (4, 5, 6))] = np.nan
        return out.astype(np.float32)

    def stamps(self) -> list[str]:
        """``YYYYMMDDTHHMMSS`` of each time step."""
        return [str(t).replace("-", "").replace(":", "")[:15] for t in self.times]


def s1_id(stamp: str, absolute_orbit: int, mission: str = "S1A") -> str:
    """A Sentinel-1 GRD product id as Earth Engine's system:index."""
    return f"{mission}_IW_GRDH_1SDV_{stamp}_{stamp[:9]}{int(stamp[9:]) + 25:06d}_{absolute_orbit:06d}_03A1B2_C3D4"


def s2_id(stamp: str, tile: str = "T49MDV") -> str:
    """A Sentinel-2 system:index."""
    return f"{stamp}_{stamp[:9]}{int(stamp[9:]) + 2:06d}_{tile}"


def tobands_s1(path: Path, s: Series, ids: list[str], units: str = "db") -> Path:
    """``toBands()`` of an S1 collection: ``<id>_VV``, ``<id>_VH`` per image, float32 dB or linear."""
    vv, vh = (s.vv_db, s.vh_db) if units == "db" else (10 ** (s.vv_db / 10), 10 ** (s.vh_db / 10))
    data = np.stack([x for i in range(len(ids)) for x in (vv[i], vh[i])]).astype(np.float32)
    return write_tif(path, data, [f"{k}_{b}" for k in ids for b in ("VV", "VH")])


def tobands_s2(path: Path, s: Series, ids: list[str], mask_name: str = "SCL", mask: np.ndarray | None = None) -> Path:
    """``toBands()`` of an S2 collection: ``<id>_B4``, ``<id>_B8``, ``<id>_<mask>`` per image, uint16."""
    m = s.scl if mask is None else mask
    data = np.stack([x for i in range(len(ids)) for x in (s.red[i], s.nir[i], m[i])]).astype(np.uint16)
    return write_tif(path, data, [f"{k}_{b}" for k in ids for b in ("B4", "B8", mask_name)], nodata=0)
