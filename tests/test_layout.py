"""The layout rules of issue 17, read from the source files (``ast``): what ``udf/`` holds, what the UDF runtime
imports, no import cycles, no private names imported across modules."""

import ast
import importlib.util
import sys
from pathlib import Path

import udf
from udf import PHENOLOGY_MODULES, PHENOLOGY_UDF_PATH, RUNTIME_MODULES, UDF_PATH

ROOT = Path(__file__).resolve().parents[1]
UDF_DIR = ROOT / "udf"
RUNTIME_THIRD_PARTY = {"numpy", "xarray", "torch", "openeo"}
"""What the exported UDFs may import besides the standard library and themselves."""
ENTRIES = (UDF_PATH.stem, PHENOLOGY_UDF_PATH.stem)


def _graph_tool():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every import in ``path``, inside functions too (relative imports are refused)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import of {node.module!r}"
            out.append((node.module or "", [a.name for a in node.names]))
    return out


def _udf_deps(name: str) -> list[str]:
    """Top-level ``udf`` modules imported by ``udf/<name>.py``, in the order of the file."""
    deps = []
    for module, names in _imports(UDF_DIR / f"{name}.py"):
        if module == "udf":
            deps += [n for n in names if (UDF_DIR / f"{n}.py").exists()]
        elif module.startswith("udf."):
            deps.append(module.split(".")[1])
    return list(dict.fromkeys(deps))


def _closure(entry: str) -> set[str]:
    seen: set[str] = set()
    todo = [entry]
    while todo:
        for dep in _udf_deps(todo.pop()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_udf_top_level_is_exactly_the_runtime_and_export() -> None:
    top = {p.stem for p in UDF_DIR.glob("*.py")}
    assert top == set(RUNTIME_MODULES) | set(PHENOLOGY_MODULES) | set(ENTRIES) | {"__init__", "export"}
    packages = {p.name for p in UDF_DIR.iterdir() if (p / "__init__.py").exists()}
    assert packages == {"cli", "evaluation", "ingest", "products", "training"}


def test_manifest_is_the_import_closure_of_each_entry_in_dependency_order() -> None:
    for entry, manifest in ((UDF_PATH.stem, RUNTIME_MODULES), (PHENOLOGY_UDF_PATH.stem, PHENOLOGY_MODULES)):
        assert _closure(entry) == set(manifest), entry
        for i, name in enumerate(manifest):
            later = set(_udf_deps(name)) - set(manifest[:i])
            assert not later, f"{name} imports {later}, listed after it in the manifest of {entry}"


def _runtime_violations(path: Path, runtime: set[str]) -> list[str]:
    """Imports of ``path`` outside the runtime, the standard library and :data:`RUNTIME_THIRD_PARTY`."""
    bad = []
    for module, names in _imports(path):
        top = module.split(".")[0]
        if top == "udf":
            targets = [module.split(".")[1]] if "." in module else names
            bad += [f"{module} {names}" for t in targets if t not in runtime]
        elif not (top in sys.stdlib_module_names or top in RUNTIME_THIRD_PARTY or top == "__future__"):
            bad.append(module)
    return bad


def test_runtime_imports_only_itself_stdlib_numpy_xarray_torch_openeo() -> None:
    runtime = set(RUNTIME_MODULES) | set(PHENOLOGY_MODULES) | set(ENTRIES)
    for name in sorted(runtime):
        assert _runtime_violations(UDF_DIR / f"{name}.py", runtime) == [], f"udf/{name}.py"


def test_a_tooling_import_in_the_runtime_is_found(tmp_path: Path) -> None:
    runtime = set(RUNTIME_MODULES) | set(PHENOLOGY_MODULES) | set(ENTRIES)
    bad = tmp_path / "model.py"
    bad.write_text((UDF_DIR / "model.py").read_text(encoding="utf-8")
                   + "\n\ndef f():\n    import scipy\n    from udf.ingest.base import load_s1\n", encoding="utf-8")
    assert _runtime_violations(bad, runtime) == ["scipy", "udf.ingest.base ['load_s1']"]


def test_no_import_cycles_and_no_private_names_across_modules() -> None:
    tool = _graph_tool()
    graph, private = tool.graph_of(ROOT)
    assert len(graph) > 100  # all packages were read
    assert tool.strongly_connected(graph) == []
    assert private == []


def test_cycle_detection_can_fail() -> None:
    tool = _graph_tool()
    assert tool.strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_package_docstring_names_the_manifest() -> None:
    assert "RUNTIME_MODULES" in (udf.__doc__ or "")
