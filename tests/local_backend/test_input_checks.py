"""Units of the request checks: JSON depth, job metadata, graph argument types, users and tokens."""

import json
import re
import statistics
import time
from pathlib import Path

import pytest

from local_backend.api.input_checks import check_graph_arguments, check_job_metadata, check_json_body, json_depth
from local_backend.errors import InputInvalid, ProcessParameterInvalid, UsersFileError


def test_json_depth_without_recursion() -> None:
    assert json_depth(1) == 0 and json_depth({"a": [1, {"b": []}]}) == 4
    deep = json.loads("[" * 500 + "]" * 500)
    assert json_depth(deep) == 500
    with pytest.raises(InputInvalid, match="nested 500 levels"):
        check_json_body(("[" * 500 + "]" * 500).encode())
    with pytest.raises(InputInvalid, match="nested too deeply"):
        check_json_body(("[" * 100_000 + "]" * 100_000).encode())
    check_json_body(b'{"process": {"process_graph": {}}}')
    check_json_body(b'{"broken": ')  # malformed JSON is left to the normal parser (400 BadRequest)


@pytest.mark.parametrize("field", ["title", "description"])
@pytest.mark.parametrize("value", [{"a": 1}, ["x"], 3])
def test_job_text_fields_must_be_strings(field: str, value: object) -> None:
    with pytest.raises(InputInvalid, match=f"'{field}' must be a string"):
        check_job_metadata({field: value})
    check_job_metadata({field: "fine", "other": {"a": 1}})


def test_load_collection_id_must_be_a_string() -> None:
    graph = {"a": {"process_id": "apply", "arguments": {"process": {"process_graph": {
        "b": {"process_id": "load_collection", "arguments": {"id": {"x": 1}}}}}}}}
    with pytest.raises(ProcessParameterInvalid, match="'id' in process 'load_collection'"):
        check_graph_arguments(graph)


def _median_s(func: object, *args: object) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        func(*args)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_login_costs_the_same_for_unknown_users(tmp_path: Path) -> None:
    from local_backend.api.users import UsersFile

    users = UsersFile(tmp_path / "users.json")
    users.add("alice", "right password")
    assert users.verify("alice", "right password") and not users.verify("nobody", "right password")
    known, unknown = _median_s(users.verify, "alice", "wrong"), _median_s(users.verify, "nobody", "wrong")
    assert 0.33 < unknown / known < 3.0, (known, unknown)  # before: unknown users were ~10x faster


@pytest.mark.parametrize("password, shown", [("a:b", "':'"), ("caf\u00e9", "'\u00e9'"), ("tab\there", "'\\t'")])
def test_users_add_refuses_passwords_basic_auth_cannot_carry(tmp_path: Path, password: str, shown: str) -> None:
    from local_backend.api.users import UsersFile

    with pytest.raises(UsersFileError, match=f"contains {re.escape(shown)}.*printable ASCII characters other than ':'"):
        UsersFile(tmp_path / "users.json").add("alice", password)
    assert not (tmp_path / "users.json").exists()


def test_users_add_cli_reports_refused_password(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("pass:word\n"))
    status, _, err = cli("users", "add", "--users", tmp_path / "users.json", "alice")
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert re.match(r"s1ndvi users add: error: The password for user 'alice' contains ':'.* User 'alice' not changed",
                    err)
    assert not (tmp_path / "users.json").exists()


def test_token_with_non_ascii_signature_is_invalid(tmp_path: Path) -> None:
    from local_backend.api.users import TokenSigner

    signer = TokenSigner.from_key_file(tmp_path / "token_key")
    token = signer.build("alice")
    assert signer.user_of(token) == "alice"
    assert signer.user_of(token[:-2] + "\u00e9\u00e9") is None
    assert signer.user_of("\u00e9." + token.split(".", 1)[1]) is None
    assert TokenSigner.from_key_file(tmp_path / "token_key").user_of(token) == "alice"  # same key after a restart
    assert (tmp_path / "token_key").stat().st_mode & 0o777 == 0o600
