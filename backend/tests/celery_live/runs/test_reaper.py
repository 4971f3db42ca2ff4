"""Exact final states: dead workers' runs become LOST; missed ends are reconciled."""

import time

import pytest

from celery_live.control import runs as control
from celery_live.log import publishing
from celery_live.log.store import bridge_watch_key, workers_key
from celery_live.log.workers import (
    WorkerRecord,
    note_bridge_watching,
    read_workers,
    record_beat,
    record_worker,
)
from celery_live.runs import history
from celery_live.runs.models import Run
from celery_live.runs.reaper import Reaper
from config.celery import app
from tests.helpers import record_all

pytestmark = pytest.mark.django_db


def start_run(task_id, worker, ts, instance=None, started=True):
    """A run received by `instance` of `worker` (and started, unless `started` is False)."""
    name = "apps.assets.tasks.test_task"
    publishing.publish("task.sent", task_id=task_id, name=name, ts=ts, data={"args": ["x"], "kwargs": {}})
    publishing.publish(
        "task.received", task_id=task_id, name=name, worker=worker, ts=ts, data={"instance": instance}
    )
    if started:
        publishing.publish("task.started", task_id=task_id, name=name, worker=worker, ts=ts)
    record_all()


def instance(pid, started):
    return f"{pid}-{int(started * 1000)}"


def test_runs_on_a_worker_without_heartbeats_for_too_long_become_lost(settings):
    client = publishing.get_publisher().client
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
    client = publishing.get_publisher().client
    start_run("gone", "vanished@host", time.time() - 60)
    reaper = Reaper(client)
    assert reaper.mark_lost(time.time()) == ["gone"]
    assert reaper.mark_lost(time.time()) == []


def test_a_missed_final_event_is_reconciled_from_the_result_backend():
    start_run("quiet", "w@host", time.time() - 100)
    app.backend.store_result("quiet", "Processed: x", "SUCCESS")
    client = publishing.get_publisher().client
    client.hset(workers_key(), "w@host", time.time())
    assert Reaper(client).reconcile(time.time()) == ["quiet"]
    run = history.get_run("quiet")
    assert run.state == "SUCCESS"
    assert run.result == "Processed: x"
    assert run.events[-1]["data"]["reconciled"] is True


def test_a_failure_recorded_only_in_the_backend_is_reconciled_as_failure():
    start_run("quiet-fail", "w@host", time.time() - 100)
    app.backend.store_result("quiet-fail", ValueError("boom"), "FAILURE", traceback="Traceback: boom")
    assert Reaper(publishing.get_publisher().client).reconcile(time.time()) == ["quiet-fail"]
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
    assert publishing.get_publisher().client.hget(workers_key(), celery_worker.hostname)
    result.get(timeout=10)


def test_runs_of_a_worker_restarted_under_the_same_name_become_lost_at_once():
    client = publishing.get_publisher().client
    now = time.time()
    old, new = instance(100, now - 60), instance(200, now - 1)
    start_run("on-old", "w@host", now - 2, instance=old)  # events 2 s ago: not silent at all
    record_beat(client, "w@host", old, now - 3)
    assert Reaper(client).mark_lost(now) == []  # the old instance still beats: running
    record_beat(client, "w@host", new, now)  # restarted within the timeout
    assert Reaper(client).mark_lost(now) == ["on-old"]
    run = history.get_run("on-old")
    assert run.state == "LOST"
    assert run.exception == "worker w@host restarted (pid 100 → 200): the process running this task is gone"
    # The stale PROGRESS/STARTED in the result backend never brings it back to running.
    record_all()
    assert Reaper(client).reconcile(now + 3600) == []
    assert history.get_run("on-old").state == "LOST"


def test_a_lost_run_that_was_only_prefetched_says_when_redis_may_deliver_it_again(settings):
    settings.TIME_ZONE = "UTC"
    client = publishing.get_publisher().client
    now = time.time()
    start_run("prefetched", "w@host", now - 2, instance=instance(100, now - 60), started=False)
    record_beat(client, "w@host", instance(200, now - 1), now)
    Reaper(client).mark_lost(now)
    lost = history.get_run("prefetched").events[-1]
    at = now - 2 + 3600
    assert lost["data"]["redelivery_at"] == pytest.approx(at, abs=0.01)
    assert lost["data"]["reason"].endswith(
        f"; may be redelivered at {time.strftime('%H:%M', time.gmtime(at))} UTC "
        "by the broker's visibility timeout (3600 s)"
    )


