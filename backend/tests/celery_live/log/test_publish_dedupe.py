"""Dedupe keys (`publish(..., dedupe=...)`): one transition published by two processes (two
bridges; our `before_task_publish` and Celery's bridged `task-sent`) is logged once, and a
publisher that waits for its id gets the copy's. On the test run's Redis."""

from __future__ import annotations

import json
import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

from celery_live.bridge.translate import Bridged, Translator
from celery_live.log import events, publishing, store
from celery_live.log.vocabulary import EventType, ProcessRole
from celery_live.log.workers import note_bridge_watching
from config.celery import app as demo_app


def run_events(client, task_id: str) -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(store.task_key(task_id), 0, -1)]


@pytest.fixture(autouse=True)
def bridge_listens(redis_client):
    """A bridge listens (its watching key is set): dedupe keys are kept. The test that wants
    none deletes it."""
    note_bridge_watching(redis_client)


@pytest.fixture
def other_publisher():
    """A second process's publisher, as a second bridge has (its own connection)."""
    private = publishing.Publisher(os.environ["REDIS_URL"])
    yield private
    private.close(timeout=2)


def test_an_event_whose_key_was_taken_is_not_logged_and_gets_the_first_ones_id(redis_client):
    key = store.dedupe_key("test:one")
    first = publishing.publish(EventType.TASK_STARTED, task_id="t1", name="n", dedupe=key)
    again = publishing.publish(EventType.TASK_STARTED, task_id="t1", name="n", dedupe=key)
    assert first is not None
    assert again is not None
    assert (again["id"], again["seq"]) == (first["id"], first["seq"])
    assert again["uid"] != first["uid"]  # another event: the key, not the uid, found it
    assert [e["uid"] for e in run_events(redis_client, "t1")] == [first["uid"]]
    assert redis_client.xlen(store.stream_key()) == 1
    assert 0 < redis_client.ttl(key) <= publishing.DEDUPE_TTL
    assert redis_client.get(key) == f"{first['id']} {first['seq']}"


def test_two_publishers_that_do_not_wait_log_an_event_once(redis_client, other_publisher):
    mine = publishing.get_publisher()
    for n in range(20):  # an event of no run too: the stream is its only place
        for publisher in (mine, other_publisher):
            fields = {"task_id": f"run-{n}", "name": "n"} if n % 2 else {"worker": "w@h"}
            etype = EventType.TASK_STARTED if n % 2 else EventType.WORKER_HEARTBEAT
            publisher.publish_nowait(events.make_event(etype, **fields), store.dedupe_key(f"test:{n}"))
    assert mine.flush(5)
    assert other_publisher.flush(5)
    assert redis_client.xlen(store.stream_key()) == 20
    assert all(len(run_events(redis_client, f"run-{n}")) == 1 for n in range(1, 20, 2))


def test_without_a_key_nothing_is_deduplicated_and_no_key_is_made(redis_client):
    for _ in range(2):
        publishing.publish(EventType.TASK_STARTED, task_id="t2", name="n")
    assert len(run_events(redis_client, "t2")) == 2
    assert not list(redis_client.scan_iter(match=store.dedupe_key("*")))


def test_with_no_bridge_listening_a_key_is_not_kept(redis_client):
    """No bridge, no second copy: a producer's `task.sent` keys would only cost Redis memory
    (~200 bytes each for 600 s, on every task sent)."""
    redis_client.delete(store.bridge_watch_key())
    key = store.sent_dedupe_key("t4", 0)
    assert publishing.publish(EventType.TASK_SENT, task_id="t4", name="n", dedupe=key) is not None
    assert len(run_events(redis_client, "t4")) == 1
    assert not redis_client.exists(key)


def test_a_resent_event_with_a_key_is_answered_with_its_first_copy(redis_client):
    # Redis ran it, the reply was lost: the resend (same uid, same key) adds nothing.
    event = events.make_event(EventType.TASK_STARTED, task_id="t3", name="n")
    key = store.dedupe_key("test:resent")
    assert publishing.get_publisher().publish(event, dedupe=key) is not None
    item = publishing._Item(event, dedupe=key)
    item.resent = True
    url = urlparse(os.environ["REDIS_URL"])
    with socket.create_connection((url.hostname, url.port)) as raw:
        raw.sendall(item.packed())
        reply = raw.makefile("rb").readline().decode()
    assert reply == f"+{event['id']} {event['seq']}\r\n"
    assert len(run_events(redis_client, "t3")) == 1


def bridged_task_sent(task_id: str) -> Bridged:
    """What a bridge makes of Celery's `task-sent` for `task_id` (a producer with
    `task_send_sent_event`)."""
    celery_event = {"type": "task-sent", "uuid": task_id, "name": "apps.assets.tasks.test_task"}
    celery_event |= {"hostname": "gen1@web", "timestamp": 1_790_000_000.0, "retries": 0}
    celery_event |= {"args": "['hi']", "kwargs": "{}", "queue": "q", "clock": 1, "pid": 1}
    out = Translator().translate(celery_event)
    assert isinstance(out, Bridged)
    return out


def publish_bridged(out: Bridged) -> dict | None:
    return publishing.publish(out.type, dedupe=out.dedupe, **out.fields)


@pytest.fixture
def unconsumed_queue(redis_client):
    """A queue of the test run's broker that no worker consumes, deleted afterwards."""
    name = f"dedupe-test-{uuid.uuid4().hex[:8]}"
    yield name
    redis_client.delete(name)


@pytest.mark.parametrize("signal_first", [True, False], ids=["signal-first", "bridge-first"])
def test_task_sent_from_our_signal_and_from_celerys_event_is_logged_once(
    redis_client, unconsumed_queue, signal_first
):
    task_id = str(uuid.uuid4())
    out = bridged_task_sent(task_id)
    if not signal_first:
        assert publish_bridged(out) is not None
    # Our before_task_publish fires in this process (celery_live is installed here).
    demo_app.send_task("apps.assets.tasks.test_task", args=["hi"], task_id=task_id, queue=unconsumed_queue)
    if signal_first:
        publish_bridged(out)
    logged = run_events(redis_client, task_id)
    assert [e["type"] for e in logged] == [EventType.TASK_SENT]
    first = ProcessRole.WEB if signal_first else ProcessRole.BRIDGE
    assert logged[0]["data"]["process"] == first
    assert redis_client.exists(store.sent_dedupe_key(task_id, 0))
