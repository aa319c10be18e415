"""The openEO UDFs: Sentinel-1 VV/VH (+ sparse Sentinel-2 NDVI) to a gap-free NDVI time series, and its phenology.

The openEO UDF entries are the files at :data:`UDF_PATH` (fusion) and :data:`PHENOLOGY_UDF_PATH` (seasons per
farming year); both expose ``apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray``.

The modules at the top of this package are exactly the UDFs' runtime, listed in :data:`RUNTIME_MODULES` and
:data:`PHENOLOGY_MODULES` (what :mod:`udf.export` concatenates into the self-contained files), plus ``export``.
Tooling lives in subpackages: :mod:`udf.ingest`, :mod:`udf.training`, :mod:`udf.evaluation`, :mod:`udf.cli`.
"""

from pathlib import Path

__all__ = ["PHENOLOGY_MODULES", "PHENOLOGY_UDF_PATH", "RUNTIME_MODULES", "UDF_PATH", "UdfPath"]

RUNTIME_MODULES = ("errors", "band_info", "preprocess", "features", "masking", "model", "selfcal", "borrow", "weights",
                   "inference")
"""Modules of the fusion UDF's runtime in dependency order (the entry file :data:`UDF_PATH` comes after them)."""

PHENOLOGY_MODULES = ("errors", "band_info", "preprocess", "whittaker", "seasons", "season_uncertainty", "flooding",
                     "phenology")
"""Modules of the phenology UDF's runtime in dependency order (the entry :data:`PHENOLOGY_UDF_PATH` comes last)."""


class UdfPath(type(Path())):  # type: ignore[misc]  # the concrete Path flavour of this OS
    """A path to a UDF file that ``openeo.udf.run_code.execute_local_udf`` also accepts as the UDF itself.

    ``execute_local_udf(udf, cube)`` treats a plain ``str`` as code and reads ``udf.code``/``udf.context`` otherwise;
    this path exposes the file's text as ``code`` and an empty ``context``, so ``execute_local_udf(UDF_PATH, cube)``
    and ``openeo.UDF.from_file(UDF_PATH, context=...)`` both work. It is a real ``pathlib.Path`` in every other way.
    """

    @property
    def code(self) -> str:
        """The UDF source text."""
        return self.read_text(encoding="utf-8")

    @property
    def context(self) -> dict:
        """No context: pass one with ``openeo.UDF.from_file(UDF_PATH, context={...})``."""
        return {}


UDF_PATH: UdfPath = UdfPath(__file__).with_name("s1_ndvi_udf.py")
"""Path of the UDF entry file (send it with ``openeo.UDF.from_file(UDF_PATH)``)."""

PHENOLOGY_UDF_PATH: UdfPath = UdfPath(__file__).with_name("phenology_udf.py")
"""Path of the phenology UDF entry file (``apply_dimension(process=openeo.UDF.from_file(PHENOLOGY_UDF_PATH),
dimension="t", target_dimension="bands")``)."""