def test_reconcile_never_adds_a_second_final_event_when_the_database_lags_the_log():
    start_run("lagging", "w@host", time.time() - 100)
    # The run ended in the log, but the recorder has not written that yet.
    publishing.publish("task.succeeded", task_id="lagging", name="n", worker="w@host", data={"result": 1})
    app.backend.store_result("lagging", 1, "SUCCESS")
    assert Run.objects.get(task_id="lagging").state == "STARTED"
    assert Reaper(publishing.get_publisher().client).reconcile(time.time()) == []
    assert [e["type"] for e in history.get_run("lagging").events].count("task.succeeded") == 1


def test_one_run_the_result_backend_cannot_read_does_not_stop_the_reaper():
    now = time.time()
    start_run("garbled", "w@host", now - 100)
    start_run("readable", "w@host", now - 99)
    publishing.get_publisher().client.set("celery-task-meta-garbled", b"\xff not json")
    app.backend.store_result("readable", "ok", "SUCCESS")
    assert Reaper(publishing.get_publisher().client).reconcile(now) == ["readable"]


def test_terminating_a_run_whose_worker_process_is_gone_resolves_it():
    client = publishing.get_publisher().client
    now = time.time()
    start_run("orphan", "w@host", now - 1, instance=instance(100, now - 60))
    record_beat(client, "w@host", instance(200, now - 1), now)  # restarted; not yet reaped
    control.revoke("orphan", terminate=True, by="alice")
    run = history.get_run("orphan")
    assert run.state == "REVOKED"
    assert "worker w@host restarted" in run.exception


def test_a_silent_worker_instance_is_announced_offline_once_with_why(settings):
    settings.CELERY_LIVE_WORKER_TIMEOUT = 10
    client = publishing.get_publisher().client
    now = time.time()
    killed = instance(4127, now - 60)
    record_worker(client, WorkerRecord.from_beat("w@host", now - 30, {"instance": killed}))
    Reaper(client).mark_lost(now)
    Reaper(client).mark_lost(now + 1)
    offline = [e for e in history.read_after("0-0") if e["type"] == "worker.offline"]
    # (Every event also says the kind of process that made it: here the test's, "web".)
    assert [(e["worker"], e["data"]["reason"], e["data"]["instance"]) for e in offline] == [
        ("w@host", "no heartbeat for 30 s", killed)
    ]
    [record] = read_workers(client, now + 1)
    assert (record.offline_at, record.offline_reason) == (now, "no heartbeat for 30 s")


def test_an_instance_replaced_under_its_hostname_is_offline_at_once():
    client = publishing.get_publisher().client
    now = time.time()
    old, new = instance(100, now - 60), instance(200, now - 1)
    record_worker(client, WorkerRecord.from_beat("w@host", now - 0.5, {"instance": old}))
    record_worker(client, WorkerRecord.from_beat("w@host", now, {"instance": new}))
    Reaper(client).mark_lost(now)
    assert {r.instance: r.offline_reason for r in read_workers(client, now)} == {
        new: None,
        old: "restarted as pid 200",
    }


def test_a_silent_bridged_worker_loses_its_runs_only_once_a_bridge_has_listened_the_whole_timeout():
    """Celery's events reach us only through a bridge: while none listens (or one has just
    come back), a bridged worker's silence says nothing about the worker."""
    client = publishing.get_publisher().client
    now = time.time()
    gone = instance(4242, now - 60)
    record_worker(client, WorkerRecord(hostname="bridged@host", instance=gone, ts=now - 30, bridged=True))
    start_run("bridged-run", "bridged@host", now - 30, instance=gone)
    reaper = Reaper(client)
    assert reaper.mark_lost(now) == []  # no bridge listens
    note_bridge_watching(client, now=now - 3)
    assert reaper.mark_lost(now) == []  # one listens, but only for 3 s
    assert history.get_run("bridged-run").state == "STARTED"
    offline = [e for e in history.read_after("0-0") if e["type"] == "worker.offline"]
    assert offline == []
    client.set(bridge_watch_key(), now - 60)  # one has listened for a minute
    assert reaper.mark_lost(now) == ["bridged-run"]
    offline = [e for e in history.read_after("0-0") if e["type"] == "worker.offline"]
    assert [e["worker"] for e in offline] == ["bridged@host"]
