"""Celery signals publish one event each, in order, through a real worker."""

import os
import subprocess
import sys

import pytest
from celery import shared_task

from apps.assets.tasks import example_async_task
from celery_live.log.events import epoch
from celery_live.runs import history
from config.celery import app
from tests.celery_live.worker.tasks import always_fails, retry_twice
from tests.helpers import celery_process, final_run, processes_of, record_all, wait_for
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
    assert events[0]["data"]["queue"] == app.conf.task_default_queue
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
    argv = ["worker", "-P", "solo", "-n", "probe@test"]
    argv += ["--without-mingle", "--without-gossip", "-l", "warning"]
    with celery_process(*argv):
        wait_for(
            lambda: ("worker.online", "probe@test") in worker_events(), timeout=30, message="worker.online"
        )
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


@pytest.mark.django_db
def test_each_attempt_is_kept_with_its_error_and_when_the_next_one_is_due(client, celery_worker):
    result = retry_twice.delay()
    run = final_run(result.id)
    assert (run.state, run.attempt, run.max_retries) == ("SUCCESS", 2, 2)
    assert [(a["attempt"], a["state"]) for a in run.attempts] == [(0, "RETRY"), (1, "RETRY"), (2, "SUCCESS")]
    assert [a["error"] for a in run.attempts] == [
        "RuntimeError: attempt 0 failed",
        "RuntimeError: attempt 1 failed",
        None,
    ]
    events = history.task_events(result.id)
    sent = [e for e in events if e["type"] == "task.sent"]
    retried = [e for e in events if e["type"] == "task.retried"]
    # Celery sends a retry from within the run: its message names the run as its parent.
    assert (sent[1]["data"]["parent_id"], run.parent_id) == (result.id, None)
    for attempt, (resent, retry) in enumerate(zip(sent[1:], retried, strict=True)):
        # Celery sends the next attempt (from the worker) before it signals the retry.
        assert events.index(resent) < events.index(retry)
        assert (resent["data"]["attempt"], retry["data"]["attempt"]) == (attempt + 1, attempt)
        assert retry["data"]["max_retries"] == 2
        # `retry_at` is the retry's countdown from now: the next message's ETA.
        assert abs(retry["data"]["retry_at"] - run.attempts[attempt]["retry_at"]) < 1e-6
        assert abs(retry["data"]["retry_at"] - (retry["ts"] + 0.2)) < 0.1
        assert abs(retry["data"]["retry_at"] - epoch(resent["data"]["eta"])) < 0.1
    for earlier, later in zip(run.attempts, run.attempts[1:], strict=False):
        assert earlier["ended"] <= later["started"]
        assert later["started"] >= earlier["retry_at"] - 0.05  # not before it was due
    assert run.eta == epoch(sent[-1]["data"]["eta"])
    assert all(a["worker"] for a in run.attempts)

    record_all()
    api = client.get(f"/api/tasks/{result.id}/").json()
    assert (api["attempts"], api["eta"], api["max_retries"]) == (run.attempts, run.eta, 2)


def test_an_autoretry_that_runs_out_fails_its_last_attempt(celery_worker):
    result = always_fails.delay()
    run = final_run(result.id)
    assert (run.state, run.max_retries) == ("FAILURE", 1)
    assert [(a["state"], a["error"]) for a in run.attempts] == [
        ("RETRY", "RuntimeError: still broken"),
        ("FAILURE", "RuntimeError: still broken"),
    ]


def test_the_in_thread_worker_says_worker_and_the_test_that_sends_says_web(celery_worker):
    result = example_async_task.delay("Bob", 1, delay=0)
    final_run(result.id)
    assert processes_of(result.id) == {
        "task.sent": "web",
        "task.received": "worker",
        "task.started": "worker",
        "task.progress": "worker",
        "task.succeeded": "worker",
    }


def test_a_countdown_run_knows_when_it_may_start(celery_worker):
    result = example_async_task.apply_async(("Soon", 1), {"delay": 0}, countdown=0.5)
    run = final_run(result.id)
    assert run.state == "SUCCESS"
    assert abs(run.eta - (run.sent_at + 0.5)) < 0.1
    assert run.started_at >= run.eta - 0.05
    assert run.attempts[0]["started"] == run.started_at
