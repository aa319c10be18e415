"""Write the embedded WorldCereal sample as local collections named like the cloud's.

* ``SENTINEL1_GRD``: VV, VH as linear power float32 per acquisition on the 20 m grid, i.e. what cloud
  ``sar_backscatter`` returns; its metadata (``s1ndvi:backscatter``) says the values are already backscatter so that
  ``sar_backscatter`` is an identity here.
* ``SENTINEL2_L2A``: B04, B08 as 0..10000 digital numbers (as the cloud serves them) and SCL, on the 10 m grid (SCL
  nearest-upsampled from 20 m).
* ``S1NDVI_SAMPLE_CUBE``: the ready model cube (VV, VH linear, NDVI) on a 10-day grid from ``udf.ingest.base``.
"""

import json
import logging
from pathlib import Path

import numpy as np
import xarray as xr

from local_backend.cubes.readers import open_source

_log = logging.getLogger(__name__)

SAMPLE_COLLECTIONS = ("SENTINEL1_GRD", "SENTINEL2_L2A", "S1NDVI_SAMPLE_CUBE")
"""Ids of the collections written by :func:`write_sample_collections`."""
S1_BACKSCATTER = {"coefficient": "sigma0-ellipsoid", "units": "linear", "elevation_model": None,
                  "mask": False, "contributing_area": False, "local_incidence_angle": False,
                  "ellipsoid_incidence_angle": False, "noise_removal": True}
"""What the sample's S1 values already are (WorldCereal/GEE sigma0, converted from dB to linear power)."""

_ATTRIBUTION = ("WorldCereal reference patch 00002806639B424A (tile 31UDS, Flanders, 2017-08 to 2018-11), "
                "embedded in udf/data/sample (see its ATTRIBUTION.md).")


def _sentinel2(files: dict[str, Path]) -> xr.DataArray:
    refl = open_source(files["s2_10m"])
    scl = open_source(files["s2_20m"])["SCL"]
    scl = scl.sel(y=refl["y"].values, x=refl["x"].values, method="nearest")
    scl = scl.reindex(t=refl["t"].values, method="nearest", tolerance=np.timedelta64(1, "h"))  # type: ignore[arg-type]
    bands = [(refl["B04"] * 1e4).round(), (refl["B08"] * 1e4).round(), scl.assign_coords(y=refl["y"], x=refl["x"])]
    cube = xr.concat(bands, dim=xr.Variable("bands", ["B04", "B08", "SCL"])).transpose("t", "bands", "y", "x")
    cube.attrs = {"crs": refl.attrs["crs"]}
    return cube.astype(np.float32).compute()


def _metadata(collection_id: str, description: str, extra: dict | None = None) -> dict:
    meta = {"id": collection_id, "title": collection_id, "description": f"{description} {_ATTRIBUTION}"}
    return {**meta, **(extra or {})}


def write_sample_collections(data_dir: Path, overwrite: bool = False) -> list[Path]:
    """Write the sample collections (netCDF, openEO layout, with JSON sidecars) into ``data_dir``.

    Args:
        data_dir: target folder (created when missing).
        overwrite: rewrite files that exist already.

    Returns:
        The netCDF files of the collections.
    """
    from udf.ingest.base import load_s1, load_sample_cube
    from udf.ingest.cube_io import write_cube
    from udf.ingest.sample import sample_files

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    files = sample_files()
    builders = {
        "SENTINEL1_GRD": (lambda: load_s1(files["s1"]),
                          "Sentinel-1 GRD backscatter (VV, VH; linear power sigma0), per acquisition, 20 m.",
                          {"s1ndvi:backscatter": S1_BACKSCATTER}),
        "SENTINEL2_L2A": (lambda: _sentinel2(files),
                          "Sentinel-2 L2A B04, B08 (digital numbers, reflectance x 1e4) and SCL, 10 m.", None),
        "S1NDVI_SAMPLE_CUBE": (lambda: load_sample_cube(period="10D"),
                               "Model cube: VV, VH (linear) and SCL-masked NDVI composited on a 10-day grid.", None),
    }
    written = []
    for collection_id, (build, description, extra) in builders.items():
        path = data_dir / f"{collection_id}.nc"
        if overwrite or not path.exists():
            cube = build()
            write_cube(cube, path)
            meta = _metadata(collection_id, description, extra)
            path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
            _log.info("Wrote sample collection %s (%s)", collection_id, dict(cube.sizes))
        written.append(path)
    return written
