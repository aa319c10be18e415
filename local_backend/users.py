"""Users with scrypt-hashed passwords (never plain text on disk) and signed basic-auth access tokens.

The users file is JSON ``{"users": {NAME: {"password": "scrypt$N$r$p$SALT$HASH"}}}`` written with mode 0600. It is
re-read when it changes, so ``s1ndvi users add`` takes effect on a running server.
"""

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

from local_backend.errors import UsersFileError

_log = logging.getLogger(__name__)

_N, _R, _P = 2**14, 8, 1
TOKEN_LIFETIME_S = 24 * 3600
"""How long an access token from ``GET /credentials/basic`` is valid."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` of a password with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                         dklen=len(_unb64(digest)))
    return hmac.compare_digest(got, _unb64(digest))


def _valid_name(name: str) -> None:
    if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum() or len(name) > 64:
        raise UsersFileError(f"User name {name!r} is invalid: use 1-64 letters, digits, '.', '-' or '_'.")


class UsersFile:
    """The users file: read, verify, add/update."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._cache: tuple[float, dict[str, Any]] | None = None

    def users(self) -> dict[str, Any]:
        """Name → record; an absent file has no users."""
        if not self.path.exists():
            return {}
        mtime = self.path.stat().st_mtime
        if self._cache is None or self._cache[0] != mtime:
            try:
                data = json.loads(self.path.read_text())
                users = dict(data["users"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UsersFileError(f"Users file '{self.path}' is not a valid users file: {exc}") from exc
            self._cache = (mtime, users)
        return self._cache[1]

    def verify(self, name: str, password: str) -> bool:
        """Whether the user exists and the password is right."""
        record = self.users().get(name)
        ok = record is not None and check_password(password, str(record.get("password", "")))
        if not ok:
            _log.warning("Failed basic authentication for user %r", name)
        return ok

    def add(self, name: str, password: str) -> bool:
        """Add or update a user; returns True when the user is new."""
        _valid_name(name)
        if not password:
            raise UsersFileError(f"Empty password for user {name!r}.")
        users = dict(self.users())
        new = name not in users
        users[name] = {"password": hash_password(password)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"users": users}, handle, indent=2)
        os.replace(tmp, self.path)
        os.chmod(self.path, 0o600)
        self._cache = None
        return new


class TokenSigner:
    """HMAC-signed access tokens ``user.expiry.signature`` (openeo-driver's default token is unsigned)."""

    def __init__(self, secret: bytes | None = None, lifetime_s: int = TOKEN_LIFETIME_S) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.lifetime_s = lifetime_s

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("utf-8"), hashlib.sha256).digest())

    def build(self, user_id: str) -> str:
        """A token for ``user_id`` valid for :attr:`lifetime_s`."""
        payload = f"{_b64(user_id.encode('utf-8'))}.{int(time.time()) + self.lifetime_s}"
        return f"{payload}.{self._sign(payload)}"

    def user_of(self, token: str) -> str | None:
        """The user id of a valid, unexpired token, else None."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        payload = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign(payload), parts[2]) or int(parts[1]) < time.time():
            return None
        return _unb64(parts[0]).decode("utf-8")
