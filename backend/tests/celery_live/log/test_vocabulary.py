"""The vocabulary: every event type and state has its one entry, and the wire keeps its words."""

import json

import pytest

from celery_live.log.events import make_event
from celery_live.log.vocabulary import EVENT_KINDS, FINAL_STATES, STATE_KINDS, EventType, State, state_rank

WIRE_TYPES = [
    "task.sent",
    "task.waiting",
    "task.received",
    "task.started",
    "task.progress",
    "task.log",
    "task.retried",
    "task.succeeded",
    "task.failed",
    "task.revoked",
    "task.rejected",
    "task.lost",
    "worker.online",
    "worker.heartbeat",
    "worker.offline",
    "worker.control",
    "queue.depth",
    "beat.sent",
    "log.gap",
]
WIRE_STATES = [
    "PENDING",
    "RECEIVED",
    "STARTED",
    "PROGRESS",
    "RETRY",
    "SUCCESS",
    "FAILURE",
    "REVOKED",
    "REJECTED",
    "LOST",
]


def test_the_enums_values_are_the_strings_on_the_wire():
    assert [etype.value for etype in EventType] == WIRE_TYPES
    assert [state.value for state in State] == WIRE_STATES
    assert json.dumps([EventType.TASK_SENT, State.PENDING]) == '["task.sent", "PENDING"]'


@pytest.mark.parametrize("etype", list(EventType))
def test_every_event_type_has_its_entry(etype):
    kind = EVENT_KINDS[etype]
    assert kind.state is None or kind.state in State
    assert kind.label
    event = make_event(etype, task_id="t", worker="celery@w")
    assert isinstance(kind.detail(event), str)
    if kind.line is not None:
        kind.line.format(worker="w", reason="r", current=1, total=2, result="x", exception="E", took="")


@pytest.mark.parametrize("state", list(State))
def test_every_state_has_its_label_and_rank(state):
    kind = STATE_KINDS[state]
    assert kind.label
    assert state_rank(state) == kind.rank
    # Final states end a run: they come after every state a run passes through.
    if kind.final:
        assert all(kind.rank > other.rank for other in STATE_KINDS.values() if not other.final)


def test_the_states_types_imply_are_the_ones_the_wire_carries():
    implied = {etype.value: (kind.state and kind.state.value) for etype, kind in EVENT_KINDS.items()}
    assert implied["task.sent"] == "PENDING"
    assert implied["task.progress"] == "PROGRESS"
    assert implied["task.lost"] == "LOST"
    assert implied["task.log"] is None
    assert {"SUCCESS", "FAILURE", "REVOKED", "REJECTED", "LOST"} == FINAL_STATES


def test_an_event_holds_plain_strings_and_encodes_as_before():
    event = make_event(EventType.TASK_PROGRESS, task_id="t", ts=1.0, data={"current": 1})
    assert type(event["type"]) is str
    assert type(event["state"]) is str
    assert event == {
        **make_event("task.progress", task_id="t", ts=1.0, data={"current": 1}),
        "uid": event["uid"],
    }
    assert json.dumps(event).startswith('{"v": 1, "type": "task.progress", "task_id": "t", "name": null, ')


def test_a_state_this_version_does_not_know_still_has_a_label_and_a_rank():
    from celery_live.log.vocabulary import state_label

    assert state_label("ZOMBIE") == "Zombie"
    assert state_rank("ZOMBIE") == 0
