"""The event format and publishing to the log (real Redis)."""

import json

import pytest

from celery_live.log import events, publishing
from celery_live.runs import history


def test_make_event_builds_the_documented_format():
    event = events.make_event(
        "task.progress", task_id="t1", name="n", worker="w", data={"current": 1, "total": 2, "result": "r"}
    )
    assert event["v"] == 1
    assert event["state"] == "PROGRESS"
    assert set(event) == {"v", "type", "task_id", "name", "state", "ts", "uid", "worker", "data"}
    assert len(event["uid"]) == 16
    assert event["uid"] != events.make_event("task.progress", task_id="t1")["uid"]


@pytest.mark.parametrize(("type_", "fields"), [("task.nope", {"task_id": "t"}), ("task.sent", {})])
def test_make_event_refuses_what_is_not_an_event(type_, fields):
    with pytest.raises(events.InvalidEvent):
        events.make_event(type_, **fields)


def test_data_that_json_cannot_carry_is_kept_as_text():
    event = events.make_event("task.succeeded", task_id="t", data={"result": {1, 2}, "obj": object()})
    json.dumps(event)
    assert event["data"]["result"] == [1, 2]
    assert event["data"]["obj"].startswith("<object object")


def test_publish_assigns_ordered_ids_and_a_sequence_per_run():
    first = publishing.publish("task.sent", task_id="a", name="n")
    other = publishing.publish("task.sent", task_id="b", name="n")
    second = publishing.publish("task.received", task_id="a", name="n")
    assert events.parse_id(first["id"]) < events.parse_id(other["id"]) < events.parse_id(second["id"])
    assert (first["seq"], other["seq"], second["seq"]) == (1, 1, 2)
    assert [e["type"] for e in history.task_events("a")] == ["task.sent", "task.received"]
    assert history.task_events("a")[1]["id"] == second["id"]


@pytest.mark.django_db  # a run with no task.sent in Redis is completed from the database
def test_the_stream_and_the_run_list_hold_the_same_event():
    published = publishing.publish("task.progress", task_id="a", name="n", data={"current": 1, "total": 1})
    [from_stream] = history.read_after("0-0")
    [from_list] = history.task_events("a")
    assert from_stream == from_list
    assert json.loads(from_stream.text) == from_stream
    assert from_stream["id"] == published["id"]


def test_worker_events_go_to_the_stream_only():
    publishing.publish("worker.online", worker="celery@x")
    assert [e["type"] for e in history.read_after("0-0")] == ["worker.online"]
    assert history.recent_task_ids() == []


@pytest.mark.parametrize("bad", ["", "abc", "12-x", "-1", "1-2-3"])
def test_parse_id_rejects_what_is_not_an_event_id(bad):
    with pytest.raises(ValueError):
        events.parse_id(bad)


def test_publish_never_raises_when_redis_is_down(caplog, monkeypatch):
    publisher = publishing.Publisher("redis://127.0.0.1:1/0")
    monkeypatch.setattr(publishing, "_publisher", publisher)
    try:
        assert publishing.publish("task.sent", task_id="t") is None  # buffered: no id
        assert publishing.publish("task.progress", wait=False, task_id="t")["uid"]
        assert publisher.stats()["buffered"] >= 2  # (and whatever another thread published)
        assert caplog.text.count("cannot publish to Redis") == 1  # once per outage, not per event
    finally:
        left = publisher.close(timeout=0)
    assert left >= 2
    assert f"{left} events could not be published" in caplog.text


def test_publish_logs_and_counts_what_it_cannot_handle(caplog, monkeypatch):
    def broken(event):
        raise RuntimeError("a bug")

    monkeypatch.setattr(publishing._publisher, "publish", broken)
    errors = publishing._publisher.errors
    assert publishing.publish("task.sent", task_id="t") is None
    assert publishing._publisher.errors == errors + 1
    assert "could not publish task.sent" in caplog.text


