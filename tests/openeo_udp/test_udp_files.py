"""The published UDP JSONs are what ``openeo_udp/generate.py`` writes now, and the scenario follows the APEx schema."""

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO.parent / "shared" / "openeo_udp_examples"


def test_json_up_to_date_with_generator() -> None:
    from openeo_udp.generate import HERE, generate, render

    for name, process in generate().items():
        stored = (HERE / name).read_text(encoding="utf-8")
        assert stored == render(process), f"{name} is stale: run `python -m openeo_udp.generate`"


def test_udp_parameters_and_embedded_udf() -> None:
    from udf.export import build_phenology_source

    fusion = json.loads((REPO / "openeo_udp" / "s1ndvi_fusion.json").read_text())
    names = [p["name"] for p in fusion["parameters"]]
    assert names[:4] == ["spatial_extent", "temporal_extent", "s1_collection", "s2_collection"]  # as mogpr_s1s2
    assert {"weights", "include_uncertainty", "self_calibration"} <= set(names)
    udf = fusion["process_graph"]["applyneighborhood1"]["arguments"]["process"]["process_graph"]["runudf1"]
    code = udf["arguments"]["udf"]
    assert code.startswith("# /// script\n# dependencies = [") and "_EMBEDDED_WEIGHTS" in code
    assert udf["arguments"]["context"]["include_uncertainty"] == {"from_parameter": "include_uncertainty"}
    phenology = json.loads((REPO / "openeo_udp" / "s1ndvi_phenology.json").read_text())
    assert build_phenology_source() in json.dumps(phenology["process_graph"], ensure_ascii=False) or any(
        n.get("process_id") == "apply_dimension" for n in phenology["process_graph"].values())


def test_scenario_matches_schema_and_graph() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from openeo_udp.benchmark import SCENARIO_PATH, scenario_graph

    scenarios = json.loads(SCENARIO_PATH.read_text())
    assert scenarios[0]["process_graph"] == scenario_graph()
    schema_path = EXAMPLES / "apex_schemas" / "benchmark_scenario.json"
    if not schema_path.exists():
        pytest.skip("APEx schema not available (../shared/openeo_udp_examples)")
    for entry in scenarios:  # the schema describes one scenario; the file holds a list of them
        jsonschema.validate(entry, json.loads(schema_path.read_text()))
