"""Only the dashboard's own pages (scheme, host and port) and trusted origins open its sockets."""

import pytest
from channels.testing import WebsocketCommunicator

from celery_live.stream.origin import SameOriginValidator, is_allowed_origin
from config.asgi import application


def scope(origin=None, host="localhost:8000", scheme="ws"):
    headers = [(b"host", host.encode())] if host else []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": headers}


@pytest.mark.parametrize(
    ("origin", "host", "scheme"),
    [
        ("http://localhost:8000", "localhost:8000", "ws"),
        ("http://127.0.0.1", "127.0.0.1", "ws"),  # default ports on both sides
        ("http://127.0.0.1:80", "127.0.0.1", "ws"),
        ("https://localhost", "localhost", "wss"),
        ("https://localhost:443", "localhost:443", "wss"),
    ],
)
def test_the_dashboards_own_origin_is_let_in(origin, host, scheme):
    assert is_allowed_origin(scope(origin, host, scheme))


@pytest.mark.parametrize(
    ("origin", "host", "scheme"),
    [
        ("http://localhost:9999", "localhost:8000", "ws"),  # another port of the same host
        ("http://evil.example", "localhost:8000", "ws"),
        ("https://localhost:8000", "localhost:8000", "ws"),  # another scheme
        ("http://localhost", "localhost", "wss"),
        ("http://evil.example:8000", "evil.example:8000", "ws"),  # a Host not in ALLOWED_HOSTS
        (None, "localhost:8000", "ws"),  # no Origin
        ("http://localhost:8000", "", "ws"),  # no Host
        ("null", "localhost:8000", "ws"),  # a sandboxed or file page
        ("http://localhost:99999", "localhost:8000", "ws"),  # not a port
    ],
)
def test_another_origin_is_refused(origin, host, scheme):
    assert not is_allowed_origin(scope(origin, host, scheme))


def test_a_trusted_origin_is_let_in(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://dashboard.example.com"]
    assert is_allowed_origin(scope("https://dashboard.example.com", "localhost:8000", "ws"))


@pytest.mark.parametrize(
    ("origin", "connected"),
    [("http://localhost:8000", True), ("http://localhost:9999", False)],
)
async def test_the_socket_handshake_follows_the_check(origin, connected):
    headers = [(b"origin", origin.encode()), (b"host", b"localhost:8000")]
    communicator = WebsocketCommunicator(application, "/ws/events/?since=0-0", headers=headers)
    accepted, _ = await communicator.connect()
    assert accepted is connected
    await communicator.disconnect()


async def test_other_connections_pass_through():
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    await SameOriginValidator(inner)({"type": "http", "headers": []}, None, None)
    assert seen == ["http"]
