"""Units of the JSON-value process layer: literal wrapping around the pg parser, dispatch to processes-dask."""

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("openeo_processes_dask")

from local_backend.processes import arrays, comparison, logic, statistics  # noqa: E402
from local_backend.processes.literals import LITERAL_KEY, unwrap_literals, wrap_literals  # noqa: E402


def test_wrap_literals_only_for_listed_processes_and_literal_arguments() -> None:
    graph = {
        "m": {"process_id": "max", "arguments": {"data": [], "ignore_nodata": True}},
        "a": {"process_id": "array_element", "arguments": {"data": {"from_node": "m"}, "index": 0}},
        "f": {"process_id": "filter_temporal", "arguments": {"data": {"from_node": "a"},
                                                               "extent": ["2018-01-01", "2018-02-01"]}},
        "r": {"process_id": "reduce_dimension", "result": True, "arguments": {
            "data": {"from_node": "f"}, "dimension": "t",
            "reducer": {"process_graph": {"x": {"process_id": "max", "result": True,
                                                "arguments": {"data": {"from_parameter": "data"}}}}}}},
    }
    out = wrap_literals(graph, {"max", "array_element"})
    assert out["m"]["arguments"] == {"data": {LITERAL_KEY: []}, "ignore_nodata": {LITERAL_KEY: True}}
    assert out["a"]["arguments"] == {"data": {"from_node": "m"}, "index": {LITERAL_KEY: 0}}
    assert out["f"]["arguments"] == graph["f"]["arguments"]  # not a JSON-value process: parsed as before
    callback = out["r"]["arguments"]["reducer"]["process_graph"]["x"]
    assert callback["arguments"] == {"data": {"from_parameter": "data"}}
    assert graph["m"]["arguments"]["data"] == []  # the input is not modified


def test_unwrap_literals() -> None:
    seen = {}

    def implementation(**kwargs: object) -> None:
        seen.update(kwargs)

    unwrap_literals(implementation)(data={LITERAL_KEY: []}, other={"a": 1}, named_parameters={})
    assert seen == {"data": [], "other": {"a": 1}, "named_parameters": {}}


def test_arrays_and_cubes_go_to_processes_dask() -> None:
    cube = xr.DataArray([[1.0, np.nan], [3.0, 0.0]], dims=("y", "x"))
    out = comparison.gt(x=cube, y=1)  # processes-dask: float, NaN stays NaN (not a JSON boolean)
    np.testing.assert_array_equal(np.asarray(out), [[0.0, np.nan], [1.0, 0.0]])
    reduced = statistics.IMPLEMENTATIONS["max"](data=np.array([[1.0, 5.0], [2.0, np.nan]]), axis=0)
    np.testing.assert_array_equal(reduced, [2.0, 5.0])
    assert logic.and_(x=np.array([True, False]), y=np.array([True, True])).tolist() == [True, False]


def test_json_semantics() -> None:
    assert comparison.eq(x=1, y=1.0) is True and comparison.eq(x=1, y=True) is False
    assert comparison.eq(x="Ä", y="ä", case_sensitive=False) is True
    assert logic.or_(x=None, y=True) is True and logic.or_(x=None, y=False) is None
    assert arrays.order(data=[3, None, 1, 3], asc=False, nodata=False) == [1, 0, 3, 2]
    assert arrays.text_concat(data=[None, True, 1.5, "x"], separator=1) == "null1true11.51x"
    assert statistics.IMPLEMENTATIONS["variance"](data=[5]) is None
    assert statistics.quantiles(data=[1, 2, 3, 4], probabilities=[0.5]) == [2.5]


def test_bad_input_names_the_parameter() -> None:
    from local_backend.errors import ProcessParameterInvalid

    with pytest.raises(ProcessParameterInvalid, match="parameter 'data' in process 'mean'.*element 1"):
        statistics.IMPLEMENTATIONS["mean"](data=[1, "2"])
    with pytest.raises(ProcessParameterInvalid, match="parameter 'x' in process 'and'"):
        logic.and_(x=1, y=True)
