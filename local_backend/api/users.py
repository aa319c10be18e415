"""Users with scrypt-hashed passwords (never plain text on disk) and signed basic-auth access tokens.

The users file is JSON ``{"users": {NAME: {"password": "scrypt$N$r$p$SALT$HASH"}}}`` written with mode 0600. It is
re-read when it changes, so ``s1ndvi users add`` takes effect on a running server. A login for an unknown user costs
the same scrypt as one for a known user (user names cannot be told apart by timing). Token signing keys live in
a file of the state folder (mode 0600), so tokens stay valid across restarts until they expire.
"""

import base64
import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import string
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


_NAME_CHARS = frozenset(string.ascii_letters + string.digits + ".-_")
_PASSWORD_CHARS = frozenset(c for c in string.printable if c not in ":\t\n\r\x0b\x0c")


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked against for unknown users, so that their failed login costs as much as a known user's."""
    return hash_password(secrets.token_urlsafe(16))


def _valid_name(name: str) -> None:
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
        raise UsersFileError(f"User name {name!r} is invalid: use 1-64 ASCII letters, digits, '.', '-' or '_'.")


def _valid_password(name: str, password: str) -> None:
    """Refuse passwords that HTTP basic authentication cannot carry to this server.

    The user and password travel as ``base64(user:password)``: the server splits at ':' (so a password with ':'
    could never log in), the stock client encodes Latin-1 while openeo-driver decodes UTF-8 (so only ASCII is the
    same on both sides), and control characters do not survive terminals and headers.
    """
    if not password:
        raise UsersFileError(f"Empty password for user {name!r}.")
    bad = sorted({c for c in password if c not in _PASSWORD_CHARS})
    if bad:
        raise UsersFileError(
            f"The password for user {name!r} contains {', '.join(repr(c) for c in bad)}, which HTTP basic "
            f"authentication cannot carry to this server: use printable ASCII characters other than ':'.")


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
        stored = str(record.get("password", "")) if isinstance(record, dict) else _dummy_hash()
        ok = check_password(password, stored) and record is not None
        if not ok:
            _log.warning("Failed basic authentication for user %r", name)
        return ok

    def add(self, name: str, password: str) -> bool:
        """Add or update a user; returns True when the user is new."""
        _valid_name(name)
        _valid_password(name, password)
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


def load_or_create_key(path: Path) -> bytes:
    """The 32-byte secret in ``path``, created (mode 0600) when missing.

    Raises:
        UsersFileError: when the file exists but does not hold a 32-byte key.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    os.chmod(path, 0o600)
    key = path.read_bytes()
    if len(key) != 32:
        raise UsersFileError(f"Token key file '{path}' holds {len(key)} bytes, expected 32; delete it to create a "
                             f"new one (this logs every user out).")
    return key


class TokenSigner:
    """HMAC-signed access tokens ``user.expiry.signature`` (openeo-driver's default token is unsigned)."""

    def __init__(self, secret: bytes | None = None, lifetime_s: int = TOKEN_LIFETIME_S) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.lifetime_s = lifetime_s

    @classmethod
    def from_key_file(cls, path: Path, lifetime_s: int = TOKEN_LIFETIME_S) -> "TokenSigner":
        """A signer whose key is kept in ``path`` (see :func:`load_or_create_key`)."""
        return cls(load_or_create_key(path), lifetime_s)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("utf-8"), hashlib.sha256).digest())

    def build(self, user_id: str) -> str:
        """A token for ``user_id`` valid for :attr:`lifetime_s`."""
        payload = f"{_b64(user_id.encode('utf-8'))}.{int(time.time()) + self.lifetime_s}"
        return f"{payload}.{self._sign(payload)}"

    def user_of(self, token: str) -> str | None:
        """The user id of a valid, unexpired token, else None."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isascii() or not parts[1].isdigit():
            return None
        payload = f"{parts[0]}.{parts[1]}"
        try:
            signature = parts[2].encode("ascii")
            if not hmac.compare_digest(self._sign(payload).encode("ascii"), signature) or int(parts[1]) < time.time():
                return None
            return _unb64(parts[0]).decode("utf-8")
        except (UnicodeError, ValueError):  # non-ASCII signature, undecodable user part
            return None
