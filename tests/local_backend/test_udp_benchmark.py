"""The APEx-style benchmark scenario of s1ndvi_fusion, run against the local backend on the embedded sample.

The scenario calls ``s1ndvi_fusion`` by a namespace URL; the server resolves it offline through
``--udp-catalogue openeo_udp`` (by file name). The result's NDVI/NDVI_STD summary is compared with the reference
stored in ``openeo_udp/benchmark_scenario.json`` (tolerance: :data:`openeo_udp.benchmark.ATOL`, justified there).
"""

import json
from pathlib import Path

import openeo
from conftest import PASSWORD, REPO, USER, requires_project_udf, start_server


@requires_project_udf
def test_benchmark_scenario_matches_reference(tmp_path: Path, sample_data: Path, users_file: Path) -> None:
    from openeo_udp.benchmark import SCENARIO_PATH, compare, run

    stored = json.loads(SCENARIO_PATH.read_text())[0]
    server = start_server(tmp_path / "state", sample_data, users_file, workers=0,
                          extra=("--udp-catalogue", str(REPO / "openeo_udp")))
    try:
        connection = openeo.connect(server.url).authenticate_basic(USER, PASSWORD)
        actual = run(connection, tmp_path / "fused.nc")
        assert "resolved to the catalogue entry" in server.log.read_text()
    finally:
        server.stop()
    assert compare(actual, stored["reference_data"]["summary"], stored["reference_options"]["atol"]) == []
    assert compare({**actual, "NDVI_mean": actual["NDVI_mean"] + 0.01}, stored["reference_data"]["summary"])
