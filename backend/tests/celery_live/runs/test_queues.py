"""The queue sampler against the test run's Redis broker: what it publishes, how often, and
that only one of several samples."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest

from celery_live.log import publishing, store
from celery_live.log.queues import known_queues, read_samples, remember_queues
from celery_live.log.workers import WorkerRecord, record_worker
from celery_live.runs import history
from celery_live.runs.queues import QueueSampler, configured_queues
from config.celery import app
from tests.helpers import record_all, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue():
    """A queue no worker consumes, emptied afterwards."""
    name = f"cl-sampled-{uuid.uuid4().hex[:8]}"
    yield name
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(name)


def send(queue: str, n: int = 1, priority: int | None = None) -> None:
    for _ in range(n):
        app.send_task("apps.assets.tasks.noop", queue=queue, priority=priority)


def depth_events() -> list[dict]:
    return [e for e in history.read_after("0-0") if e["type"] == "queue.depth"]


def sampled(event: dict, queue: str) -> dict | None:
    return next((q for q in event["data"]["queues"] if q["name"] == queue), None)


def test_it_publishes_a_queue_only_when_it_changed(queue):
    client = store.client()
    remember_queues(client, [queue])
    sampler = QueueSampler(owner="only")
    first = sampler.sample()
    assert sampled(first, queue)["depth"] == 0  # a queue seen for the first time is news
    assert sampler.sample() is None  # nothing changed: nothing published
    send(queue, 2)
    second = sampler.sample()
    assert [q["name"] for q in second["data"]["queues"]] == [queue]  # only what changed
    assert sampled(second, queue) | {"changed_at": 0} == {
        "name": queue,
        "depth": 2,
        "priorities": {"0": 2, "3": 0, "6": 0, "9": 0},
        "consumers": 0,
        "workers": [],
        "changed_at": 0,
    }
    assert sampler.sample() is None
    send(queue, 1, priority=9)
    assert sampled(sampler.sample(), queue)["priorities"] == {"0": 2, "3": 0, "6": 0, "9": 1}
    assert read_samples(client)[queue].depth == 3
    assert len(depth_events()) == 3


def test_a_consumer_coming_or_going_is_a_change_and_its_queue_becomes_known(queue):
    client = store.client()
    sampler = QueueSampler(owner="only")
    sampler.sample()
    now = time.time()
    record_worker(client, WorkerRecord(hostname="w1@host", instance="1-1", ts=now, queues=(queue,)))
    assert sampled(sampler.sample(), queue) | {"changed_at": 0} == {
        "name": queue,
        "depth": 0,
        "priorities": {"0": 0, "3": 0, "6": 0, "9": 0},
        "consumers": 1,
        "workers": ["w1@host"],
        "changed_at": 0,
    }
    # It cancelled its consumer: its next beat lists no queue.
    record_worker(client, WorkerRecord(hostname="w1@host", instance="1-1", ts=now + 1, queues=()))
    assert sampled(sampler.sample(), queue)["consumers"] == 0
    assert queue in known_queues(client)  # still known, and still sampled


def test_it_knows_the_configured_queues_and_those_runs_wait_in(queue, settings):
    settings.CELERY_TASK_ROUTES = {"apps.assets.tasks.noop": {"queue": "routed-here"}}
    app.conf.task_routes = settings.CELERY_TASK_ROUTES
    try:
        assert {app.conf.task_default_queue, "routed-here"} <= configured_queues(app)
    finally:
        app.conf.task_routes = None
    publishing.publish("task.sent", task_id="waits", name="n", data={"queue": queue})
    publishing.publish("task.sent", task_id="done", name="n", data={"queue": "finished-queue"})
    publishing.publish("task.succeeded", task_id="done", name="n")
    record_all()
    QueueSampler(owner="only").sample()
    known = known_queues(store.client())
    assert {app.conf.task_default_queue, queue} <= known
    assert "finished-queue" not in known  # only queues runs still wait in


@pytest.mark.django_db(transaction=True)  # samplers in threads read the database too
def test_of_two_samplers_one_samples_and_the_other_takes_over_when_it_stops(queue):
    remember_queues(store.client(), [queue])
    first, second = QueueSampler(owner="first"), QueueSampler(owner="second")
    assert first.sample() is not None
    send(queue)
    assert second.sample() is None  # the first holds the lock
    assert first.leads()
    assert not second.leads()
    first.release()  # a clean stop hands over at once
    assert sampled(second.sample(), queue)["depth"] == 1
    second.release()

    # Run together, as in two recorder processes: every event comes from one of them.
    stop = threading.Event()
    samplers = [QueueSampler(owner=f"contender-{i}", interval=0.05) for i in range(2)]
    threads = [threading.Thread(target=s.run, args=(stop,)) for s in samplers]
    before = len(depth_events())
    for thread in threads:
        thread.start()
    try:
        for _ in range(5):
            send(queue)
            time.sleep(0.15)
        wait_for(lambda: len(depth_events()) >= before + 3, timeout=10, message="samples")
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    owners = {e["data"]["sampler"] for e in depth_events()[before:]}
    assert len(owners) == 1
    assert owners <= {"contender-0", "contender-1"}


@pytest.mark.django_db(transaction=True)
def test_it_publishes_at_most_once_an_interval_however_fast_the_queue_changes(queue):
    remember_queues(store.client(), [queue])
    interval = 0.2
    stop = threading.Event()
    sampler = threading.Thread(target=QueueSampler(owner="timed", interval=interval).run, args=(stop,))
    sampler.start()
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # a message every 10 ms: 200 changes
            send(queue)
            time.sleep(0.01)
    finally:
        stop.set()
        sampler.join(5)
    stamps = [e["ts"] for e in depth_events()]
    assert len(stamps) >= 3
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= interval * 0.9, gaps
