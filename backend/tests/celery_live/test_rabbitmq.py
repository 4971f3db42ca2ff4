"""The whole stack with RabbitMQ as the broker: Daphne, a prefork worker and the recorder
(the event log and the results stay in the test run's Redis), driven through the API and
watched live over `/ws/events/`.

Needs a RabbitMQ at `CELERY_LIVE_TEST_AMQP_URL` (default the local guest account); when
none answers the module is skipped, saying so: the test starts and installs nothing. Its
tasks go to a queue of its own (`CELERY_TASK_DEFAULT_QUEUE`), deleted afterwards, so other
workers on the same RabbitMQ neither take them nor give it theirs.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
from kombu import Connection
from websockets.sync.client import ClientConnection, connect

from celery_live.runs import history
from tests.stack import Stack

AMQP_URL = os.environ.get("CELERY_LIVE_TEST_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672//"


def rabbitmq_reachable(url: str) -> str | None:
    """Why RabbitMQ at `url` cannot be used, or None."""
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="module")
def rabbit_stack():
    if (why := rabbitmq_reachable(AMQP_URL)) is not None:
        where = Connection(AMQP_URL).as_uri()  # its password masked
        pytest.skip(f"RabbitMQ at {where} cannot be used ({why}); CELERY_LIVE_TEST_AMQP_URL names another")
    queue = f"celery-live-test-{uuid.uuid4().hex[:8]}"
    stack = Stack()
    stack.env.update(CELERY_BROKER_URL=AMQP_URL, CELERY_TASK_DEFAULT_QUEUE=queue)
    try:
        stack.migrate()
        stack.start_recorder()
        stack.start_web()
        stack.spawn_worker(f"rabbit-{stack.port}", queue, concurrency=1)
        yield stack
    finally:
        stack.stop()
        with Connection(AMQP_URL, connect_timeout=3) as connection:
            connection.default_channel.queue_delete(queue)


def events_socket(stack: Stack) -> ClientConnection:
    """`/ws/events/` from now on, as a page of the dashboard opens it."""
    since = history.last_event_id()
    return connect(
        f"ws://127.0.0.1:{stack.port}/ws/events/?since={since}",
        origin=stack.url,
        ping_interval=None,
        proxy=None,
    )


def watch(ws: ClientConnection, until, timeout: float = 30.0) -> list[dict]:
    """Frames until `until(frames)` holds (in arrival order)."""
    frames: list[dict] = []
    deadline = time.monotonic() + timeout
    while not until(frames):
        frames.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
    return frames


def of(frames: list[dict], task_id: str) -> list[str]:
    return [frame["type"] for frame in frames if frame.get("task_id") == task_id]


def test_a_run_launched_through_the_api_succeeds_live_over_rabbitmq(rabbit_stack):
    health = rabbit_stack.api("/healthz")
    assert (health["redis"], health["database"]) == ("ok", "ok")
    assert health["workers"] >= 1  # the workers answered a ping through RabbitMQ
    with events_socket(rabbit_stack) as ws:
        launched = rabbit_stack.api(
            "/api/tasks/", {"kind": "example", "message": "Rabbit", "count": 2, "delay": 0}
        )
        task_id = launched["task_id"]
        frames = watch(ws, lambda frames: "task.succeeded" in of(frames, task_id))
    assert of(frames, task_id) == [
        "task.sent",
        "task.received",
        "task.started",
        "task.progress",
        "task.progress",
        "task.succeeded",
    ]
    received = next(f for f in frames if f["task_id"] == task_id and f["type"] == "task.received")
    assert received["worker"].startswith(f"rabbit-{rabbit_stack.port}@")
    run = rabbit_stack.api(f"/api/tasks/{task_id}/")
    assert (run["state"], run["result"]["status"], run["queue"]) == (
        "SUCCESS",
        "completed",
        rabbit_stack.env["CELERY_TASK_DEFAULT_QUEUE"],
    )


def test_a_running_run_is_terminated_and_a_queued_one_revoked_over_rabbitmq(rabbit_stack):
    slow = {"kind": "example", "message": "Slow", "count": 60, "delay": 0.5}
    with events_socket(rabbit_stack) as ws:
        running = rabbit_stack.api("/api/tasks/", slow)["task_id"]
        watch(ws, lambda frames: "task.started" in of(frames, running))
        queued = rabbit_stack.api("/api/tasks/", slow)["task_id"]  # behind it: one pool process
        revoked = rabbit_stack.api(f"/api/tasks/{queued}/revoke", {})
        terminated = rabbit_stack.api(f"/api/tasks/{running}/revoke", {"terminate": True})
        assert (revoked["status"], terminated["status"]) == ("requested", "requested")
        frames = watch(
            ws, lambda frames: "task.revoked" in of(frames, running) and "task.revoked" in of(frames, queued)
        )
    assert "task.started" not in of(frames, queued)
    ends = {f["task_id"]: f for f in frames if f["type"] == "task.revoked"}
    assert ends[running]["data"]["terminated"] is True
    assert rabbit_stack.api(f"/api/tasks/{running}/")["state"] == "REVOKED"
    assert rabbit_stack.api(f"/api/tasks/{queued}/")["state"] == "REVOKED"
