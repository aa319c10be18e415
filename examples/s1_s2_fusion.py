"""Build and run, with the stock openeo client, the S1 + S2 → gap-free NDVI graph a user sends to a cloud backend.

The graph: Sentinel-1 GRD → ``sar_backscatter`` (sigma0, linear) → dekad means; Sentinel-2 L2A → NDVI masked with
SCL (clear = 4, 5, 6) → dekad maxima → resampled onto the S1 20 m grid; ``merge_cubes``; the fusion UDF through
``apply_neighborhood``; ``save_result`` as netCDF. Pointed at the local backend (``s1ndvi serve``) it runs on the
embedded sample unchanged; pointed at a cloud backend it runs on the cloud's collections.

Usage::

    s1ndvi users add --users users.json alice          # password on stdin
    s1ndvi serve --users users.json &                  # serves the embedded sample on 127.0.0.1:8080
    python examples/s1_s2_fusion.py --url http://127.0.0.1:8080 --user alice --password ... --out fused.nc
"""

import argparse
import logging
import sys
from pathlib import Path

import openeo
import openeo.rest.result

_log = logging.getLogger(__name__)

SAMPLE_BBOX = {"west": 3.019, "south": 50.8128, "east": 3.0287, "north": 50.8192, "crs": "EPSG:4326"}
"""The embedded WorldCereal sample (Flanders) in lon/lat."""
SAMPLE_PERIOD = ["2018-03-01", "2018-09-01"]
CLEAR_SCL = (4, 5, 6)


def _udf_path() -> Path:
    here = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(here)) if str(here) not in sys.path else None
    from udf import UDF_PATH

    return Path(UDF_PATH)


def build_graph(connection: openeo.Connection, bbox: dict, period: list[str], udf_file: Path,
                udf_context: dict | None = None) -> openeo.rest.result.SaveResult:
    """The fusion graph, built exactly as for a cloud backend (no local-only process or argument)."""
    s1 = connection.load_collection("SENTINEL1_GRD", spatial_extent=bbox, temporal_extent=period,
                                    bands=["VV", "VH"])
    s1 = s1.sar_backscatter(coefficient="sigma0-ellipsoid")
    s1 = s1.aggregate_temporal_period(period="dekad", reducer="mean")

    s2 = connection.load_collection("SENTINEL2_L2A", spatial_extent=bbox, temporal_extent=period,
                                    bands=["B04", "B08", "SCL"])
    scl = s2.band("SCL")
    cloudy: openeo.DataCube = (scl != CLEAR_SCL[0]) & (scl != CLEAR_SCL[1]) & (scl != CLEAR_SCL[2])
    ndvi = s2.ndvi(nir="B08", red="B04", target_band="NDVI").filter_bands(["NDVI"]).mask(cloudy)
    ndvi = ndvi.aggregate_temporal_period(period="dekad", reducer="max")
    ndvi = ndvi.resample_cube_spatial(target=s1, method="average")

    cube = s1.merge_cubes(ndvi)
    udf = openeo.UDF.from_file(udf_file, runtime="Python", context=udf_context or {})
    fused = cube.apply_neighborhood(
        process=udf,
        size=[{"dimension": "x", "value": 128, "unit": "px"}, {"dimension": "y", "value": 128, "unit": "px"},
              {"dimension": "t", "value": None}],
        overlap=[{"dimension": "x", "value": 8, "unit": "px"}, {"dimension": "y", "value": 8, "unit": "px"}],
    )
    return fused.save_result(format="netCDF")


def main(argv: list[str] | None = None) -> int:
    """Connect, authenticate, run the graph synchronously and write the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", type=Path, default=Path("fused.nc"))
    parser.add_argument("--udf", type=Path, default=None, help="UDF file (default: udf.UDF_PATH)")
    parser.add_argument("--batch", action="store_true", help="run as a batch job instead of synchronously")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    connection = openeo.connect(args.url).authenticate_basic(args.user, args.password)
    graph = build_graph(connection, SAMPLE_BBOX, SAMPLE_PERIOD, args.udf or _udf_path())
    if args.batch:
        job = graph.execute_batch(title="s1ndvi fusion example")
        job.get_results().download_file(args.out)  # the one result asset, written as --out itself
    else:
        graph.download(args.out)
    _log.info("Wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
