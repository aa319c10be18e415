"""Print the project's import graph in numbers: modules per package, import cycles, private names imported across modules.

Usage: ``python tools/import_graph.py [ROOT]`` (ROOT: the repository, default the parent of this folder). Reads the
source files only (``ast``), imports nothing. Exit status 0 always; the numbers are for reports and reviews.
"""

import ast
import sys
from collections import Counter
from pathlib import Path

PACKAGES = ("udf", "local_backend", "comparison", "api", "jobs", "tiles", "cubes", "processes", "compare", "loso",
            "phenology", "figures", "peers", "mogpr", "s1ndvi_cli")


def module_name(root: Path, path: Path) -> str:
    """Dotted module name of ``path`` relative to ``root`` (``pkg/__init__.py`` is ``pkg``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    """Every module of the project's packages (those of :data:`PACKAGES` present under ``root``)."""
    found = {}
    for package in PACKAGES:
        base = root / package
        if (base / "__init__.py").exists():
            for path in sorted(base.rglob("*.py")):
                found[module_name(root, path)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None]]:
    """``(module, imported name or None)`` for each project import of module ``name`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    out.append((f"{base}.{alias.name}", None))
                else:
                    out.append((base, alias.name))
    return [(m, n) for m, n in out if m in modules or any(m.startswith(p + ".") for p in modules)]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (the import cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def graph_of(root: Path) -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """The module graph (package ``__init__`` edges included) and the private cross-module imports."""
    modules = project_modules(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    private: list[tuple[str, str, str]] = []
    for name, path in modules.items():
        for target, imported in imports_of(name, path, modules):
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target == name or target not in modules:
                continue
            graph[name].add(target)
            if imported and imported.startswith("_") and not imported.startswith("__"):
                private.append((name, target, imported))
    return graph, private


def main(argv: list[str]) -> int:
    """Print the numbers for the tree at ``argv[0]`` (default: this repository)."""
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    graph, private = graph_of(root)
    per_package = Counter(m.split(".")[0] if m.count(".") == 0 else ".".join(m.split(".")[:2])
                          if (root / Path(*m.split(".")[:2])).is_dir() else m.split(".")[0] for m in graph)
    print(f"modules: {len(graph)}")
    for package, count in sorted(per_package.items()):
        print(f"  {package}: {count}")
    cycles = strongly_connected(graph)
    print(f"import cycles (strongly connected groups): {len(cycles)}")
    for comp in cycles:
        print("  " + " <-> ".join(comp))
    print(f"private names imported across modules: {len(private)}")
    for name, target, imported in private:
        print(f"  {name}: from {target} import {imported}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
