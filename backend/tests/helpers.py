"""Small helpers shared by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tests.paths import BACKEND_DIR

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, message: str = "condition"
) -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def final_run(task_id: str, timeout: float = 20.0):
    """The run's state once it is final (from the event log)."""
    from celery_live.runs import history

    def final():
        run = history.get_run(task_id)
        return run if run is not None and run.is_final else None

    return wait_for(final, timeout, message=f"run {task_id} to end")


def record_all() -> int:
    """Run the recorder until the log is fully written to the database; events recorded."""
    from celery_live.runs.recorder import Recorder

    recorder = Recorder(name="tests")
    total = 0
    while recorded := recorder.run_once(block_ms=None):
        total += recorded
    return total


def record_a_finished_run(task_id: str = "kept") -> None:
    """A run sent and succeeded, recorded in the database (what survives Redis going away)."""
    from celery_live.log import publishing

    name = "apps.assets.tasks.test_task"
    publishing.publish("task.sent", task_id=task_id, name=name, data={"args": ["x"]})
    publishing.publish("task.succeeded", task_id=task_id, name=name, data={"result": 1})
    record_all()


def unreachable_redis():
    """A client for a port nothing listens on: every command fails at once, no retries."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from celery_live.processes.redis_server import free_port

    return redis.Redis(port=free_port(), decode_responses=True, retry=Retry(NoBackoff(), 0))


@contextmanager
def celery_process(*argv: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A real `celery -A config <argv>` (a CLI worker, beat) in the backend folder with the
    demo's settings (`env` added), quiet; stopped as systemd would (SIGTERM: a warm shutdown,
    so its shutdown signals run) on leaving."""
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *argv],
        cwd=BACKEND_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def processes_of(task_id: str) -> dict[str, str]:
    """Which kind of process published each type of the run's events (`data["process"]`)."""
    from celery_live.runs import history

    return {event["type"]: event["data"]["process"] for event in history.task_events(task_id)}
