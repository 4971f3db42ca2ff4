"""Worker control: one form per action validates the input against the worker's last beat;
a command reaches the one worker named (a real in-thread worker) and what it answered is
recorded with who sent it."""

import time

import pytest

from celery_live.control.runs import ControlError
from celery_live.control.workers import ControlStatus, find_worker, form_class, send
from celery_live.log import store
from celery_live.log.workers import WorkerRecord, mark_offline, read_workers, record_worker
from celery_live.runs import history
from config.celery import app
from tests.helpers import wait_for

TASK = "apps.assets.tasks.test_task"


def worker(hostname="w@h", **data) -> WorkerRecord:
    """A beat of an instance of `hostname`: 2 processes, consuming `celery`, knowing `app.a`."""
    beat = {"instance": "41-1000", "concurrency": 2, "queues": ["celery"], "registered": ["app.a"], **data}
    return WorkerRecord.from_beat(hostname, time.time(), beat)


def errors(action, body, **data):
    form = form_class(action)(body, worker=worker(**data))
    assert not form.is_valid()
    return {field: list(messages) for field, messages in form.errors.items()}


@pytest.mark.parametrize(
    ("action", "body", "expected"),
    [
        ("pool_grow", {}, {"n": ["This field is required."]}),
        ("pool_grow", {"n": 0}, {"n": ["Ensure this value is greater than or equal to 1."]}),
        ("pool_grow", {"n": 65}, {"n": ["Ensure this value is less than or equal to 64."]}),
        ("pool_grow", {"n": [1]}, {"n": ["Must be a single value, not a list or an object."]}),
        ("pool_grow", {"n": True}, {"n": ["Enter a whole number."]}),
        ("pool_shrink", {"n": 2}, {"n": ["w@h has 2 processes: shrinking by 2 would leave none."]}),
        ("add_consumer", {"queue": "two words"}, {"queue": ["A queue's name, without spaces."]}),
        ("add_consumer", {"queue": 5}, {"queue": ["Must be a string."]}),
        (
            "add_consumer",
            {"queue": "q\ud800"},
            {"queue": ["Contains an invalid character (a lone UTF-16 surrogate)."]},
        ),
        (
            "cancel_consumer",
            {"queue": "other"},
            {"queue": ["w@h does not consume from other (it consumes celery)."]},
        ),
        (
            "rate_limit",
            {"task": "app.nope", "rate": "10/m"},
            {"task": ["w@h does not know the task app.nope."]},
        ),
        (
            "rate_limit",
            {"task": "app.a", "rate": "fast"},
            {"rate": ["A rate such as 10/s, 100/m or 1000/h (a number alone: per second; 0: no limit)."]},
        ),
    ],
)
def test_each_action_refuses_bad_input_with_a_message_per_field(action, body, expected):
    assert errors(action, body) == expected


@pytest.mark.parametrize(
    ("action", "body", "arguments"),
    [
        ("pool_grow", {"n": "2"}, {"n": 2}),
        ("pool_shrink", {"n": 1}, {"n": 1}),
        ("add_consumer", {"queue": "priority"}, {"queue": "priority"}),
        ("cancel_consumer", {"queue": "celery"}, {"queue": "celery"}),
        ("rate_limit", {"task": "app.a", "rate": "0"}, {"task_name": "app.a", "rate_limit": "0"}),
        ("shutdown", {}, {}),
    ],
)
def test_valid_input_becomes_the_commands_arguments(action, body, arguments):
    form = form_class(action)(body, worker=worker())
    assert form.is_valid(), form.errors
    assert form.arguments() == arguments


def test_an_unknown_action_is_a_404():
    with pytest.raises(ControlError) as refused:
        form_class("frobnicate")
    assert refused.value.status == 404


def test_a_worker_never_seen_is_a_404_and_an_offline_one_a_409(redis_client):
    with pytest.raises(ControlError) as unknown:
        find_worker("nobody@h")
    assert (unknown.value.status, str(unknown.value)) == (404, "unknown worker 'nobody@h'")
    record_worker(redis_client, worker())
    assert find_worker("w@h").instance == "41-1000"
    mark_offline(redis_client, "41-1000", "shut down")
    with pytest.raises(ControlError) as offline:
        find_worker("w@h")
    assert (offline.value.status, str(offline.value)) == (409, "worker w@h is offline (shut down)")


def own_record(hostname: str) -> WorkerRecord:
    """The in-thread worker's own record, from its heartbeats (every 2 s: each test starts
    with an empty log)."""
    return wait_for(
        lambda: next((r for r in read_workers(store.client()) if r.hostname == hostname), None),
        message=f"a heartbeat of {hostname}",
    )


def control_events():
    return [e for e in history.read_after("0-0") if e["type"] == "worker.control"]


def test_a_command_reaches_the_worker_and_its_answer_is_recorded_with_who_sent_it(celery_worker):
    hostname = celery_worker.hostname
    worker = own_record(hostname)
    form = form_class("rate_limit")({"task": TASK, "rate": "100/m"}, worker=worker)
    try:
        outcome = send(form, by="alice")
    finally:
        app.tasks[TASK].rate_limit = None  # the in-thread worker shares this process's tasks
    assert outcome.status == ControlStatus.ACKNOWLEDGED
    assert outcome.message == f"rate_limit sent → acknowledged by {hostname}"
    assert outcome.replies == {hostname: {"ok": "new rate limit set successfully"}}
    [event] = control_events()
    assert event["worker"] == hostname
    assert event["data"]["by"] == "alice"
    assert event["data"]["instance"] == worker.instance
    assert event["data"]["message"] == outcome.message


def test_a_refusal_says_what_the_worker_answered(celery_worker):
    hostname = celery_worker.hostname
    worker = own_record(hostname)
    assert (worker.pool, worker.concurrency) == ("solo", 1)
    outcome = send(form_class("pool_grow")({"n": 1}, worker=worker))  # a solo pool cannot grow
    assert outcome.status == ControlStatus.REFUSED
    assert outcome.message.startswith(f"pool_grow sent → {hostname} refused: AttributeError(")


def test_a_command_to_a_worker_that_does_not_answer_says_so(redis_client):
    record_worker(redis_client, worker("ghost@h"))
    outcome = send(form_class("pool_grow")({"n": 1}, worker=find_worker("ghost@h")))
    assert (outcome.status, outcome.message) == (ControlStatus.NO_REPLY, "pool_grow sent → no reply")
    assert control_events()[0]["data"]["status"] == "no reply"
