"""Viewers never freeze silently: close codes, slow and dead readers, a log that restarted.

Against a real Daphne (a subprocess) on its own private Redis and database, which these
tests write, clobber and restart; the test run's shared Redis is left alone. Daphne runs
with a small unsent-bytes bound (256 KB) and a queue of 50 live events per catching-up
viewer, so the limits are reached with a log of a few MB. Clients are synchronous
(websockets' sync client, raw sockets): once a browser test has run, Playwright's sync
API runs an event loop in this thread.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from celery_live.log import events, store
from celery_live.processes.redis_server import RedisServer
from celery_live.stream.backpressure import reclaimer
from celery_live.stream.consumers import CATCH_UP_PATIENCE, Close
from tests.stack import Stack, start_web_only

MB = 2**20
MAX_BUFFER = 256 * 1024
QUEUE = 50


class PrivateStack:
    """Daphne on a Redis of its own, which a test may restart empty on the same port."""

    def __init__(self) -> None:
        self.redis_dir = Path(tempfile.mkdtemp(prefix="celery-live-viewers-"))
        self.redis = RedisServer(self.redis_dir, persist=False)
        self.redis.start()
        self.client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        self.web: Stack = start_web_only(
            REDIS_URL=self.redis.url,
            # Its own database too: a catch-up from 0 reads it, and other tests record theirs.
            DATABASE_URL=f"sqlite:///{self.redis_dir / 'db.sqlite3'}",
            CELERY_LIVE_VIEWER_MAX_BUFFER=str(MAX_BUFFER),
            CELERY_LIVE_VIEWER_QUEUE=str(QUEUE),
        )
        self.log_path = self.web.log_dir / "web.log"

    def ws_url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.web.port}/ws/events/{query}"

    @property
    def origin(self) -> str:
        """What a page of this dashboard sends (the socket must come from its own origin)."""
        return self.web.url

    def restart_redis_empty(self) -> None:
        self.redis.stop()
        self.redis = RedisServer(self.redis_dir, persist=False, port=self.redis.port)
        self.redis.start()

    def daphne_rss(self) -> int:
        return psutil.Process(self.web.web.pid).memory_info().rss

    def log_since(self, offset: int) -> str:
        return self.log_path.read_bytes()[offset:].decode(errors="replace")

    def stop(self) -> None:
        self.web.stop()
        self.client.close()
        self.redis.stop()


@pytest.fixture(scope="module")
def private():
    stack = PrivateStack()
    yield stack
    stack.stop()


@pytest.fixture
def log(private):
    """The private stack, its event log emptied."""
    private.client.delete(store.stream_key())
    return private


@pytest.fixture
def open_viewer(log):
    """Opens clients of `/ws/events/`, all closed after the test."""
    with contextlib.ExitStack() as clients:
        yield lambda query="": clients.enter_context(viewer(log, query))


def append(client: redis.Redis, count: int, pad: int = 0, event_id: str = "*") -> list[str]:
    """Log `count` events (of about `pad` + 200 bytes) straight into the stream; their ids."""
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        event = events.make_event("task.progress", task_id=f"t{i % 5}", data={"current": i, "pad": "x" * pad})
        pipe.xadd(store.stream_key(), {"e": events.encode(event), "seq": 0}, id=event_id)
    return pipe.execute()


def viewer(private: PrivateStack, query: str = "") -> ClientConnection:
    """A client of `/ws/events/{query}` (a context manager)."""
    return connect(
        private.ws_url(query), origin=private.origin, max_size=None, ping_interval=None, proxy=None
    )


def frames_until_closed(ws: ClientConnection, timeout: float = 20.0) -> tuple[list[dict], int | None]:
    """Every frame until the server closes; and its close code."""
    frames = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            frames.append(json.loads(ws.recv(timeout=deadline - time.monotonic())))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None


def ids_until(ws: ClientConnection, last: str, timeout: float = 20.0) -> list[str]:
    ids: list[str] = []
    deadline = time.monotonic() + timeout
    while not ids or ids[-1] != last:
        ids.append(json.loads(ws.recv(timeout=deadline - time.monotonic()))["id"])
    return ids


def append_history(private: PrivateStack, count: int, pad: int) -> list[str]:
    """`append` a history, and wait until Daphne's relay has read it (a viewer that catches
    up must not get it live as well); its ids, with the marker's that tells."""
    marker = f"marker-{time.monotonic_ns()}"
    # Connected first, and sent nothing but the marker: never behind, whatever the queue.
    with viewer(private, f"?task={marker}") as probe:
        history = append(private.client, count, pad=pad)
        event = events.make_event("task.sent", task_id=marker)
        history.append(private.client.xadd(store.stream_key(), {"e": events.encode(event), "seq": 1}))
        assert ids_until(probe, history[-1]) == history[-1:]
    return history


