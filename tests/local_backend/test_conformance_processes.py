"""A subset of the official openEO process tests, sent with the stock client as openeo-test-suite's http runner does.

``data/conformance/cases.json`` holds the cases (copied unchanged from the openeo-processes tests by
``select_cases.py``), a few per class of failure the backend had: ``null`` arguments (500), booleans returned as
``1.0``/``0.0``, empty arrays parsed as temporal intervals (500), strings compared with numbers (500), ``NaN`` or
numbers where ``null`` is due, defaults not applied, array indices out of range. The whole suite:
``tools/conformance.sh``.
"""

import json
import math
from pathlib import Path
from typing import Any

import openeo
import pytest
from openeo.rest import OpenEoApiError

CASES = json.loads((Path(__file__).parent / "data" / "conformance" / "cases.json").read_text())["cases"]


def _nodata(value: Any) -> Any:
    """The suite's ``{"type": "nodata"}`` marker as the backend's no-data value, ``null``."""
    if isinstance(value, dict):
        return None if value == {"type": "nodata"} else {k: _nodata(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nodata(v) for v in value]
    return value


def _assert_same(got: Any, want: Any, delta: float) -> None:
    """Equal with JSON types checked strictly (``true`` is not ``1.0``, ``null`` is not ``NaN``)."""
    if isinstance(want, bool) or want is None or isinstance(want, str):
        assert got is want or (isinstance(want, str) and got == want), f"{got!r} != {want!r}"
    elif isinstance(want, (int, float)):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), f"{got!r} is not a number"
        assert math.isclose(got, want, rel_tol=delta) or got == want, f"{got!r} != {want!r}"
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{got!r} != {want!r}"
        for g, w in zip(got, want):
            _assert_same(g, w, delta)
    else:
        assert got == want


@pytest.mark.parametrize("case", CASES, ids=[f"{c['class']}:{c['process_id']}{i}" for i, c in enumerate(CASES)])
def test_process_case(connection: openeo.Connection, case: dict) -> None:
    graph = {"process_graph": {"node": {"process_id": case["process_id"], "arguments": _nodata(case["arguments"]),
                                        "result": True}}}
    try:
        result = connection.execute(graph)
    except OpenEoApiError as exc:  # a case may allow the error, the value, or either (then both keys are set)
        assert "throws" in case, f"unexpected error {exc}"
        assert exc.http_status_code == 400 and exc.code == case["throws"]
        return
    assert "returns" in case, f"expected the error {case['throws']}, got {result!r}"
    _assert_same(result, _nodata(case["returns"]), case.get("delta", 1e-10))


def test_cube_path_unchanged(connection: openeo.Connection, tmp_path: Path) -> None:
    """The overridden processes still hand data cubes to processes-dask (comparison, logic, reducers in callbacks)."""
    import numpy as np
    import xarray as xr

    cube = connection.load_collection("S1NDVI_SAMPLE_CUBE", temporal_extent=["2018-05-01", "2018-06-01"],
                                      bands=["NDVI"])
    cube.download(tmp_path / "in.nc")
    high = (cube > 0.5) & (cube < 2)
    high.reduce_dimension(dimension="t", reducer="max").download(tmp_path / "out.nc")
    ndvi = xr.open_dataset(tmp_path / "in.nc")["NDVI"]
    got = xr.open_dataset(tmp_path / "out.nc")["NDVI"].values
    want = ((ndvi > 0.5) & (ndvi < 2)).where(ndvi.notnull()).max("t").values
    assert np.nanmax(want) == 1 and np.nanmin(want) == 0  # both outcomes occur
    np.testing.assert_array_equal(got, want)
