"""The APEx-style benchmark scenario of ``s1ndvi_fusion`` and the summary its result is compared with.

``benchmark_scenario.json`` is what a cloud user (or the APEx benchmark runner) sends: one node calling
``s1ndvi_fusion`` by ``process_id`` + ``namespace`` URL, then ``save_result``. Its ``reference_data`` holds the
summary of the NDVI this repository's backend computes for it on the embedded sample (``s1ndvi serve
--udp-catalogue openeo_udp``), and ``reference_options`` the tolerance.

Usage::

    python -m openeo_udp.benchmark --url http://127.0.0.1:8080 --user alice --password ... [--write-reference]
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

_log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SCENARIO_PATH = HERE / "benchmark_scenario.json"
NAMESPACE = "https://raw.githubusercontent.com/s1ndvi/s1ndvi/main/openeo_udp/s1ndvi_fusion.json"
"""Where ``s1ndvi_fusion.json`` is published (replace with your repository's raw URL when publishing, see
docs/udp.md); a backend started with ``--udp-catalogue openeo_udp`` resolves it by file name, offline."""
SAMPLE_BBOX = {"west": 3.019, "south": 50.8128, "east": 3.0287, "north": 50.8192, "crs": 4326}
SAMPLE_PERIOD = ["2018-03-01", "2018-09-01"]
ATOL = 2e-3
"""Tolerance of the summary values (NDVI units). CPU inference is deterministic up to the summation order of the
BLAS/torch kernels (differences ~1e-6 between thread counts); a change of weights, UDF or graph moves the mean or a
percentile by 1e-2 or more, so 2e-3 separates the two."""


def scenario_graph() -> dict[str, Any]:
    """The benchmark's process graph: ``s1ndvi_fusion`` on the sample area and period, saved as netCDF."""
    return {
        "s1ndvifusion1": {"process_id": "s1ndvi_fusion", "namespace": NAMESPACE, "arguments": {
            "spatial_extent": SAMPLE_BBOX, "temporal_extent": SAMPLE_PERIOD, "include_uncertainty": True}},
        "saveresult1": {"process_id": "save_result", "arguments": {"data": {"from_node": "s1ndvifusion1"},
                                                                   "format": "netCDF", "options": {}},
                        "result": True},
    }


def summary(path: Path) -> dict[str, float]:
    """Mean and 10/50/90th percentiles of NDVI and NDVI_STD, and the share of finite NDVI values, of a result file."""
    import xarray as xr

    out: dict[str, float] = {}
    with xr.open_dataset(path) as ds:
        for band in ("NDVI", "NDVI_STD"):
            values = np.asarray(ds[band].values, dtype="float64")
            finite = values[np.isfinite(values)]
            out[f"{band}_mean"] = round(float(finite.mean()), 5)
            for q in (10, 50, 90):
                out[f"{band}_p{q}"] = round(float(np.percentile(finite, q)), 5)
        ndvi = np.asarray(ds["NDVI"].values)
        out["NDVI_finite_share"] = round(float(np.isfinite(ndvi).mean()), 5)
    return out


def scenario(reference: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The scenario document (APEx benchmark_scenario schema), with ``reference`` summary when given."""
    entry: dict[str, Any] = {
        "id": "s1ndvi_fusion", "type": "openeo",
        "description": "s1ndvi_fusion on the embedded Flanders sample (2018-03 to 2018-09), NDVI with its std",
        "backend": "http://127.0.0.1:8080", "process_graph": scenario_graph(),
    }
    if reference is not None:
        entry["reference_data"] = {"summary": reference}
        entry["reference_options"] = {"atol": ATOL}
    return [entry]


def compare(actual: dict[str, float], reference: dict[str, float], atol: float = ATOL) -> list[str]:
    """Differences beyond ``atol`` (``[]``: the result matches the reference)."""
    problems = [f"{key}: missing" for key in reference if key not in actual]
    problems += [f"{key}: {actual[key]} vs reference {value} (atol {atol})" for key, value in reference.items()
                 if key in actual and not abs(actual[key] - value) <= atol]
    return problems


def run(connection: Any, out: Path) -> dict[str, float]:
    """Run the scenario as a batch job on ``connection`` and summarise the result written to ``out``."""
    job = connection.create_job(scenario_graph(), title="s1ndvi_fusion benchmark")
    job.start_and_wait()
    job.get_results().download_file(out)
    return summary(out)


def main(argv: list[str] | None = None) -> int:
    """Run the scenario; with ``--write-reference`` store its summary as the reference."""
    import openeo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", type=Path, default=Path("s1ndvi_fusion_benchmark.nc"))
    parser.add_argument("--write-reference", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    actual = run(openeo.connect(args.url).authenticate_basic(args.user, args.password), args.out)
    if args.write_reference:
        SCENARIO_PATH.write_text(json.dumps(scenario(actual), indent=2) + "\n")
        _log.info("Wrote %s", SCENARIO_PATH)
        return 0
    reference = json.loads(SCENARIO_PATH.read_text())[0]["reference_data"]["summary"]
    problems = compare(actual, reference)
    for problem in problems:
        _log.error("%s", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