def raw_viewer(port: int, query: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little for it
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET /ws/events/{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n".encode()
    )
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Read what is left: True once the server has closed (or reset) the connection."""
    sock.settimeout(timeout)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def test_a_since_past_uint64_gets_an_error_frame_and_4400(log, open_viewer):
    ws = open_viewer(f"?since={2**64}-0")
    frames, code = frames_until_closed(ws)
    assert code == Close.BAD_REQUEST == 4400
    assert "since must be an event id" in frames[0]["error"]


def test_a_since_ahead_of_the_log_gets_a_resync_frame_and_4409(log, open_viewer):
    newest = append(log.client, 3)[-1]
    ws = open_viewer("?since=99999999999999-0")
    frames, code = frames_until_closed(ws)
    assert code == Close.RESYNC == 4409
    assert frames == [{"resync": True, "reason": "since is ahead of the event log", "last_id": newest}]


def test_a_viewer_behind_by_a_full_queue_gets_4408_and_then_catches_up_whole(log, open_viewer):
    history = append_history(log, 20_000, pad=300)  # ~10 MB: a catch-up that takes a while
    control = open_viewer()  # live only
    with ThreadPoolExecutor(1) as reader:
        behind = reader.submit(frames_until_closed, open_viewer("?since=0"))
        time.sleep(0.3)  # under way
        live = []
        for _ in range(5):  # 5 x 100 live events while it catches up: its queue holds 50
            live += append(log.client, 100)
            time.sleep(0.05)
        frames, code = behind.result()
    assert code == Close.BEHIND == 4408
    got = [f["id"] for f in frames]
    assert got == (history + live)[: len(got)]  # in order, no gap, until it was closed
    assert ids_until(control, live[-1]) == live  # the control viewer gets everything
    again = open_viewer(f"?since={got[-1] if got else 0}")  # reconnecting: the rest
    assert got + ids_until(again, live[-1]) == history + live


def test_sockets_that_never_read_are_closed_and_daphne_memory_comes_back(log):
    append_history(log, 20_000, pad=800)  # ~20 MB that each socket asks to replay
    offset = log.log_path.stat().st_size
    rss_before = log.daphne_rss()
    sockets = [raw_viewer(log.web.port, "?since=0") for _ in range(5)]
    peak = rss_before
    deadline = time.monotonic() + CATCH_UP_PATIENCE + 5
    while time.monotonic() < deadline and log.log_since(offset).count("bytes unsent") < len(sockets):
        peak = max(peak, log.daphne_rss())
        time.sleep(0.1)
    assert log.log_since(offset).count("bytes unsent") == len(sockets)
    # Without the bound Daphne buffered all 20 MB for each socket; with it, each holds
    # up to the bound (256 KB) plus one catch-up batch (1000 events, ~1 MB).
    assert peak - rss_before < 20 * MB, f"Daphne grew by {(peak - rss_before) / MB:.0f} MB"
    for sock in sockets:
        assert closed_by_server(sock, timeout=5)  # 4408, then dropped by autobahn after 1 s
        sock.close()
    deadline = time.monotonic() + reclaimer.interval + 5  # one reclaim every 10 s at most
    while (grown := log.daphne_rss() - rss_before) > 5 * MB and time.monotonic() < deadline:
        time.sleep(0.5)
    assert grown <= 5 * MB, f"Daphne kept {grown / MB:.0f} MB after the sockets were closed"


def test_a_consumer_failure_closes_with_4500(log, open_viewer):
    log.client.set(store.stream_key(), "not a stream")  # every read of the log now fails
    try:
        ws = open_viewer("?since=1-0")
        frames, code = frames_until_closed(ws)
    finally:
        log.client.delete(store.stream_key())
    assert frames == []
    assert code == Close.SERVER_ERROR == 4500


def test_redis_restarted_empty_under_a_live_daphne(log, open_viewer):
    watcher = open_viewer()
    first = append(log.client, 1)[0]
    assert ids_until(watcher, first) == [first]  # (the relay may still be backing off)

    # Restarted empty, Redis numbers new events from its clock: after every id it gave
    # before, so the viewer just goes on.
    log.restart_redis_empty()
    after_restart = append(log.client, 1)[0]
    assert ids_until(watcher, after_restart, timeout=10) == [after_restart]

    # A log whose ids went back (its clock did, or it was replaced) is ahead of nothing:
    # the relay follows the new log and every viewer is told to resync.
    future = append(log.client, 1, event_id="99999999999999-0")[0]
    assert ids_until(watcher, future) == [future]
    log.restart_redis_empty()
    frames, code = frames_until_closed(watcher, timeout=15)
    assert code == Close.RESYNC == 4409
    reason = "the event log restarted (Redis lost its data)"
    assert frames == [{"resync": True, "reason": reason, "last_id": "0-0"}]

    stale = open_viewer(f"?since={future}")  # what an open page sends now
    assert frames_until_closed(stale)[1] == Close.RESYNC
    fresh = open_viewer()
    new = append(log.client, 3)
    assert ids_until(fresh, new[-1]) == new  # live again from the new log


@pytest.mark.parametrize("path", ["/ws/events/", "/ws/page/"])
def test_whatever_a_client_sends_is_ignored_and_its_socket_stays_live(log, path):
    """Text, JSON, NUL, lone surrogates (escaped), binary, 1 MB frames, pings: the sockets
    act on nothing a client sends; each frame leaves the socket live and Daphne answering."""
    url = f"ws://127.0.0.1:{log.web.port}{path}"
    frames: list[str | bytes] = [
        "garbage",
        '{"since": "0-0", "task": "x", "view": "list"}',
        "\x00" * 16,
        '"\\ud800"',
        bytes(range(256)),
        "x" * MB,
        b"\xff" * MB,
    ]
    with connect(url, origin=log.origin, max_size=None, ping_interval=None, proxy=None) as ws:
        for frame in frames:
            ws.send(frame)
        ws.ping().wait(5)
        [event_id] = append(log.client, 1)
        deadline = time.monotonic() + 10
        while event_id not in ws.recv(timeout=deadline - time.monotonic()):
            pass  # the page's socket sends HTML fragments: the id is in them too
    with viewer(log) as fresh:
        [later] = append(log.client, 1)
        assert ids_until(fresh, later)[-1] == later