@pytest.mark.django_db  # a run with no task.sent in Redis is completed from the database
def test_events_published_without_waiting_arrive_complete_and_in_order():
    for i in range(300):
        publishing.publish(
            "task.progress", wait=False, task_id="quick", name="n", data={"current": i + 1, "total": 300}
        )
    from tests.helpers import wait_for

    stored = wait_for(
        lambda: len(history.task_events("quick")) == 300 and history.task_events("quick"), timeout=5
    )
    assert [e["data"]["current"] for e in stored] == list(range(1, 301))
    assert [e["seq"] for e in stored] == list(range(1, 301))


@pytest.mark.django_db  # a run with no task.sent in Redis is completed from the database
def test_the_no_wait_connection_is_reopened_in_a_forked_child():
    import os

    publishing.publish("task.started", wait=False, task_id="parent", name="n")
    pid = os.fork()
    if pid == 0:  # the child publishes on a connection of its own, then leaves at once
        try:
            publishing.publish("task.started", wait=False, task_id="child", name="n")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    from tests.helpers import wait_for

    wait_for(lambda: history.task_events("child") and history.task_events("parent"), timeout=5)


@pytest.mark.django_db  # a run with no task.sent in Redis is completed from the database
def test_threads_publishing_without_waiting_share_the_connection_safely():
    # A threads pool: every thread of the process writes on the one no-reply connection.
    # Results of some kilobytes go out in several socket writes, which must not interleave.
    import threading

    from tests.helpers import wait_for

    def publish_many(thread: int) -> None:
        for i in range(200):
            data = {"current": i + 1, "result": "x" * 20_000}
            publishing.publish("task.progress", wait=False, task_id=f"thread-{thread}", data=data)

    threads = [threading.Thread(target=publish_many, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for t in range(8):
        stored = wait_for(lambda t=t: len(history.task_events(f"thread-{t}")) == 200, timeout=5)
        assert stored
        assert [e["data"]["current"] for e in history.task_events(f"thread-{t}")] == list(range(1, 201))


@pytest.mark.django_db  # a run with no task.sent in Redis is completed from the database
def test_an_event_with_a_lone_surrogate_is_published_with_a_replacement_character():
    # JSON's "\ud800" makes a str that UTF-8 cannot carry; one bad string must not cost the event.
    published = publishing.publish("task.progress", task_id="sur", data={"result": "lone \ud800", "n": 1})
    assert published is not None
    assert published["id"]
    publishing.publish("task.progress", wait=False, task_id="sur", data={"result": ["\udc80\ud83d\ude00"]})
    publishing.publish("task.log", wait=False, task_id="sur\ud800", data={"message": "id too"})
    assert publishing.get_publisher().flush(5)
    stored = history.task_events("sur")
    assert [e["data"]["result"] for e in stored] == ["lone \ufffd", ["\ufffd\U0001f600"]]
    assert history.task_events("sur\ufffd")[0]["data"]["message"] == "id too"
    assert publishing.utf8("fine \U0001f600") == "fine \U0001f600".encode()


def test_every_event_says_which_kind_of_process_made_it_unless_its_data_does():
    assert events.make_event("task.sent", task_id="t")["data"]["process"] == "web"
    assert type(events.make_event("task.sent", task_id="t")["data"]["process"]) is str  # JSON data
    given = events.make_event("log.gap", data={"process": "host:12"})
    assert given["data"]["process"] == "host:12"


def test_a_thread_can_take_a_role_that_leaves_the_rest_of_the_process_alone():
    import threading

    from celery_live.log.vocabulary import ProcessRole

    seen = {}

    def embedded_worker():
        events.set_process_role(ProcessRole.WORKER, thread_only=True)
        seen["worker"] = events.make_event("task.received", task_id="t")["data"]["process"]

    thread = threading.Thread(target=embedded_worker)
    thread.start()
    thread.join()
    assert seen == {"worker": "worker"}
    assert events.make_event("task.sent", task_id="t")["data"]["process"] == "web"


def test_epoch_reads_message_etas_with_or_without_a_zone():
    assert events.epoch("2026-12-01T00:00:10+00:00") == 1796083210.0
    assert events.epoch("2026-12-01T01:00:10+01:00") == 1796083210.0
    assert events.epoch("2026-12-01T00:00:10") == 1796083210.0  # no zone: UTC
    assert events.epoch("soon") is None
    assert events.epoch(None) is None
