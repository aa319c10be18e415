"""Generate the published UDP JSONs ``s1ndvi_fusion.json`` and ``s1ndvi_phenology.json`` with the stock openeo client.

Like the APEx examples (``max_ndvi``, ``mogpr_s1s2``): the process graph is built with ``openeo`` without a backend
connection, its inputs are ``openeo.api.process.Parameter`` s, and ``build_process_dict`` writes the openEO process
definition. The self-contained UDFs (``udf.export``: runtime modules, default weights embedded, PEP 723 dependency
block at the top) are embedded in the graph, so the JSON alone is the whole algorithm.

Parameters mirror ``mogpr_s1s2`` where they mean the same (``spatial_extent``, ``temporal_extent``, the collections
to read as ``s1_collection``/``s2_collection``; mogpr_s1s2 takes an index name there, this process a collection id)
plus this project's ``weights``, ``include_uncertainty`` and ``self_calibration`` (the fusion UDF's context keys).

Usage: ``python -m openeo_udp.generate`` rewrites both files next to this script (run it after a UDF or weights
change; ``tests/openeo_udp/test_udp_files.py`` fails while they are stale).
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import openeo
from openeo.api.process import Parameter
from openeo.internal.graph_building import PGNode
from openeo.rest.datacube import THIS, DataCube
from openeo.rest.udp import build_process_dict

_log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CLEAR_SCL = (4, 5, 6)
"""Sentinel-2 scene classes kept (vegetation, bare soil, water)."""
TILE_PX, OVERLAP_PX = 128, 8
"""Spatial block and overlap (pixels) of the fusion UDF's ``apply_neighborhood``."""
DEPENDENCIES = ["numpy", "xarray", "torch>=2.2"]
"""Python packages the fusion UDF imports (also in its PEP 723 block); the phenology UDF needs numpy and xarray."""


def parameters() -> list[Parameter]:
    """The UDP's parameters, in order."""
    return [
        Parameter.spatial_extent(name="spatial_extent"),
        Parameter.temporal_interval(name="temporal_extent"),
        Parameter.string(name="s1_collection", default="SENTINEL1_GRD",
                         description="Sentinel-1 GRD collection with bands VV and VH (sigma0 computed by "
                                     "sar_backscatter)."),
        Parameter.string(name="s2_collection", default="SENTINEL2_L2A",
                         description="Sentinel-2 L2A collection with bands B04, B08 and SCL."),
        Parameter(name="weights", schema={"type": ["string", "null"]}, default=None,
                  description="Path, on the backend, of a model checkpoint (.npz); null: the weights embedded in "
                              "the UDF."),
        Parameter.boolean(name="include_uncertainty", default=False,
                          description="Add the band NDVI_STD (predictive standard deviation) to NDVI."),
        Parameter.boolean(name="self_calibration", default=True,
                          description="Calibrate trust weights, gap map and std on the cube's own cloud-free NDVI."),
    ]


def _context() -> dict[str, Any]:
    return {"weights": {"from_parameter": "weights"},
            "include_uncertainty": {"from_parameter": "include_uncertainty"},
            "self_calibration": {"from_parameter": "self_calibration"}}


def fusion_cube(params: dict[str, Parameter]) -> DataCube:
    """S1 sigma0 dekad means + cloud-masked S2 NDVI dekad maxima on the S1 grid → fusion UDF (NDVI [+ NDVI_STD])."""
    from udf.export import build_udf_source
    from udf.weights import default_checkpoint_bytes

    extent, period = params["spatial_extent"], params["temporal_extent"]
    s1 = DataCube.load_collection(params["s1_collection"], connection=None, spatial_extent=extent,
                                  temporal_extent=period, bands=["VV", "VH"], fetch_metadata=False)
    s1 = s1.sar_backscatter(coefficient="sigma0-ellipsoid")
    s1 = s1.aggregate_temporal_period(period="dekad", reducer="mean")
    s2 = DataCube.load_collection(params["s2_collection"], connection=None, spatial_extent=extent,
                                  temporal_extent=period, bands=["B04", "B08", "SCL"], fetch_metadata=False)
    scl = s2.band("SCL")
    cloudy = (scl != CLEAR_SCL[0]) & (scl != CLEAR_SCL[1]) & (scl != CLEAR_SCL[2])
    ndvi = s2.ndvi(nir="B08", red="B04", target_band="NDVI").filter_bands(["NDVI"]).mask(cloudy)
    ndvi = ndvi.aggregate_temporal_period(period="dekad", reducer="max")
    ndvi = ndvi.resample_cube_spatial(target=s1, method="average")
    udf = openeo.UDF(build_udf_source(default_checkpoint_bytes()), runtime="Python", context=_context())
    return s1.merge_cubes(ndvi).apply_neighborhood(
        process=udf,
        size=[{"dimension": "x", "value": TILE_PX, "unit": "px"}, {"dimension": "y", "value": TILE_PX, "unit": "px"},
              {"dimension": "t", "value": None}],
        overlap=[{"dimension": "x", "value": OVERLAP_PX, "unit": "px"},
                 {"dimension": "y", "value": OVERLAP_PX, "unit": "px"}])


def _describe(process_id: str, summary: str, description: str, cube: DataCube, params: list[Parameter],
              dependencies: list[str]) -> dict[str, Any]:
    process = build_process_dict(process_graph=cube, process_id=process_id, summary=summary,
                                 description=f"{description}\n\nUDF dependencies: {', '.join(dependencies)}.",
                                 parameters=params, returns={"description": "Raster cube", "schema": {
                                     "type": "object", "subtype": "datacube"}},
                                 categories=["sentinel-1", "sentinel-2", "fusion"])
    process["default_job_options"] = {"udf-dependencies": dependencies}
    return dict(process)


def generate() -> dict[str, dict[str, Any]]:
    """File name → process definition of both UDPs."""
    from udf.export import build_phenology_source

    params = parameters()
    by_name = {p.name: p for p in params}
    fused = fusion_cube(by_name)
    fusion = _describe("s1ndvi_fusion", "Gap-free NDVI from Sentinel-1 (+ sparse Sentinel-2 NDVI)",
                       "Fuses Sentinel-1 VV/VH backscatter with cloud-masked Sentinel-2 NDVI into a gap-free NDVI "
                       "time series (dekads) with a recurrent network, self-calibrated on the cloud-free NDVI of "
                       "the requested area. Output bands NDVI (+ NDVI_STD).", fused, params, DEPENDENCIES)
    run_udf = PGNode("run_udf", data={"from_parameter": "data"}, udf=build_phenology_source(), runtime="Python",
                     context={})  # built as a node: the client's apply_dimension needs collection metadata for this
    seasons = fused.filter_bands(["NDVI"]).process("apply_dimension", data=THIS, process={"process_graph": run_udf},
                                                   dimension="t", target_dimension="bands")
    phenology = _describe("s1ndvi_phenology", "Growing seasons (start, peak, end) from the gap-free NDVI",
                          "Runs s1ndvi_fusion, then the phenology UDF on its NDVI per pixel: start, peak and end of "
                          "season of each farming year as bands.", seasons, params, DEPENDENCIES)
    return {"s1ndvi_fusion.json": fusion, "s1ndvi_phenology.json": phenology}


def render(process: dict[str, Any]) -> str:
    """The JSON text written for one process (stable: the up-to-date test compares it byte for byte)."""
    return json.dumps(process, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write both UDP JSONs into ``--out`` (default: this folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name, process in generate().items():
        (args.out / name).write_text(render(process), encoding="utf-8")
        _log.info("Wrote %s (%d kB)", args.out / name, (args.out / name).stat().st_size // 1024)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
