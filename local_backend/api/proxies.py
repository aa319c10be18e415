"""The client address of a request: ``X-Forwarded-*`` count only when the peer is a trusted reverse proxy.

openeo-driver wraps its app in werkzeug's ``ProxyFix``, which believes every client's ``X-Forwarded-For`` and
``X-Forwarded-Proto``. :func:`install` replaces it by :class:`TrustedProxies`. By default no proxy is trusted
and the address is the TCP peer's: a client cannot pick the address the login limiter counts against by sending
its own ``X-Forwarded-For`` (before, 60 wrong logins with a new header value each never met a 429).
``s1ndvi serve --trusted-proxy ADDR`` (repeatable; an address or a network) names the proxies;
from them, the address is the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy (entries
left of it were written by the client and prove nothing).
"""

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

__all__ = ["ClientAddress", "TrustedProxies", "install"]

_log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"--trusted-proxy {text!r} is not an IP address or network (e.g. 127.0.0.1, "
                         f"10.0.0.0/8).") from exc


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class ClientAddress:
    """Resolves a request's client address from its peer and ``X-Forwarded-For``."""

    trusted: tuple[Network, ...] = field(default=())

    @classmethod
    def from_options(cls, proxies: Iterable[str]) -> "ClientAddress":
        """From ``--trusted-proxy`` values.

        Raises:
            ValueError: for a value that is not an address or network.
        """
        return cls(tuple(_network(p) for p in proxies))

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in net for net in self.trusted)

    def trusts(self, peer: str | None) -> bool:
        """Whether ``peer`` is one of the trusted proxies."""
        return bool(self.trusted) and self._is_trusted(_address(peer or ""))

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        """The address to count a request against (the peer unless it is a trusted proxy that forwarded one)."""
        peer = peer or "?"
        if not self.trusted or not forwarded_for or not self._is_trusted(_address(peer)):
            return peer
        for entry in reversed(forwarded_for.split(",")):
            address = _address(entry)
            if address is None:
                return peer  # a garbled hop: the proxy's own address is the most we know
            if not self._is_trusted(address):
                return str(address)
        return peer


class TrustedProxies:
    """WSGI middleware trusting ``X-Forwarded-For``/``-Proto`` from trusted proxies only.

    From a trusted proxy, ``REMOTE_ADDR`` and the URL scheme come from ``X-Forwarded-For`` and
    ``X-Forwarded-Proto``; from anyone else every ``X-Forwarded-*``/``Forwarded`` header is dropped.
    """

    def __init__(self, app: Callable[..., Any], client: ClientAddress) -> None:
        self.app, self.client = app, client

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Rewrite ``environ`` and call the wrapped app."""
        peer = environ.get("REMOTE_ADDR")
        if self.client.trusts(peer):
            environ["REMOTE_ADDR"] = self.client.resolve(peer, environ.get("HTTP_X_FORWARDED_FOR"))
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        else:
            for key in [k for k in environ if k.startswith("HTTP_X_FORWARDED_") or k == "HTTP_FORWARDED"]:
                del environ[key]
        return self.app(environ, start_response)


def install(app: Any, client: ClientAddress) -> None:
    """Replace openeo-driver's ``ProxyFix`` (which trusts any client) on a Flask ``app`` by :class:`TrustedProxies`."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    inner = app.wsgi_app
    if isinstance(inner, ProxyFix):
        inner = inner.app
    app.wsgi_app = TrustedProxies(inner, client)
    if client.trusted:
        _log.info("Trusting X-Forwarded-For/-Proto from %s", ", ".join(str(n) for n in client.trusted))
