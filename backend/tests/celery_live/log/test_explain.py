"""Explain mode's table: every event type says its signal and what Celery did, and which
process made it (data["process"], or the usual one for events older than that field)."""

from celery_live.log.events import make_event
from celery_live.log.vocabulary import (
    EVENT_KINDS,
    PROCESS_LABELS,
    EventType,
    ProcessRole,
    explain_sentence,
    process_of,
)


def test_every_event_type_names_its_signal_and_explains_itself():
    for etype in EventType:
        kind = EVENT_KINDS[etype]
        assert kind.signal, etype
        assert kind.explain.endswith("."), etype
    assert EVENT_KINDS[EventType.TASK_SENT].signal == "before_task_publish"
    assert EVENT_KINDS[EventType.TASK_STARTED].signal == "task_prerun"
    assert EVENT_KINDS[EventType.TASK_FAILED].signal == "task_failure"


def test_the_sentence_is_filled_in_from_the_event_and_says_what_it_lacks():
    sent = {"type": EventType.TASK_SENT, "data": {"queue": "celery", "process": "web"}}
    assert explain_sentence(sent) == (
        "The web process serialized the call and put the message on queue celery; nothing runs "
        "until a worker takes it."
    )
    started = {"type": EventType.TASK_STARTED, "worker": "celery@box", "data": {}}
    assert "A pool process of celery@box" in explain_sentence(started)
    assert "step ? of ?" in explain_sentence({"type": EventType.TASK_PROGRESS, "data": {}})
    assert explain_sentence({"type": "task.unheard-of", "data": {}}) == ""


def test_the_process_is_the_events_own_else_the_usual_one_for_its_type():
    assert process_of({"type": EventType.TASK_SENT, "data": {"process": "pool"}}) is ProcessRole.POOL
    # Older events: from the type.
    assert process_of({"type": EventType.TASK_RECEIVED, "data": {}}) is ProcessRole.WORKER
    assert process_of({"type": EventType.TASK_STARTED, "data": {}}) is ProcessRole.POOL
    assert process_of({"type": EventType.BEAT_SENT, "data": {}}) is ProcessRole.BEAT
    # A gap marker's "process" is a host and pid, not a role.
    assert process_of({"type": EventType.LOG_GAP, "data": {"process": "box:42"}}) is ProcessRole.WEB
    assert PROCESS_LABELS[process_of(make_event(EventType.TASK_SENT, task_id="t"))] == "web process"
