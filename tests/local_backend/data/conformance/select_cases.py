"""Write ``cases.json``: a subset of the openEO process tests (openeo-processes, Apache-2.0) for the default suite.

The cases come from the ``tests/*.json5`` files of openeo-processes (the ``add-tests`` branch bundled with
openeo-test-suite 0.2.2 at commit 4127e8f, ``assets/processes/tests``), unchanged, a few per class of failure the
local backend had with JSON values (``null`` arguments, booleans, empty arrays, type checks, ``null`` results,
defaults, array indices). Run it with a Python that has ``json5``:

    python select_cases.py PATH/TO/openeo-processes/tests > cases.json
"""

import json
import sys
from pathlib import Path

import json5  # type: ignore[import-not-found]

NODATA = {"type": "nodata"}

SELECTION = {
    "nodata argument": [
        ("add", {"x": 1, "y": NODATA}), ("arctan2", {"y": 1, "x": NODATA}), ("mod", {"x": 2, "y": NODATA}),
        ("absolute", {"x": NODATA}), ("normalized_difference", {"x": NODATA, "y": 1}),
        ("power", {"base": NODATA, "p": 2}), ("xor", {"x": True, "y": NODATA}), ("and", {"x": False, "y": NODATA})],
    "boolean result": [
        ("gt", {"x": 2, "y": 1}), ("gte", {"x": 0, "y": 0}), ("lt", {"x": 1, "y": 2}), ("eq", {"x": 1, "y": 1}),
        ("neq", {"x": 1, "y": 1}), ("and", {"x": True, "y": True}), ("or", {"x": False, "y": False}),
        ("not", {"x": False}), ("between", {"x": 1, "min": 0, "max": 1}), ("xor", {"x": True, "y": False})],
    "empty array": [
        ("max", {"data": []}), ("array_concat", {"array1": [1], "array2": []}), ("constant", {"x": []}),
        ("array_labels", {"data": []}), ("sum", {"data": []}), ("first", {"data": []})],
    "type check": [
        ("gte", {"x": 2, "y": "1"}), ("lt", {"x": "1", "y": 2}), ("between", {"x": "0.5", "min": 0, "max": 1}),
        ("is_nan", {"x": "NaN"}), ("gt", {"x": "2018-01-02T00:00:00Z", "y": "2018-01-01T00:00:00Z"}),
        ("neq", {"x": "2018-01-01T00:00:00Z", "y": "2018-01-01T00:00:00+00:00"}), ("lte", {"x": 1, "y": "1"})],
    "null result": [
        ("if", {"value": False, "accept": 1}), ("neq", {"x": 1, "y": NODATA}),
        ("array_find", {"data": ["A", "B", "C"], "value": "b"}),
        ("any", {"data": [False, NODATA], "ignore_nodata": False}),
        ("all", {"data": [True, NODATA], "ignore_nodata": False})],
    "default": [
        ("text_concat", {"data": [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]}), ("first", {"data": [NODATA, "A", "B"]}),
        ("last", {"data": ["A", "B", NODATA]}), ("mean", {"data": [9, 2.5, NODATA, -2.5]}),
        ("extrema", {"data": [5, 2.5, NODATA, -0.7]})],
    "array index": [
        ("array_element", {"data": [1, 2], "index": -1}),
        ("array_element", {"data": [1, 2], "index": 2, "return_nodata": True}),
        ("array_element", {"data": [], "index": 0, "return_nodata": True})],
    "other": [
        ("count", {"data": []}),
        ("order", {"data": [6, -1, 2, NODATA, 7, 4, NODATA, 8, 3, 9, 9], "asc": False, "nodata": True}),
        ("array_interpolate_linear", {"data": [NODATA, 1, NODATA, 6, NODATA, -8]}),
        ("quantiles", {"data": [-1, -0.5, NODATA, 1], "probabilities": 2}), ("mod", {"x": 2, "y": 0})],
}
"""Class -> (process id, the test's exact arguments) of each selected test."""


def main(tests_dir: Path) -> None:
    cases = []
    for kind, picks in SELECTION.items():
        for process_id, arguments in picks:
            tests = json5.loads((tests_dir / f"{process_id}.json5").read_text())["tests"]
            wanted = json.dumps(arguments, sort_keys=True)  # strict: True == 1 for Python's dict comparison
            test = next(t for t in tests if json.dumps(t["arguments"], sort_keys=True) == wanted)
            cases.append({"class": kind, "process_id": process_id, "arguments": arguments,
                          **{k: test[k] for k in ("returns", "throws", "delta") if k in test}})
    json.dump({"source": "openeo-processes tests (add-tests branch, via openeo-test-suite 4127e8f), Apache-2.0",
               "cases": cases}, sys.stdout, indent=1, allow_nan=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
