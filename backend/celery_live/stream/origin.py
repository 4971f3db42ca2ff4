"""Which pages may open the dashboard's sockets: its own, and the origins the host trusts.

A browser lets any page open a WebSocket anywhere and sends the page's Origin; the server
must refuse foreign ones, or another site could read every event. Channels'
`AllowedHostsOriginValidator` compares the Origin's host name with ALLOWED_HOSTS only, so
a page served from another port of the same host (`http://localhost:9999`: any local dev
server) was accepted. Here the Origin must be the dashboard's own origin, scheme, host and
port (what the browser asked for: the Host header, and `wss` for `https`), or be listed in
`CSRF_TRUSTED_ORIGINS`; the Host must be one of ALLOWED_HOSTS, as Django checks for HTTP.
A missing Origin is refused too (browsers always send one).

Behind a proxy that ends TLS, Daphne sees `ws`: run it with `--proxy-headers` (it then
takes the scheme from X-Forwarded-Proto), or list the public origin in CSRF_TRUSTED_ORIGINS.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def header(scope: dict[str, Any], name: bytes) -> str:
    """The value of the header `name` (lower case) in a socket's `scope`, "" if absent."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _endpoint(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of `scheme://netloc`, the port made explicit; None if malformed."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname, port


def _allowed_hosts() -> list[str]:
    """ALLOWED_HOSTS, with the local names Django allows while DEBUG has none set."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def is_allowed_origin(scope: dict[str, Any]) -> bool:
    """Whether the socket `scope` describes comes from a page the dashboard may serve."""
    origin, host = header(scope, b"origin"), header(scope, b"host")
    if not origin or not host or not validate_host(split_domain_port(host)[0], _allowed_hosts()):
        return False
    if origin in getattr(settings, "CSRF_TRUSTED_ORIGINS", ()):
        return True
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    page = urlsplit(origin)
    own = _endpoint(scheme, host)
    return own is not None and _endpoint(page.scheme, page.netloc) == own


class SameOriginValidator:
    """ASGI middleware for the host's `"websocket"` route: refuses (403 at the handshake)
    a socket whose Origin is not the dashboard's own or a trusted one."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not is_allowed_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
