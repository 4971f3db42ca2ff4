"""Celery events -> our events (bridge/translate.py): pure, so every case is checked here,
garbage and disorder included; the real stream is test_receiver.py's."""

from __future__ import annotations

import json
import math
import random

import pytest

from celery_live.bridge.translate import (
    CELERY_TYPES,
    MEMORY,
    Bridged,
    Skipped,
    Translator,
    arguments,
    exception_text,
)
from celery_live.log.events import encode, make_event
from celery_live.log.store import dedupe_key, sent_dedupe_key
from celery_live.log.vocabulary import EventType, ProcessRole, explain_sentence, signal_of
from celery_live.log.workers import SHUT_DOWN

TASK = "f5b3b2a0-0000-4000-8000-000000000001"
WORKER = "other@host"
T0 = 1_790_000_000.0


def celery(kind: str, **fields) -> dict:
    """A Celery event as its receiver hands it over (clock, pid, timestamps included)."""
    base = {"type": kind, "hostname": WORKER, "timestamp": T0, "local_received": T0 + 0.01}
    base.update(pid=4242, clock=7, utcoffset=0)
    if kind.startswith("task-"):
        base["uuid"] = TASK
    return {**base, **fields}


def sent(**fields) -> dict:
    defaults = {"hostname": "gen1@web", "name": "other.add", "args": "[1, 2]", "kwargs": "{'z': 3}"}
    return celery("task-sent", **defaults | {"retries": 0, "queue": "celery", "routing_key": "q"} | fields)


def assert_has(data: dict, **expected) -> None:
    """`data` holds each of `expected`'s keys with its value."""
    assert {key: data.get(key, "<missing>") for key in expected} == expected


def received(**fields) -> dict:
    defaults = {"name": "other.add", "args": "[1, 2]", "kwargs": "{'z': 3}", "retries": 0}
    return celery("task-received", **defaults | fields)


def bridged(translator: Translator, event: dict, instance: str | None = "4242-1") -> Bridged:
    out = translator.translate(event, instance)
    assert isinstance(out, Bridged), out
    # What the receiver publishes is a valid event, and JSON carries it.
    json.loads(encode(make_event(out.type, **out.fields)))
    return out


def test_a_run_goes_sent_received_started_succeeded_with_what_its_first_events_said():
    tr = Translator()
    events = [
        sent(),
        received(),
        celery("task-started"),
        celery("task-succeeded", result="3", runtime=0.25),
    ]
    out = [bridged(tr, event) for event in events]
    assert [o.type for o in out] == [
        EventType.TASK_SENT,
        EventType.TASK_RECEIVED,
        EventType.TASK_STARTED,
        EventType.TASK_SUCCEEDED,
    ]
    assert [o.fields["name"] for o in out] == ["other.add"] * 4  # later events lack it
    assert [o.fields["worker"] for o in out] == [None, WORKER, WORKER, WORKER]  # a sender holds nothing
    assert [o.fields["data"]["attempt"] for o in out] == [0, 0, 0, 0]
    assert all(o.fields["ts"] == T0 and o.fields["task_id"] == TASK for o in out)
    assert all(o.fields["data"]["process"] == ProcessRole.BRIDGE for o in out)
    assert_has(out[0].fields["data"], args=[1, 2], kwargs={"z": 3}, queue="celery", sender="gen1@web")
    assert_has(out[1].fields["data"], args=[1, 2], instance="4242-1", queue="celery")
    assert_has(out[3].fields["data"], result=3, runtime=0.25)
    assert out[0].dedupe == sent_dedupe_key(TASK, 0)  # the key our signal's task.sent takes
    assert len({o.dedupe for o in out}) == 4
    assert TASK not in tr.tasks  # an ended task is forgotten


def test_the_same_event_has_the_same_dedupe_key_in_every_bridge_and_another_event_another():
    one, two = Translator(), Translator()
    assert bridged(one, celery("task-started")).dedupe == bridged(two, celery("task-started")).dedupe
    assert bridged(one, celery("task-started", clock=8)).dedupe != bridged(one, celery("task-started")).dedupe
    heartbeat = celery("worker-heartbeat", freq=2.0)
    assert bridged(one, heartbeat).dedupe == bridged(two, dict(heartbeat)).dedupe
    assert bridged(one, heartbeat).dedupe.startswith(dedupe_key("bridge:"))


