"""Unit tests: users and tokens, graph rewriting, tiling, temporal periods, server options."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from local_backend.api.users import TokenSigner, UsersFile, check_password, hash_password
from local_backend.errors import InsecureBind, ProcessUnsupported, UsersFileError
from local_backend.graph import check_processes, implementations, rewrite_udf_callbacks
from local_backend.processes.temporal import period_edges
from local_backend.tiles.windows import windows


def test_password_hash_roundtrip() -> None:
    stored = hash_password("s3cret")
    assert "s3cret" not in stored and stored.startswith("scrypt$")
    assert check_password("s3cret", stored) and not check_password("S3cret", stored)
    assert hash_password("s3cret") != stored  # salted


def test_users_file_mode_and_update(tmp_path: Path) -> None:
    users = UsersFile(tmp_path / "users.json")
    assert users.add("alice", "pw1") is True
    assert users.add("alice", "pw2") is False
    assert (tmp_path / "users.json").stat().st_mode & 0o777 == 0o600
    assert "pw2" not in (tmp_path / "users.json").read_text()
    assert users.verify("alice", "pw2") and not users.verify("alice", "pw1") and not users.verify("bob", "pw2")
    with pytest.raises(UsersFileError, match="invalid"):
        users.add("bad name!", "x")


def test_users_add_cli_reads_stdin(tmp_path: Path) -> None:
    path = tmp_path / "u.json"
    cmd = [sys.executable, "-m", "udf.cli", "users", "add", "--users", str(path), "carol"]
    done = subprocess.run(cmd, input="from-stdin\n", capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert UsersFile(path).verify("carol", "from-stdin")


def test_token_signer() -> None:
    signer = TokenSigner(secret=b"k" * 32)
    token = signer.build("alice")
    assert signer.user_of(token) == "alice"
    assert signer.user_of(token[:-2] + "xx") is None
    assert TokenSigner(secret=b"j" * 32).user_of(token) is None
    assert TokenSigner(secret=b"k" * 32, lifetime_s=-10).user_of(TokenSigner(b"k" * 32, -10).build("a")) is None


def test_refuses_public_bind_without_users(tmp_path: Path) -> None:
    from local_backend.api.server import ServerConfig, build_backend

    config = ServerConfig(host="0.0.0.0", state_dir=tmp_path, users_file=tmp_path / "none.json", workers=0)
    with pytest.raises(InsecureBind, match="users add"):
        build_backend(config)


def _udf_node(data: object = None) -> dict:
    return {"process_id": "run_udf", "arguments": {"data": data or {"from_parameter": "data"}, "udf": "code",
                                                   "runtime": "Python", "context": {"from_parameter": "context"}},
            "result": True}


def test_rewrite_lone_run_udf() -> None:
    graph: dict[str, dict] = {"ad": {"process_id": "apply_dimension", "result": True,
                                     "arguments": {"data": {"from_node": "lc"}, "dimension": "t", "context": {"a": 1},
                                  "process": {"process_graph": {"u": _udf_node()}}}},
             "lc": {"process_id": "load_collection", "arguments": {"id": "X"}}}
    out = rewrite_udf_callbacks(graph)
    node = out["ad"]
    assert node["process_id"] == "s1ndvi_udf_apply_dimension"
    assert node["arguments"]["udf_context"] == {"a": 1} and "process" not in node["arguments"]
    assert graph["ad"]["process_id"] == "apply_dimension"  # input untouched


def test_rewrite_leaves_composite_callbacks() -> None:
    callback = {"process_graph": {"u": {**_udf_node(), "result": False},
                                  "m": {"process_id": "multiply", "result": True,
                                        "arguments": {"x": {"from_node": "u"}, "y": 2}}}}
    graph = {"ad": {"process_id": "apply_dimension", "result": True,
                    "arguments": {"data": None, "dimension": "t", "process": callback}}}
    assert rewrite_udf_callbacks(graph)["ad"]["process_id"] == "apply_dimension"


def test_check_processes_in_callbacks() -> None:
    graph = {"r": {"process_id": "reduce_dimension", "result": True,
                   "arguments": {"reducer": {"process_graph": {"x": {"process_id": "nope", "arguments": {}}}}}}}
    with pytest.raises(ProcessUnsupported, match="'nope'"):
        check_processes(graph, set(implementations()))


@pytest.mark.parametrize("n, size, overlap", [(32, 10, 2), (7, 10, 0), (64, 16, 8)])
def test_windows_cover_exactly(n: int, size: int, overlap: int) -> None:
    wins = windows(n, size, overlap)
    covered = np.concatenate([np.arange(w.read.start, w.read.stop)[w.core_offset:w.core_offset + w.core_size]
                              for w in wins])
    np.testing.assert_array_equal(covered, np.arange(n))
    assert all(w.read.start >= 0 and w.read.stop <= n for w in wins)


@pytest.mark.parametrize("period, first, second, count", [
    ("dekad", "2018-03-01", "2018-03-11", 7), ("month", "2018-03-01", "2018-04-01", 3),
    ("season", "2018-03-01", "2018-06-01", 1), ("week", "2018-02-26", "2018-03-05", 10),
    ("tropical-season", "2017-11-01", "2018-05-01", 2), ("year", "2018-01-01", "2019-01-01", 1),
])
def test_period_edges(period: str, first: str, second: str, count: int) -> None:
    times = pd.date_range("2018-03-03", "2018-05-05", freq="D").values
    edges = period_edges(times, period)
    assert str(edges[0])[:10] == first and str(edges[1])[:10] == second and len(edges) - 1 == count


def test_dekad_edges_cross_month_end() -> None:
    edges = period_edges(np.array(["2018-02-25", "2018-03-02"], dtype="datetime64[ns]"), "dekad")
    assert [str(e)[:10] for e in edges] == ["2018-02-21", "2018-03-01", "2018-03-11"]


def test_users_file_invalid(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"people": []}))
    with pytest.raises(UsersFileError, match="not a valid users file"):
        UsersFile(path).users()


def test_netcdf_strips_unstorable_attributes(tmp_path: Path) -> None:
    import xarray as xr

    from local_backend.processes.save import write_netcdf

    cube = xr.DataArray(np.ones((2, 1, 3, 4), dtype=np.float32), dims=("t", "bands", "y", "x"),
                        coords={"t": np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[ns]"), "bands": ["A"],
                                "y": [3.0, 2.0, 1.0], "x": [0.0, 1.0, 2.0, 3.0]},
                        attrs={"crs": "EPSG:32631", "flag": True, "nested": {"a": 1}, "none": None, "name": "x",
                               "numbers": [1, 2], "objs": [object()]})
    write_netcdf(cube, tmp_path / "out.nc")
    ds = xr.open_dataset(tmp_path / "out.nc")
    assert ds.attrs["flag"] == 1 and ds.attrs["name"] == "x" and list(ds.attrs["numbers"]) == [1, 2]
    assert "nested" not in ds.attrs and "none" not in ds.attrs and "objs" not in ds.attrs
    assert "32631" in ds["crs"].attrs["crs_wkt"] or ds["crs"].attrs["crs_wkt"] == "EPSG:32631"


def test_default_data_is_the_embedded_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from local_backend.api.server import ServerConfig, build_backend

    for name in ("OPENEO_BACKEND_CONFIG", "S1NDVI_USERS_FILE"):  # restored after the test
        monkeypatch.delenv(name, raising=False)
    backend = build_backend(ServerConfig(state_dir=tmp_path, workers=0))
    try:
        assert set(backend.runtime.catalog.collections) == {"SENTINEL1_GRD", "SENTINEL2_L2A", "S1NDVI_SAMPLE_CUBE"}
        assert (tmp_path / "sample_data" / "SENTINEL1_GRD.json").exists()
        client = backend.app.test_client()
        assert client.get("/openeo/1.2/collections").status_code == 200
        assert client.post("/openeo/1.2/result", json={}).status_code == 401
    finally:
        backend.close()
