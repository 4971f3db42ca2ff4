"""The words every part of celery-live shares: event types, run states, and what each means.

An event type is said here once, with the state it puts a run in, how the page's timeline
names it and describes its data, and the line the terminal prints for it
(`EVENT_KINDS`); a run state with how the page names it and where it stands in a run
(`STATE_KINDS`). The fold (runs/state.py), the page (stream/fragments.py), the terminal
(terminal/watch.py) and the list's filters (runs/filters.py) read these tables.

`EventType` and `State` are `StrEnum`s whose values are the strings on the wire: an enum
member *is* its string (`EventType.TASK_SENT == "task.sent"`, JSON writes "task.sent"),
so events read from the log compare equal to them and the format does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NotRequired, TypedDict


class EventType(StrEnum):
    """What an event says happened (its `type`)."""

    TASK_SENT = "task.sent"
    #: A run that exists before it is sent: a chord's callback, announced by its header's
    #: messages, which Celery sends only once every header task has succeeded.
    TASK_WAITING = "task.waiting"
    TASK_RECEIVED = "task.received"
    TASK_STARTED = "task.started"
    TASK_PROGRESS = "task.progress"
    #: A note on a run's timeline: a control request, events lost while Redis was away.
    TASK_LOG = "task.log"
    TASK_RETRIED = "task.retried"
    TASK_SUCCEEDED = "task.succeeded"
    TASK_FAILED = "task.failed"
    TASK_REVOKED = "task.revoked"
    TASK_REJECTED = "task.rejected"
    TASK_LOST = "task.lost"
    WORKER_ONLINE = "worker.online"
    WORKER_HEARTBEAT = "worker.heartbeat"
    WORKER_OFFLINE = "worker.offline"
    #: A control command sent to a worker (pool_grow, add_consumer, ...), with who sent it
    #: and the worker's acknowledgement (control/workers.py).
    WORKER_CONTROL = "worker.control"
    QUEUE_DEPTH = "queue.depth"
    BEAT_SENT = "beat.sent"
    #: The gap marker: how many events one process had to drop while Redis was away.
    #: data: {"message": "n events lost while Redis was down", "lost": n, "task_ids": [up
    #: to 50 affected runs], "since": ts, "until": ts, "process": "<hostname>:<pid>"}.
    LOG_GAP = "log.gap"


#: The types of events about one run (they need a `task_id`).
TASK_EVENT_TYPES = frozenset(etype for etype in EventType if etype.startswith("task."))


class State(StrEnum):
    """The state a run is in (Celery's names, and LOST for a run whose worker died)."""

    PENDING = "PENDING"
    RECEIVED = "RECEIVED"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"
    REJECTED = "REJECTED"
    LOST = "LOST"


class Event(TypedDict):
    """One event as the log holds it and every view reads it (the format: events.py)."""

    v: int
    #: The Redis stream id and the place among its run's events, given when it is published.
    id: NotRequired[str]
    seq: NotRequired[int]
    type: str
    task_id: str | None
    name: str | None
    state: str | None
    ts: float
    uid: str
    worker: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class StateKind:
    """What a run state means to the views and the fold."""

    #: How the page names it.
    label: str
    #: Where it stands within one attempt: the fold moves a run only to a greater
    #: (attempt, rank), so events arriving out of order never set it back.
    rank: int
    #: Whether it ends the run: no later event brings the run back (bar a LOST run's
    #: redelivery, see runs/state.py).
    final: bool = False


# After every state a run passes through (the fold never moves a final run anyway).
_FINAL_RANK = 5
STATE_KINDS: dict[State, StateKind] = {
    State.PENDING: StateKind("Queued", 0),
    State.RECEIVED: StateKind("Received", 1),
    State.STARTED: StateKind("Started", 2),
    State.PROGRESS: StateKind("Running", 3),
    State.RETRY: StateKind("Retrying", 4),
    State.SUCCESS: StateKind("Succeeded", _FINAL_RANK, final=True),
    State.FAILURE: StateKind("Failed", _FINAL_RANK, final=True),
    State.REVOKED: StateKind("Revoked", _FINAL_RANK, final=True),
    State.REJECTED: StateKind("Rejected", _FINAL_RANK, final=True),
    State.LOST: StateKind("Lost", _FINAL_RANK, final=True),
}
FINAL_STATES = frozenset(state for state, kind in STATE_KINDS.items() if kind.final)
#: States in which a worker process is on the run (what Terminate can stop).
RUNNING_STATES = frozenset({State.STARTED, State.PROGRESS, State.RETRY})


def state_label(state: str) -> str:
    """How the page names `state` (a state this version does not know: its own name)."""
    kind = STATE_KINDS.get(state)
    return kind.label if kind is not None else state.title()


def state_rank(state: str | None) -> int:
    """`StateKind.rank` of `state` (0 for a state this version does not know)."""
    kind = STATE_KINDS.get(state)
    return kind.rank if kind is not None else 0


# What the timeline says of an event's data, by type (`EventKind.detail`); by default its
# message or reason (notes, rejections, losses).


def _said(event: Event) -> str:
    data = event.get("data") or {}
    return str(data.get("message") or data.get("reason") or "")


def _sent(event: Event) -> str:
    data = event.get("data") or {}
    extra = f" (re-run of {data['rerun_of']})" if data.get("rerun_of") else ""
    return f"to queue {data.get('queue') or '?'}{extra}"


def _waiting(event: Event) -> str:
    return f"for {(event.get('data') or {}).get('waiting_for') or '?'}"


def _taken(event: Event) -> str:
    data = event.get("data") or {}
    attempt = data.get("attempt") or 0
    return (
        f"by {event.get('worker') or '?'}"
        + (f", attempt {attempt + 1}" if attempt else "")
        + (" (redelivered)" if data.get("redelivered") else "")
    )


def _progress(event: Event) -> str:
    data = event.get("data") or {}
    return f"{data.get('current')}/{data.get('total')}: {data.get('result')}"


def _succeeded(event: Event) -> str:
    return "reconciled from the result backend" if (event.get("data") or {}).get("reconciled") else ""


def _failed(event: Event) -> str:
    return (event.get("data") or {}).get("exception") or ""


def _revoked(event: Event) -> str:
    data = event.get("data") or {}
    return "terminated" if data.get("terminated") else ("expired" if data.get("expired") else "")


@dataclass(frozen=True)
class EventKind:
    """What an event type means to the fold, the page and the terminal."""

    #: The state it puts a run in (None: it does not change the run's state).
    state: State | None
    #: How the page's timeline names it.
    label: str
    #: One line on what its data says, for the timeline.
    detail: Callable[[Event], str] = _said
    #: The line the terminal prints for it (None: it prints none), a `str.format`
    #: template with the fields `worker`, `reason`, `current`, `total`, `result`,
    #: `exception` and `took` (terminal/watch.py).
    line: str | None = None


EVENT_KINDS: dict[EventType, EventKind] = {
    EventType.TASK_SENT: EventKind(State.PENDING, "Sent", _sent, "📤 sent"),
    EventType.TASK_WAITING: EventKind(State.PENDING, "Waiting", _waiting, "⏳ waiting for its chord header"),
    EventType.TASK_RECEIVED: EventKind(State.RECEIVED, "Received", _taken, "📥 received by {worker}"),
    EventType.TASK_STARTED: EventKind(State.STARTED, "Started", _taken, "🏃 started on {worker}"),
    EventType.TASK_PROGRESS: EventKind(
        State.PROGRESS, "Progress", _progress, "  ✔ iteration {current}/{total}: {result}"
    ),
    EventType.TASK_LOG: EventKind(None, "Note"),
    EventType.TASK_RETRIED: EventKind(State.RETRY, "Retry", line="🔁 retrying: {reason}"),
    EventType.TASK_SUCCEEDED: EventKind(State.SUCCESS, "Succeeded", _succeeded, "✅ SUCCESS{took}"),
    EventType.TASK_FAILED: EventKind(State.FAILURE, "Failed", _failed, "❌ FAILURE: {exception}"),
    EventType.TASK_REVOKED: EventKind(State.REVOKED, "Revoked", _revoked, "🛑 revoked"),
    EventType.TASK_REJECTED: EventKind(State.REJECTED, "Rejected", line="🚫 rejected: {reason}"),
    EventType.TASK_LOST: EventKind(State.LOST, "Lost", line="💀 lost: {reason}"),
    EventType.WORKER_ONLINE: EventKind(None, "Worker online"),
    EventType.WORKER_HEARTBEAT: EventKind(None, "Heartbeat"),
    EventType.WORKER_OFFLINE: EventKind(None, "Worker offline"),
    EventType.WORKER_CONTROL: EventKind(None, "Worker control"),
    EventType.QUEUE_DEPTH: EventKind(None, "Queue depth"),
    EventType.BEAT_SENT: EventKind(None, "Beat sent"),
    EventType.LOG_GAP: EventKind(None, "Events lost"),
}
