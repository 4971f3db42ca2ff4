"""Exact final states: dead workers' runs become LOST; missed ends are reconciled."""

import time

import pytest

from apps.live import events, history
from apps.live.reaper import Reaper, workers_key
from config.celery import app
from tests.helpers import record_all

pytestmark = pytest.mark.django_db


def start_run(task_id, worker, ts):
    events.publish(
        "task.sent",
        task_id=task_id,
        name="apps.assets.tasks.test_task",
        ts=ts,
        data={"args": ["x"], "kwargs": {}},
    )
    events.publish("task.started", task_id=task_id, name="apps.assets.tasks.test_task", worker=worker, ts=ts)
    record_all()


def test_runs_on_a_worker_without_heartbeats_for_too_long_become_lost(settings):
    client = events.get_publisher().client
    now = time.time()
    client.hset(workers_key(), mapping={"dead@host": now - 30, "alive@host": now})
    start_run("on-dead", "dead@host", now - 30)
    start_run("on-alive", "alive@host", now - 30)
    lost = Reaper(client).mark_lost(now)
    assert lost == ["on-dead"]
    run = history.get_run("on-dead")
    assert run.state == "LOST"
    assert "dead@host stopped responding: no heartbeat for 30 s" in run.exception
    assert history.get_run("on-alive").state == "STARTED"
    assert Reaper(client).mark_lost(now + 1) == []  # announced once, not again
    offline = [e for e in history.read_after("0-0") if e["type"] == "worker.offline"]
    assert offline[0]["worker"] == "dead@host"


def test_a_run_is_marked_lost_once_even_if_checked_again():
    client = events.get_publisher().client
    start_run("gone", "vanished@host", time.time() - 60)
    reaper = Reaper(client)
    assert reaper.mark_lost(time.time()) == ["gone"]
    assert reaper.mark_lost(time.time()) == []


def test_a_missed_final_event_is_reconciled_from_the_result_backend():
    start_run("quiet", "w@host", time.time() - 100)
    app.backend.store_result("quiet", "Processed: x", "SUCCESS")
    client = events.get_publisher().client
    client.hset(workers_key(), "w@host", time.time())
    assert Reaper(client).reconcile(time.time()) == ["quiet"]
    run = history.get_run("quiet")
    assert run.state == "SUCCESS"
    assert run.result == "Processed: x"
    assert run.events[-1]["data"]["reconciled"] is True


def test_a_failure_recorded_only_in_the_backend_is_reconciled_as_failure():
    start_run("quiet-fail", "w@host", time.time() - 100)
    app.backend.store_result("quiet-fail", ValueError("boom"), "FAILURE", traceback="Traceback: boom")
    assert Reaper(events.get_publisher().client).reconcile(time.time()) == ["quiet-fail"]
    run = history.get_run("quiet-fail")
    assert run.state == "FAILURE"
    assert run.exception == "ValueError: boom"


def test_workers_send_heartbeats_with_their_active_tasks(celery_worker):
    from apps.assets.tasks import example_async_task

    result = example_async_task.delay("hb", 1, delay=2.5)
    deadline = time.time() + 10
    while time.time() < deadline:
        beats = [e for e in history.read_after("0-0") if e["type"] == "worker.heartbeat"]
        if any(result.id in e["data"]["active"] for e in beats):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no heartbeat listed the running task")
    assert events.get_publisher().client.hget(workers_key(), celery_worker.hostname)
    result.get(timeout=10)
