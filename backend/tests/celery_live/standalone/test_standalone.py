"""`celery-live` watching another team's plain Celery cluster, for real.

The command runs as a user runs it (`python -m celery_live.standalone`, a clean
environment that cannot import the demo host), the cluster is tests/plain_celery's app (no
Django, no celery_live) with a real `-E` prefork worker on the same broker. Its tasks go
sent -> received -> started -> succeeded (or failed) on a `/ws/events/` socket, in the API
and on the pages; its worker is online, then offline after SIGTERM; Ctrl-C stops every
process the command started and exits 0. On Redis the log lives in the broker's Redis
(another database of the test run's, under keys of its own); on RabbitMQ (skipped when
none answers) in a private Redis the command starts in its data directory.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests
from kombu import Connection
from websockets.sync.client import ClientConnection, connect

from celery_live.log.vocabulary import EventType, State
from celery_live.processes.redis_server import free_port
from celery_live.processes.supervisor import port_is_free
from tests.celery_live.standalone import Running, alive, run_cli
from tests.celery_live.test_rabbitmq import AMQP_URL, rabbitmq_reachable
from tests.helpers import wait_for
from tests.plain_celery import ADD, FAIL, SLEEP, PlainCelery

#: The test run's Redis database the Redis variant's cluster uses as its broker.
BROKER_DB = 11
SUCCEEDED = [EventType.TASK_SENT, EventType.TASK_RECEIVED, EventType.TASK_STARTED, EventType.TASK_SUCCEEDED]
FAILED = [*SUCCEEDED[:-1], EventType.TASK_FAILED]


def get(running: Running, path: str) -> tuple[int, str]:
    """GET `path`: its status and body."""
    response = requests.get(running.url + path, timeout=10)
    return response.status_code, response.text


def api(running: Running, path: str) -> dict:
    status, body = get(running, path)
    assert status == 200, f"{path}: {status} {body[:300]}"
    return json.loads(body)


def watch(ws: ClientConnection, until, timeout: float = 60.0) -> list[dict]:
    """Frames until `until(frames)` holds, in arrival order."""
    frames: list[dict] = []
    deadline = time.monotonic() + timeout
    while not until(frames):
        frames.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
    return frames


def types_of(frames: list[dict], task_id: str) -> list[str]:
    return [frame["type"] for frame in frames if frame.get("task_id") == task_id]


def each_once_in_order(types: list[str], expected: list[str]) -> None:
    """Each transition once, the worker's in order. (Celery's task-sent comes from the
    producer, the others from the worker: on a loaded machine the worker's task-received
    may reach the bridge first; the run's state does not go back for it.)"""
    assert sorted(types) == sorted(expected)
    assert [kind for kind in types if kind != EventType.TASK_SENT] == expected[1:]


def worker_is(running: Running, hostname: str, online: bool) -> bool:
    workers = api(running, "/api/workers/")["results"]
    return any(w["hostname"] == hostname and w["online"] is online for w in workers)


def watch_a_plain_cluster(tmp_path: Path, broker: str, queue: str, *args: str) -> Running:
    """Serve the dashboard for a plain cluster on `broker`, run one task that succeeds and
    one that fails on its `-E` worker, check the socket, the API and the pages, terminate a
    third through the API, stop the worker, then Ctrl-C the command; the command, stopped."""
    port = free_port()
    hostname = f"plain-{port}@{socket.gethostname()}"
    running = Running(tmp_path, port, "--broker", broker, "--data-dir", str(tmp_path / "data"), *args)
    try:
        running.wait_ready()
        with (
            PlainCelery(tmp_path / "other", broker, queue=queue) as other,
            connect(
                f"ws://127.0.0.1:{port}/ws/events/", origin=running.url, ping_interval=None, proxy=None
            ) as ws,
        ):
            with other.worker(events=True, hostname=hostname):
                wait_for(lambda: worker_is(running, hostname, online=True), 30, message=f"{hostname} online")
                ok = other.app.send_task(ADD, args=(2, 3))
                bad = other.app.send_task(FAIL)
                frames = watch(ws, lambda f: len(types_of(f, ok.id)) >= 4 and len(types_of(f, bad.id)) >= 4)
                each_once_in_order(types_of(frames, ok.id), SUCCEEDED)
                each_once_in_order(types_of(frames, bad.id), FAILED)
                assert {f["worker"] for f in frames if f.get("task_id") == ok.id} - {None} == {hostname}

                run = api(running, f"/api/tasks/{ok.id}/")
                assert (run["state"], run["name"], run["worker"]) == (State.SUCCESS, ADD, hostname)
                each_once_in_order([event["type"] for event in run["events"]], SUCCEEDED)
                failed = api(running, f"/api/tasks/{bad.id}/")
                assert failed["state"] == State.FAILURE
                assert "other app failed on purpose" in failed["exception"]

                def recorded() -> bool:  # by the recorder, in the data dir's database
                    listed = api(running, "/api/tasks/?limit=50")["results"]
                    return {ok.id, bad.id} <= {r["task_id"] for r in listed}

                wait_for(recorded, 30, message="both runs in the database")

                # Control needs the broker only: terminate a running task of the cluster.
                sleeper = other.app.send_task(SLEEP, args=(60,))
                watch(ws, lambda f: EventType.TASK_STARTED in types_of(f, sleeper.id))
                revoke = f"{running.url}/api/tasks/{sleeper.id}/revoke"
                answer = requests.post(revoke, json={"terminate": True}, timeout=10)
                assert answer.status_code == 202, answer.text
                # The request's note, and the worker's own word that it killed the task.
                revoked = {"type": EventType.TASK_REVOKED, "task_id": sleeper.id, "worker": hostname}
                note = {"type": EventType.TASK_LOG, "task_id": sleeper.id}
                watch(ws, lambda f: all(any(x.items() <= y.items() for y in f) for x in (revoked, note)))
                assert api(running, f"/api/tasks/{sleeper.id}/")["state"] == State.REVOKED
                for path, shows in [
                    ("/", [ok.id, bad.id]),
                    ("/runs/", [ok.id, bad.id]),
                    (f"/tasks/{ok.id}/", [ok.id, ADD, hostname]),
                    (f"/tasks/{bad.id}/", [bad.id, "other app failed on purpose"]),
                    ("/workers/", [hostname]),
                ]:
                    status, body = get(running, path)
                    assert status == 200, f"{path}: {status}"
                    for text in shows:
                        assert text in body, f"{path} does not show {text}"
            # The worker got SIGTERM on leaving: a warm shutdown, Celery's worker-offline.
            offline = {"type": EventType.WORKER_OFFLINE, "worker": hostname}
            watch(ws, lambda f: any(offline.items() <= frame.items() for frame in f))
            wait_for(lambda: worker_is(running, hostname, online=False), message=f"{hostname} offline")

        pids = running.pids()
        assert {"web", "bridge", "recorder"} <= set(pids), running.output
        assert running.interrupt() == 0, running.output
        assert "Traceback" not in running.output
        assert running.output.rstrip().endswith("all stopped")
        assert [name for name, pid in pids.items() if alive(pid)] == []
        assert port_is_free("127.0.0.1", port)
        return running
    finally:
        running.kill()


