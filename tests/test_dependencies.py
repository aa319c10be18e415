"""Every third-party package the code imports is declared in setup.cfg (install_requires or an extra).

A module imported but undeclared works on the developer's machine (some other package pulled it in) and fails on a
clean install the day that other package drops it. The check reads every ``import`` of the shipped packages with
``ast`` (also the ones inside functions), maps the top-level module to its distribution with
``importlib.metadata.packages_distributions`` and looks the distribution up in setup.cfg.
"""

import ast
import configparser
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("udf", "local_backend", "comparison")
DATA_FILE_READERS = {"parquet": "pyarrow"}
"""File formats the code reads through pandas, whose engine is a separate distribution (never imported by name)."""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, set[str]]:
    """``{distribution: {"install_requires" or the extra's name}}`` from setup.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    sections = {"install_requires": cfg["options"]["install_requires"],
                **{k: v for k, v in cfg["options.extras_require"].items()}}
    out: dict[str, set[str]] = {}
    for where, text in sections.items():
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            match = re.match(r"[A-Za-z0-9_.\-]+", line)
            if match:
                out.setdefault(_norm(match.group(0)), set()).add(where)
    return out


def imported_modules() -> dict[str, list[str]]:
    """``{top-level module: [files importing it]}`` for third-party modules of the shipped packages."""
    first_party = set(PACKAGES)
    out: dict[str, list[str]] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in first_party and top not in sys.stdlib_module_names:
                        out.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return out


def test_every_imported_third_party_module_is_declared() -> None:
    dists = md.packages_distributions()
    have = declared()
    missing = []
    for module, files in sorted(imported_modules().items()):
        names = dists.get(module)
        if not names:
            # Not installed here (an optional extra such as GPy): it must still be declared under its import name.
            if _norm(module) not in have:
                missing.append(f"{module} (imported by {files[0]}; not installed, not declared)")
            continue
        if not any(_norm(n) in have for n in names):
            missing.append(f"{module} (distribution {', '.join(names)}; imported by {', '.join(sorted(set(files))[:3])})")
    assert not missing, "imported but not declared in setup.cfg: " + "; ".join(missing)


@pytest.mark.parametrize("fmt,dist", sorted(DATA_FILE_READERS.items()))
def test_the_engine_of_each_data_format_read_is_declared(fmt: str, dist: str) -> None:
    users = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if fmt in p.read_text()]
    assert users, f"no module mentions {fmt} any more: drop it from DATA_FILE_READERS"
    assert "install_requires" in declared().get(dist, set()), (
        f"{', '.join(users[:3])} read {fmt} files: {dist} must be in install_requires")


def test_the_check_sees_lazy_imports() -> None:
    """Imports inside functions count (psutil and pydantic are imported only where needed)."""
    found = imported_modules()
    assert "psutil" in found and "torch" in found
