"""The backend's commands through the ``s1ndvi`` entry: what they say they did, and one-line user errors."""

import io
from pathlib import Path

import pytest

from tests.local_backend.conftest import Server

PASSWORD = "Correct-horse-battery-staple-9\n"


def test_users_add_says_what_it_wrote(cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD))
    status, out, _ = cli("users", "add", "--users", users, "dana")
    assert status == 0 and out.strip() == f"Added user 'dana' in {users}"
    monkeypatch.setattr("sys.stdin", io.StringIO("Another-long-passphrase-77\n"))
    assert cli("users", "add", "--users", users, "dana")[1].strip() == f"Updated user 'dana' in {users}"


def test_broken_users_file_is_one_line(cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    users.write_text("{not json")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD))
    status, _, err = cli("users", "add", "--users", users, "dana")
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"s1ndvi users add: error: Users file '{users}' is not a valid users file")


def test_users_add_differing_passwords_is_one_line(cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    typed = iter(["Correct-horse-battery-staple-9", "Correct-horse-battery-staple-8"])
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    users = tmp_path / "users.json"
    status, _, err = cli("users", "add", "--users", users, "dana")
    assert status == 2 and err.strip().splitlines() == [
        "s1ndvi users add: error: The two passwords differ. User 'dana' not changed."]
    assert not users.exists()


def test_public_bind_without_users_is_one_line(cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("openeo_driver")
    monkeypatch.setattr("signal.signal", lambda *args: None)  # keep pytest's own SIGTERM handling
    status, _, err = cli("serve", "--host", "0.0.0.0", "--state", tmp_path, "--users", tmp_path / "none.json",
                         "--workers", "0")
    lines = err.strip().splitlines()
    assert status == 2 and lines[-1].startswith("s1ndvi serve: error: Refusing to listen on 0.0.0.0 without users")


def test_serve_prints_its_url_and_where_its_state_lives(server: Server) -> None:
    log = server.log.read_text()
    assert (f"s1ndvi local openEO backend on {server.url} (collections: {server.data}; state: {server.state}; "
            f"users: {server.users}); Ctrl+C stops it") in log
