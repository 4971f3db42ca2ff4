"""Who may open the sockets: in login mode a session or an API token lets a viewer in,
anyone else is refused with 4401/4403 and one frame saying why, before any event.

Against a real Daphne in login mode (tests/stack.py), on a database of its own where the
users, their sessions and tokens are made (tests/users.py). Clients are synchronous
(websockets' sync client), as in test_viewer_faults.
"""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from celery_live.access import DENIED, Action
from celery_live.log import publishing
from celery_live.stream.auth import token_key
from celery_live.stream.consumers import Close
from config.asgi import application
from tests.stack import Stack
from tests.users import create_users

SOCKETS = ("/ws/events/", "/ws/page/")
LOGIN_URL = "/accounts/login/"


@pytest.fixture(scope="module")
def users(web: Stack) -> dict[str, dict[str, str]]:
    """Two users: watcher may view (the viewers group), nobody has no permission."""
    return create_users(web, {"watcher": "viewers", "nobody": None})


@pytest.fixture
def sent() -> dict:
    """An event logged before the socket opens: a socket let in with `since=0-0` gets it."""
    return publishing.publish("task.sent", task_id=f"auth-{time.monotonic_ns()}", name="n")


def socket(
    web: Stack, path: str = "/ws/events/", origin: str | None = None, headers: dict | None = None
) -> ClientConnection:
    """A client of `path` from `origin` (default: a page of the dashboard), since the log's start."""
    return connect(
        f"ws://127.0.0.1:{web.port}{path}?since=0-0",
        origin=origin or web.url,
        additional_headers=headers,
        ping_interval=None,
        proxy=None,
        open_timeout=10,
    )


def session(key: str) -> dict[str, str]:
    return {"Cookie": f"sessionid={key}"}


def token(key: str) -> dict[str, str]:
    return {"Authorization": f"Token {key}"}


def frames_until_closed(ws: ClientConnection, timeout: float = 10.0) -> tuple[list[str], int | None]:
    """Every frame until the server closes; and its close code."""
    frames = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            frames.append(ws.recv(timeout=deadline - time.monotonic()))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None


def receives(ws: ClientConnection, event: dict, timeout: float = 10.0) -> bool:
    """Whether `ws` gets a frame about `event`'s task (a JSON event, or the page's HTML)."""
    deadline = time.monotonic() + timeout
    while True:
        if event["task_id"] in ws.recv(timeout=deadline - time.monotonic()):
            return True


def assert_refused(ws: ClientConnection, code: Close) -> None:
    frames, closed_with = frames_until_closed(ws)
    assert closed_with == code
    assert [json.loads(frame) for frame in frames] == [{"error": DENIED[Action.VIEW], "login_url": LOGIN_URL}]


@pytest.mark.parametrize("path", SOCKETS)
def test_an_anonymous_socket_is_refused_with_4401_and_no_event(web, sent, path):
    with socket(web, path) as ws:
        assert_refused(ws, Close.LOGIN_REQUIRED)


def test_a_user_without_the_view_permission_is_refused_with_4403(web, users, sent):
    with socket(web, headers=token(users["nobody"]["token"])) as ws:
        assert_refused(ws, Close.FORBIDDEN)


@pytest.mark.parametrize("path", SOCKETS)
def test_a_session_of_a_user_who_may_view_is_let_in_and_gets_events(web, users, sent, path):
    with socket(web, path, headers=session(users["watcher"]["session"])) as ws:
        assert receives(ws, sent)


def test_an_api_token_of_a_user_who_may_view_is_let_in_and_gets_events(web, users, sent):
    with socket(web, headers=token(users["watcher"]["token"])) as ws:
        assert receives(ws, sent)


@pytest.mark.parametrize("header", ["Token not-a-token", "Token ", "token"])
def test_a_bad_token_is_anonymous_even_with_a_session(web, users, sent, header):
    headers = {**session(users["watcher"]["session"]), "Authorization": header}
    with socket(web, headers=headers) as ws:
        assert_refused(ws, Close.LOGIN_REQUIRED)


def test_a_foreign_origin_is_refused_at_the_handshake_even_with_a_valid_token(web, users):
    with pytest.raises(InvalidStatus) as refused:
        socket(web, origin="http://evil.example", headers=token(users["watcher"]["token"]))
    assert refused.value.response.status_code == 403


async def test_login_free_lets_an_anonymous_socket_in():
    """Login mode off (the test settings), through the demo's asgi.py: no user needed."""
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    event = await sync_to_async(publishing.publish)("task.sent", task_id="login-free", name="n")
    assert json.loads(await communicator.receive_from(5))["id"] == event["id"]
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ([(b"authorization", b"Token abc123")], "abc123"),
        ([(b"Authorization", b"token  abc123 ")], "abc123"),  # DRF's keyword, any case
        ([(b"authorization", b"Token")], ""),  # malformed: a bad token, not none
        ([(b"authorization", b"Bearer abc123")], None),  # not ours
        ([(b"cookie", b"sessionid=x")], None),
    ],
)
def test_the_token_is_read_from_the_authorization_header(headers, key):
    assert token_key({"headers": headers}) == key