def test_a_failure_says_its_exception_as_our_signals_do():
    tr = Translator()
    bridged(tr, received())
    out = bridged(tr, celery("task-failed", exception="ValueError('no good')", traceback="Traceback …"))
    assert_has(out.fields, name="other.add")
    data = out.fields["data"]
    assert_has(data, exception="ValueError: no good", exc_type="ValueError", traceback="Traceback …")


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("ValueError('no good')", "ValueError: no good"),
        ("KeyError('a', 2)", "KeyError: ('a', 2)"),
        ("Boom()", "Boom"),
        ("pkg.mod.Error(<object at 0x1>)", "pkg.mod.Error: <object at 0x1>"),
        ("ValueError('cut off at 1024 chars", "ValueError('cut off at 1024 chars"),
        ("not a repr at all", "not a repr at all"),
        ("", None),
        (42, None),
        (None, None),
    ],
)
def test_exception_reprs_read_back_where_they_can(raw, text):
    assert exception_text(raw) == text


@pytest.mark.parametrize(
    ("args", "kwargs", "data"),
    [
        ("[1, 'a']", "{'k': None}", {"args": [1, "a"], "kwargs": {"k": None}}),
        ("(1,)", "{}", {"args": [1], "kwargs": {}}),
        ([3], {"k": 1}, {"args": [3], "kwargs": {"k": 1}}),  # a sender that sent values
        ("[<object>]", "{'x': <Obj>}", {"argsrepr": "[<object>]", "kwargsrepr": "{'x': <Obj>}"}),
        ("[1, 2, 3, ...", "{'a': 'b...", {"argsrepr": "[1, 2, 3, ...", "kwargsrepr": "{'a': 'b..."}),
        ("5", "[1]", {"argsrepr": "5", "kwargsrepr": "[1]"}),  # not a list, not a dict
        (None, None, {}),
        (5, 7.5, {"argsrepr": "5", "kwargsrepr": "7.5"}),
        ("[" * 5000 + "]" * 5000, "{}", {"argsrepr": "[" * 5000 + "]" * 5000, "kwargs": {}}),
    ],
)
def test_arguments_read_back_from_their_reprs_or_are_kept_as_reprs(args, kwargs, data):
    assert arguments(args, kwargs) == data


def test_a_retry_carries_the_next_messages_eta_and_the_next_attempt_is_numbered():
    tr = Translator()
    bridged(tr, sent())
    bridged(tr, received())
    bridged(tr, celery("task-started"))
    # The pool child sends the next attempt's message before the main process tells the retry.
    again = bridged(tr, sent(retries=1, eta="2026-12-01T10:00:05+00:00"))
    retried = bridged(tr, celery("task-retried", exception="IOError('down')", traceback="tb"))
    assert_has(again.fields["data"], attempt=1)
    assert again.dedupe == sent_dedupe_key(TASK, 1)
    assert retried.type == EventType.TASK_RETRIED
    # the attempt that ends, and when the next is due (its message's ETA)
    assert_has(
        retried.fields["data"],
        attempt=0,
        exception="IOError: down",
        reason="Retry: IOError: down",
        retry_at=1_796_119_205.0,
    )
    second = bridged(tr, received(retries=1))
    assert second.fields["data"]["attempt"] == 1
    assert bridged(tr, celery("task-started")).fields["data"]["attempt"] == 1


def test_events_out_of_order_or_of_an_unknown_task_still_translate():
    tr = Translator()
    started = bridged(tr, celery("task-started"))  # its task-received never came
    assert_has(started.fields, name=None)
    assert_has(started.fields["data"], attempt=None)
    late = bridged(tr, received())
    assert late.fields["name"] == "other.add"
    done = bridged(tr, celery("task-succeeded", uuid="unknown-task", result="'x'"))
    assert_has(done.fields, name=None)
    assert_has(done.fields["data"], result="x")


def test_revoked_and_rejected():
    tr = Translator()
    revoked = bridged(tr, celery("task-revoked", terminated=True, signum=15, expired=False))
    assert revoked.type == EventType.TASK_REVOKED
    assert_has(revoked.fields["data"], terminated=True, signum="15", expired=False)
    rejected = bridged(tr, celery("task-rejected", requeue=True))
    assert rejected.type == EventType.TASK_REJECTED
    assert rejected.fields["data"]["reason"] == "rejected by the worker (requeued)"


