"""The README's Python code blocks, run verbatim (the server's address and the test account substituted)."""

import re
from pathlib import Path

import xarray as xr

from tests.local_backend.conftest import PASSWORD, USER, Server

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    """Every fenced ``python`` block of the README, in order."""
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_python_blocks_run(server: Server) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 3, "the README lost its UDF / process graph / backend examples"
    namespace: dict = {}
    for block in blocks:
        code = block.replace('"http://127.0.0.1:8080"', repr(server.url))
        code = code.replace('authenticate_basic("alice", "…")', f"authenticate_basic({USER!r}, {PASSWORD!r})")
        exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - the README's own examples
        if "fused" in namespace and isinstance(namespace["fused"], xr.DataArray):
            fused = namespace.pop("fused")
            assert list(fused["bands"].values) == ["NDVI", "NDVI_STD"]
            assert float(fused.sel(bands="NDVI").notnull().mean()) > 0.9
    connection = namespace["connection"]
    assert "S1NDVI_SAMPLE_CUBE" in connection.list_collection_ids()
    errors = namespace["fused"].validate()
    assert errors == [], errors
