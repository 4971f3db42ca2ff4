"""Beat -> `beat.sent` and the schedule registry: Celery's own Scheduler in this process,
then a real `celery beat`."""

import time
from types import SimpleNamespace

from celery import signals
from celery.beat import Scheduler
from celery.schedules import crontab

from celery_live.log import events
from celery_live.log.beat import read_schedule
from celery_live.runs import history
from celery_live.worker import beat
from config.celery import app
from tests.helpers import celery_process, unreachable_redis, wait_for

QUEUE = "beat-test"


def scheduler(**entries):
    """Celery's in-memory Scheduler with only `entries` (their tasks go to a queue no worker reads)."""
    sched = Scheduler(app=app, lazy=True)
    sched.update_from_dict({name: {**entry, "options": {"queue": QUEUE}} for name, entry in entries.items()})
    return sched


class Service:
    """What `beat_init` is sent by (celery.beat.Service), as far as the handler reads it."""

    def __init__(self, scheduler):
        self.scheduler = scheduler


def purge():
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(QUEUE)


def beat_sent():
    return [e for e in history.read_after("0-0") if e["type"] == "beat.sent"]


def test_each_send_is_published_with_its_run_and_the_registry_follows(redis_client):
    sched = scheduler(tick={"task": "apps.assets.tasks.add", "schedule": 30.0, "args": (1,)})
    sched.schedule["tick"].last_run_at = app.now() - sched.schedule["tick"].schedule.run_every * 2
    try:
        before = time.time()
        sched.tick()  # due: Celery's own path (reserve the next entry, apply_entry)
        sent = wait_for(beat_sent, message="beat.sent")
    finally:
        purge()
    [event] = sent
    data = event["data"]
    assert (event["task_id"], event["name"]) == (None, "apps.assets.tasks.add")
    assert (data["entry"], data["task"], data["schedule"]) == ("tick", "apps.assets.tasks.add", "every 30 s")
    assert (data["total_run_count"], data["args"]) == (1, [1])
    assert before + 29 < data["next_at"] < time.time() + 31
    # Its task_id is the run Beat sent: that run's task.sent is in the log.
    assert [e["type"] for e in history.task_events(data["task_id"])] == ["task.sent"]
    [entry] = read_schedule(redis_client)
    assert (entry.name, entry.last_task_id, entry.total_run_count) == ("tick", data["task_id"], 1)
    assert entry.next_at == data["next_at"]


def test_beat_starting_writes_its_schedule_and_its_events_say_beat(redis_client, monkeypatch):
    monkeypatch.setattr(events, "_role", events._role)  # restored after the test
    sched = scheduler(
        every_minute={"task": "apps.assets.tasks.noop", "schedule": 60.0},
        nightly={"task": "apps.assets.tasks.add", "schedule": crontab(minute=0, hour=3), "args": (1, 2)},
    )
    signals.beat_init.send(sender=Service(sched))
    assert events.make_event("beat.sent")["data"]["process"] == "beat"
    entries = {entry.name: entry for entry in read_schedule(redis_client)}
    assert set(entries) == {"every_minute", "nightly"}
    assert entries["every_minute"].schedule == "every 1 min"
    assert entries["nightly"].schedule == "crontab: 0 3 * * * (m/h/dM/MY/d)"
    assert entries["nightly"].args == [1, 2]
    assert time.time() < entries["nightly"].next_at <= time.time() + 24 * 3600
    assert entries["every_minute"].total_run_count == 0


def test_beat_goes_on_sending_when_the_registry_cannot_be_written(monkeypatch):
    monkeypatch.setattr(events, "_role", events._role)
    monkeypatch.setattr(beat, "store", SimpleNamespace(client=unreachable_redis))  # Beat's writes only
    sched = scheduler(tick={"task": "apps.assets.tasks.noop", "schedule": 30.0})
    signals.beat_init.send(sender=Service(sched))  # logged, not raised
    try:
        sched.apply_entry(sched.schedule["tick"], producer=sched.producer)
        [event] = wait_for(beat_sent, message="beat.sent")
    finally:
        purge()
    assert history.task_events(event["data"]["task_id"])  # the task was sent all the same


def test_the_schedule_in_words():
    assert beat.describe_schedule(beat.schedule(2.5)) == "every 2.5 s"
    assert beat.describe_schedule(beat.schedule(7200)) == "every 2 h"
    assert beat.describe_schedule(beat.schedule(90)) == "every 90 s"


def test_a_real_beat_process_publishes_its_sends(redis_client, tmp_path):
    argv = ["beat", "-l", "warning", "-s", str(tmp_path / "schedule"), "--max-interval", "1"]
    try:
        with celery_process(*argv, env={"CELERY_LIVE_PRUNE_EVERY": "0.5"}):
            sends = wait_for(
                lambda: len(beat_sent()) >= 2 and beat_sent(), timeout=40, message="two beat.sent"
            )
    finally:
        with app.connection_for_write() as connection:  # the ticks no worker here will run
            connection.default_channel.queue_purge(app.conf.task_default_queue)
    assert {e["data"]["process"] for e in sends} == {"beat"}
    ticks = [e["data"] for e in sends if e["data"]["schedule"] == "every 0.5 s"]
    assert [d["total_run_count"] for d in ticks[:2]] == [1, 2]
    registry = {entry.name: entry for entry in read_schedule(redis_client)}
    assert registry[ticks[0]["entry"]].total_run_count >= 2
