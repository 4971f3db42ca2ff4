"""Presenter mode's socket (`/ws/present/`) in login mode: who may not view is refused with
4401/4403 and one frame saying why; a viewer may follow but not present; who may launch
presents, and followers see their name.

Against a real Daphne in login mode (tests/stack.py), on a database of its own where the
users, their sessions and tokens are made (tests/users.py), as in test_auth. Clients are
synchronous (websockets' sync client).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable

import pytest
from websockets.sync.client import ClientConnection, connect

from celery_live.access import DENIED, Action
from celery_live.stream.consumers import Close
from tests.celery_live.stream.test_auth import assert_refused, session, token
from tests.stack import Stack
from tests.users import create_users


@pytest.fixture(scope="module")
def users(web: Stack) -> dict[str, dict[str, str]]:
    """nobody has no permission, watcher may view (viewers), olga may also launch (operators)."""
    return create_users(web, {"nobody": None, "watcher": "viewers", "olga": "operators"})


def tab(web: Stack, headers: dict[str, str] | None = None) -> ClientConnection:
    """A browser tab's presenter socket (a seat of its own), from a page of the dashboard."""
    return connect(
        f"ws://127.0.0.1:{web.port}/ws/present/?seat={secrets.token_hex(8)}",
        origin=web.url,
        additional_headers=headers,
        ping_interval=None,
        proxy=None,
        open_timeout=10,
    )


def send(ws: ClientConnection, **frame) -> None:
    ws.send(json.dumps(frame))


def expect(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict:
    """The next frame of type `kind`, past any state frames (counts change all the time);
    any other frame fails."""
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if frame.get("type") == kind:
            return frame
        assert frame.get("type") == "state", frame


def state_where(ws: ClientConnection, predicate: Callable[[dict], bool], timeout: float = 5.0) -> dict:
    """The first state frame (skipping others) for which `predicate` holds."""
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if frame.get("type") == "state" and predicate(frame):
            return frame


def test_an_anonymous_tab_is_refused_with_4401(web):
    with tab(web) as ws:
        assert_refused(ws, Close.LOGIN_REQUIRED)


@pytest.mark.parametrize("credentials", [session, token])
def test_a_user_who_may_not_view_is_refused_with_4403(web, users, credentials):
    key = users["nobody"]["session" if credentials is session else "token"]
    with tab(web, credentials(key)) as ws:
        assert_refused(ws, Close.FORBIDDEN)


def test_a_viewer_may_follow_but_only_a_launcher_presents_under_their_name(web, users):
    with tab(web, session(users["watcher"]["session"])) as viewer:
        assert expect(viewer, "state")["can_present"] is False
        send(viewer, action="present", path="/")
        assert expect(viewer, "error")["error"] == DENIED[Action.LAUNCH]

        with tab(web, token(users["olga"]["token"])) as operator:
            state = expect(operator, "state")
            assert state["can_present"] is True
            assert state["presenter"] is None  # the viewer's attempt changed nothing
            send(operator, action="present", path="/runs/")
            state = state_where(viewer, lambda f: f["presenter"] is not None)
            assert state["presenter"] == {"name": "olga", "path": "/runs/"}
            assert state["role"] == "viewer"

            send(viewer, action="follow")
            assert state_where(viewer, lambda f: f["watching"] == 1)["role"] == "follower"
            send(operator, action="navigate", path="/workers/")
            assert expect(viewer, "navigate") == {"type": "navigate", "path": "/workers/"}
