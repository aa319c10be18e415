"""Write ``mogpr_s1_s2_sample.nc``: a small file in the openEO ``mogpr_s1_s2`` service layout, from our own MOGPR.

Not a cloud result: the values come from :func:`comparison.mogpr.fit_predict` (restart 0 only) on a 3×3-pixel
block of the embedded WorldCereal sample (RVI from linear VV/VH, NDVI from B04/B08 with SCL 4/5/6), written the way
the openEO Geotrellis backend writes the FuseTS service's output:
- variables ``RVI``, ``NDVI`` (fused means, merge order), then ``unkown_band_2``…``unkown_band_5`` (sic): FuseTS'
  "std" (normalised predictive variance × σ) of RVI and NDVI, then the raw RVI and NDVI inputs;
- ``t``: a 5-day grid from the first date, unioned with the raw dates, as int ``days since 1990-01-01``;
- dims ``(t, y, x)``, float32, a ``crs`` variable.

Run from the repository root with the project venv: ``python tests/data/mogpr_cloud/make_data.py``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import xarray as xr

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE.parent / "mogpr_reference"))

from make_data import load_sample_cube  # noqa: E402  (tests/data/mogpr_reference/make_data.py)

from comparison.mogpr import fit_predict  # noqa: E402

BLOCK = (slice(12, 15), slice(20, 23))
EPOCH = dt.date(1990, 1, 1).toordinal()


def main() -> None:
    """Fit the block, write the netCDF next to this script."""
    times, cube = load_sample_cube()
    sub = cube[:, :, BLOCK[0], BLOCK[1]]
    t_len, _, ny, nx = sub.shape
    grid = np.arange(times.min(), times.max(), 5.0)
    t_out = np.union1d(grid, times)
    values = sub.transpose(2, 3, 0, 1).reshape(ny * nx, t_len, 2)
    res = fit_predict(times, values, t_out, n_restarts=1)
    sigma = np.nanstd(values, axis=1)[:, None, :]
    fusets_std = res.std**2 / sigma  # FuseTS: normalised variance × σ
    raw = np.full((ny * nx, len(t_out), 2), np.nan)
    raw[:, np.searchsorted(t_out, times)] = values

    def band(a: np.ndarray) -> tuple[tuple[str, str, str], np.ndarray]:
        return ("t", "y", "x"), a.reshape(ny, nx, len(t_out)).transpose(2, 0, 1).astype(np.float32)

    layers = [res.mean[:, :, 0], res.mean[:, :, 1], fusets_std[:, :, 0], fusets_std[:, :, 1], raw[:, :, 0],
              raw[:, :, 1]]
    names = ["RVI", "NDVI"] + [f"unkown_band_{i}" for i in range(2, 6)]
    ds = xr.Dataset({n: band(a) for n, a in zip(names, layers)},
                    coords={"t": ("t", (t_out - EPOCH).astype(np.int32),
                                  {"units": "days since 1990-01-01", "standard_name": "t", "axis": "T"}),
                            "y": 5629680.0 - 10.0 - 20.0 * np.arange(12, 15),
                            "x": 501360.0 + 10.0 + 20.0 * np.arange(20, 23)})
    ds["crs"] = xr.DataArray(b"", attrs={"spatial_ref": "EPSG:32631"})
    ds.attrs = {"title": "mogpr_s1_s2 layout test file (made by this repository's MOGPR, not a cloud result)",
                "source": "tests/data/mogpr_cloud/make_data.py"}
    ds.to_netcdf(HERE / "mogpr_s1_s2_sample.nc", encoding={n: {"zlib": True} for n in names})


if __name__ == "__main__":
    main()
