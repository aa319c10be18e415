"""The one parser of HTTP Basic credentials, shared by the authenticator and the login limiter.

Before it, openeo-driver's authenticator decoded the header leniently (``base64.b64decode`` drops characters outside
the alphabet) while the limiter decoded it strictly and counted an unreadable header for the user ``""``: inserting
one ``!`` into the base64 let a locked user log in. Now both call :func:`parse_basic`, so a header either means the
same user to both or is refused (401 ``AuthenticationRequired``) before any password is checked.
"""

import base64
import binascii
import re
import string
from dataclasses import dataclass

from local_backend.errors import CredentialsMalformed

__all__ = ["BasicCredentials", "canonical_user", "parse_basic"]

_NAME_CHARS = frozenset(string.ascii_letters + string.digits + ".-_")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
MAX_HEADER_CHARS = 4096
"""Longer Basic headers are refused without decoding (a user name is at most 64 characters)."""


@dataclass(frozen=True)
class BasicCredentials:
    """A user name (canonical, see :func:`canonical_user`) and a password."""

    user: str
    password: str = ""


def canonical_user(name: str) -> str | None:
    """``name`` when it can be a user name of this server (1-64 ASCII letters, digits, ``.-_``), else None.

    User names are compared exactly (case-sensitive), so the canonical form is the name itself; anything else
    (non-ASCII look-alikes, spaces, empty) names no user and is refused rather than mapped.
    """
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
        return None
    return name


def parse_basic(header: str | None) -> BasicCredentials:
    """Credentials of an ``Authorization: Basic <base64(user:password)>`` header, strictly.

    Strict: the scheme is ``Basic`` (any case, RFC 7617), one space, then standard base64 with correct padding and
    no other character; the decoded text is UTF-8 holding a ``:``; the user name is canonical.

    Raises:
        CredentialsMalformed: (401) naming what is wrong; nothing is decoded leniently.
    """
    if not header:
        raise CredentialsMalformed("No Authorization header: log in with HTTP Basic authentication.")
    if len(header) > MAX_HEADER_CHARS:
        raise CredentialsMalformed(f"The Authorization header is longer than {MAX_HEADER_CHARS} characters.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        raise CredentialsMalformed(f"The Authorization scheme must be 'Basic' here, got {scheme[:20]!r}.")
    if not _B64.fullmatch(token) or len(token) % 4:
        raise CredentialsMalformed("The Basic credentials are not valid base64 (only A-Z a-z 0-9 + / and '=' "
                                   "padding to a multiple of 4 characters).")
    try:
        text = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise CredentialsMalformed(f"The Basic credentials do not decode to UTF-8 'user:password' ({exc}).") from exc
    name, colon, password = text.partition(":")
    if not colon:
        raise CredentialsMalformed("The Basic credentials hold no ':' between user name and password.")
    user = canonical_user(name)
    if user is None:
        raise CredentialsMalformed("The user name in the Basic credentials is not a valid user name (1-64 ASCII "
                                   "letters, digits, '.', '-' or '_').")
    return BasicCredentials(user=user, password=password)