def test_a_plain_redis_cluster_is_watched_live_in_its_brokers_redis_and_ctrl_c_stops_all(tmp_path):
    broker = re.sub(r"/\d*$", "", os.environ["REDIS_URL"]) + f"/{BROKER_DB}"
    client = redis.Redis.from_url(broker)
    client.flushdb()
    running = watch_a_plain_cluster(tmp_path, broker, "celery", "--result-backend", broker)
    assert f"event log in {broker}" in running.output
    assert "private Redis" not in running.output
    # Keys of its own beside the cluster's (kombu's): none of celery-live's default prefix.
    keys = {key.decode() for key in client.keys("*")}
    assert "celery-live-standalone:events" in keys
    assert not [key for key in keys if key.startswith("celery-live:")]


def test_a_plain_rabbitmq_cluster_is_watched_with_the_log_in_a_private_redis(tmp_path):
    if (why := rabbitmq_reachable(AMQP_URL)) is not None:
        pytest.skip(f"RabbitMQ at {Connection(AMQP_URL).as_uri()} cannot be used ({why})")
    queue = f"celery-live-standalone-{uuid.uuid4().hex[:8]}"  # not another test's workers' queue
    try:
        running = watch_a_plain_cluster(tmp_path, AMQP_URL, queue)
    finally:
        with Connection(AMQP_URL, connect_timeout=3) as connection:
            connection.default_channel.queue_delete(queue)
    assert "private Redis" in running.output
    assert (tmp_path / "data" / "redis").is_dir()
    assert "redis" in running.pids()  # and stopped, with the rest


def test_login_mode_keeps_everything_behind_a_user_that_manage_makes(tmp_path):
    """`--require-login` (the rule on any address but loopback): pages send a visitor to log
    in, the API refuses; `celery-live manage createsuperuser` beside the running command
    makes the user who then gets in."""
    broker = re.sub(r"/\d*$", "", os.environ["REDIS_URL"]) + f"/{BROKER_DB}"
    data_dir = str(tmp_path / "data")
    running = Running(tmp_path, free_port(), "--broker", broker, "--data-dir", data_dir, "--require-login")
    try:
        running.wait_ready()
        assert "login required; make a user with: celery-live manage --data-dir" in running.output
        browser = requests.Session()
        sent_away = browser.get(running.url + "/runs/", allow_redirects=False, timeout=10)
        assert (sent_away.status_code, sent_away.headers["Location"]) == (302, "/accounts/login/?next=/runs/")
        assert browser.get(running.url + "/api/tasks/", timeout=10).status_code in (401, 403)

        made = run_cli(
            tmp_path,
            *("manage", "--data-dir", data_dir, "createsuperuser", "--noinput", "--username", "ann"),
            *("--email", "ann@example.com"),
            DJANGO_SUPERUSER_PASSWORD="a-long-enough-password-1",
        )
        assert made.returncode == 0, made.stderr
        login = browser.get(running.url + "/accounts/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
        inside = browser.post(
            running.url + "/accounts/login/?next=/runs/",
            data={"username": "ann", "password": "a-long-enough-password-1", "csrfmiddlewaretoken": token},
            timeout=10,
        )
        assert (inside.status_code, inside.url) == (200, running.url + "/runs/")
        assert "ann" in inside.text
        assert browser.get(running.url + "/api/tasks/", timeout=10).status_code == 200
        assert running.interrupt() == 0
    finally:
        running.kill()