def test_worker_events_carry_the_instance_and_the_tasks_it_holds():
    tr = Translator()
    online = bridged(tr, celery("worker-online", freq=2.0, processed=0, sw_ident="py-celery", sw_ver="5.7.0"))
    assert online.type == EventType.WORKER_ONLINE
    assert_has(online.fields, worker=WORKER)
    assert_has(online.fields["data"], instance="4242-1", software="py-celery 5.7.0")
    assert online.record.instance == "4242-1"
    bridged(tr, received())
    bridged(tr, received(uuid="second"))
    bridged(tr, celery("task-started"))
    beat = bridged(tr, celery("worker-heartbeat", freq=2.0, processed=1, loadavg=[0.5, "x", 1]))
    assert beat.type == EventType.WORKER_HEARTBEAT
    assert_has(
        beat.fields["data"],
        changed=True,
        active=[TASK],
        reserved=1,
        processed=1,
        load=[0.5, 1.0],
        interval=2.0,
        instance="4242-1",
    )
    assert (beat.record.ts, beat.record.active) == (T0, (TASK,))
    same = bridged(tr, celery("worker-heartbeat", freq=2.0, processed=1, loadavg=[0.1], clock=9))
    assert same.fields["data"]["changed"] is False  # only the load moved
    bridged(tr, celery("task-failed", exception="E()"))
    assert bridged(tr, celery("worker-heartbeat", clock=10)).fields["data"]["failed"] == 1
    offline = bridged(tr, celery("worker-offline"))
    assert (offline.type, offline.offline, offline.record) == (EventType.WORKER_OFFLINE, "4242-1", None)
    assert_has(offline.fields["data"], instance="4242-1", reason=SHUT_DOWN)


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({"type": "task-started", "hostname": WORKER}, "task-started without a uuid"),
        ({"type": "task-sent", "uuid": ""}, "task-sent without a uuid"),
        ({"type": "worker-heartbeat"}, "worker-heartbeat without a hostname"),
        ({"type": "worker-online", "hostname": 5}, "worker-online without a hostname"),
        (["task-sent"], "not an event"),
        ("task-sent", "not an event"),
    ],
)
def test_an_event_it_cannot_retell_is_skipped_with_a_reason(event, kind):
    out = Translator().translate(event)
    assert isinstance(out, Skipped)
    assert out.kind == kind


@pytest.mark.parametrize(
    "event",
    [
        {"type": "task-progress", "uuid": TASK, "current": 1},  # a task's own event
        {"type": "task-cancelled", "uuid": TASK},
        {"type": "worker-unknown", "hostname": WORKER},
        {"type": None},
        {"type": ["task-sent"]},
        {},
    ],
)
def test_other_types_are_ignored(event):
    assert Translator().translate(event) is None


@pytest.mark.parametrize(
    ("timestamp", "local_received", "ts"),
    [
        ("yesterday", T0, T0),
        (math.nan, T0, T0),
        (math.inf, None, None),
        (-1, T0, T0),
        (True, T0, T0),
        (1e15, None, None),
        (T0, "x", T0),
    ],
)
def test_a_garbage_timestamp_falls_back_to_when_it_was_received(timestamp, local_received, ts):
    event = celery("task-started", timestamp=timestamp, local_received=local_received)
    assert bridged(Translator(), event).fields["ts"] == ts


def test_the_memory_is_bounded():
    tr = Translator(memory=3)
    for n in range(5):
        bridged(tr, received(uuid=f"task-{n}"))
    assert list(tr.tasks) == ["task-2", "task-3", "task-4"]
    assert bridged(tr, celery("task-started", uuid="task-0")).fields["name"] is None
    assert Translator().memory == MEMORY


GARBAGE = [None, True, -3, 0, 2**70, math.nan, math.inf, "", "x", "[1,", "{'a': <x>}", [], [1, "a"], {"k": 1}]
KEYS = [
    "uuid", "hostname", "name", "args", "kwargs", "retries", "eta", "expires", "queue", "routing_key",
    "root_id", "parent_id", "result", "runtime", "exception", "traceback", "terminated", "signum",
    "expired", "requeue", "freq", "processed", "active", "loadavg", "pid", "clock", "timestamp",
    "local_received", "sw_ident", "sw_ver",
]  # fmt: skip


def test_random_garbage_never_raises_and_what_it_makes_is_a_valid_event():
    rng = random.Random(15)
    tr = Translator(memory=50)
    kinds = [*CELERY_TYPES, "task-x", "worker-x"]
    made = 0
    for _ in range(3000):
        event = {key: rng.choice(GARBAGE) for key in rng.sample(KEYS, rng.randint(0, len(KEYS)))}
        event["type"] = rng.choice(kinds)
        if rng.random() < 0.7:
            event["uuid"] = rng.choice(["a", "b", "c"])
        if rng.random() < 0.7:
            event["hostname"] = rng.choice(["w1@h", "w2@h"])
        out = tr.translate(event, rng.choice([None, "1-2"]))
        if isinstance(out, Bridged):
            json.loads(encode(make_event(out.type, **out.fields)))
            made += 1
    assert made > 1000
    assert len(tr.tasks) <= 50


def test_explain_mode_says_a_bridged_event_came_from_celerys_events_not_our_signal():
    tr = Translator()
    event = make_event(**{"type": (out := bridged(tr, sent())).type, **out.fields})
    assert signal_of(event) == "Celery's task-sent event (bridged)"
    assert explain_sentence(event).startswith("The sending process serialized the call")
    ours = make_event(EventType.TASK_SENT, task_id=TASK, data={"queue": "q"})
    assert signal_of(ours) == "before_task_publish"
    assert explain_sentence(ours).startswith("The web process serialized")
