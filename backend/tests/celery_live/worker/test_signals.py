"""Celery signals publish one event each, in order, through a real worker."""

import os
import signal
import subprocess
import sys

from celery import shared_task

from apps.assets.tasks import example_async_task
from celery_live.runs import history
from config.celery import app
from tests.helpers import final_run, wait_for
from tests.paths import BACKEND_DIR

BACKEND = BACKEND_DIR


@shared_task(bind=True, max_retries=3)
def flaky_until(self, succeed_on_attempt: int) -> str:
    """Test-only task: retries until its attempt number reaches `succeed_on_attempt`."""
    if self.request.retries < succeed_on_attempt:
        raise self.retry(countdown=0, exc=RuntimeError(f"attempt {self.request.retries} failed"))
    return f"ok on attempt {self.request.retries}"


def types_of(task_id):
    return [e["type"] for e in history.task_events(task_id)]


def test_a_successful_run_logs_each_step_once_in_order(celery_worker):
    result = example_async_task.delay("Bob", 3, delay=0.01)
    final_run(result.id)
    assert types_of(result.id) == [
        "task.sent",
        "task.received",
        "task.started",
        "task.progress",
        "task.progress",
        "task.progress",
        "task.succeeded",
    ]
    events = history.task_events(result.id)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert (events[0]["data"]["args"], events[0]["data"]["kwargs"]) == (["Bob", 3], {"delay": 0.01})
    assert events[0]["data"]["queue"] == "celery"
    assert events[-1]["data"]["result"]["status"] == "completed"
    assert events[1]["worker"] == celery_worker.hostname  # received: the worker's main process
    assert all(e["worker"] for e in events[1:])


def test_a_failing_run_logs_the_error_and_traceback(celery_worker):
    result = example_async_task.delay("Bob", 3, delay=0.01, fail_at=2)
    run = final_run(result.id)
    assert run.state == "FAILURE"
    assert types_of(result.id)[-1] == "task.failed"
    assert run.exception == "DemoTaskError: Failed at iteration 2 of 3 (fail_at=2)"
    assert "Traceback" in run.traceback
    assert "DemoTaskError" in run.traceback
    assert run.results == ["Bob - iteration 1"]


def test_a_retry_is_logged_and_the_next_attempt_continues_the_same_run(celery_worker):
    result = flaky_until.delay(2)
    run = final_run(result.id)
    assert run.state == "SUCCESS"
    assert run.result == "ok on attempt 2"
    assert types_of(result.id).count("task.retried") == 2
    assert run.attempt == 2
    retried = [e for e in history.task_events(result.id) if e["type"] == "task.retried"]
    assert "attempt 0 failed" in retried[0]["data"]["reason"]


def test_revoking_a_waiting_task_logs_revoked(celery_worker):
    result = example_async_task.apply_async(("Later", 1), {"delay": 0}, countdown=2)
    wait_for(lambda: "task.received" in types_of(result.id), message="received")
    app.control.revoke(result.id)
    run = final_run(result.id, timeout=15)
    assert run.state == "REVOKED"
    assert "task.started" not in types_of(result.id)


def test_a_real_worker_announces_itself_online_and_offline():
    # worker_ready fires only in the CLI worker, so this one is a real subprocess.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-P",
            "solo",
            "-n",
            "probe@test",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "warning",
        ],
        cwd=BACKEND,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: ("worker.online", "probe@test") in worker_events(), timeout=30, message="worker.online"
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    assert ("worker.offline", "probe@test") in worker_events()


def worker_events():
    return [(e["type"], e["worker"]) for e in history.read_after("0-0") if e["type"].startswith("worker.")]


def test_instrumentation_off_connects_no_handler_even_after_django_checks():
    # Celery's Django fixup runs the system checks in the worker, which import the views.
    code = (
        "import django; django.setup()\n"
        "from django.core import checks; checks.run_checks()\n"
        "from celery import signals\n"
        "ours = [key for s in (signals.before_task_publish, signals.task_prerun, signals.task_success)\n"
        "        for key, _ in s.receivers if 'celery_live' in str(key)]\n"
        "print(len(ours))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    count = lambda flag: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code],
        cwd=BACKEND,
        env={**env, "CELERY_LIVE_INSTRUMENT": flag},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert count("1") == "3"
    assert count("0") == "0"
