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
    if data.get("never_sent"):  # a chain's step after one that failed
        return str(data.get("reason") or "never sent")
    return "terminated" if data.get("terminated") else ("expired" if data.get("expired") else "")


def _logged(event: Event) -> str:
    """A task's log line with its level (worker/logs.py); a note's message as it is."""
    data = event.get("data") or {}
    return f"{data['level']}: {_said(event)}" if data.get("level") else _said(event)


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
    #: Explain mode: the Celery signal (or celery-live's own hook) that makes it.
    signal: str = ""
    #: Explain mode: one sentence on what Celery just did, a `str.format` template with
    #: the event's data fields plus `worker` and `process` (`explain_sentence`).
    explain: str = ""


EVENT_KINDS: dict[EventType, EventKind] = {
    EventType.TASK_SENT: EventKind(
        State.PENDING,
        "Sent",
        _sent,
        "📤 sent",
        signal="before_task_publish",
        explain=(
            "The {process} serialized the call and put the message on queue {queue}; nothing runs until a"
            " worker takes it."
        ),
    ),
    EventType.TASK_WAITING: EventKind(
        State.PENDING,
        "Waiting",
        _waiting,
        "⏳ waiting for its chord header",
        signal="before_task_publish (of the step it waits for)",
        explain=(
            "Celery has not sent this task yet: it waits for {waiting_for}, and its message goes to a "
            "queue only when that is done."
        ),
    ),
    EventType.TASK_RECEIVED: EventKind(
        State.RECEIVED,
        "Received",
        _taken,
        "📥 received by {worker}",
        signal="task_received",
        explain=(
            "The main process of worker {worker} took the message off the broker; it hands it to a pool "
            "process as soon as one is free."
        ),
    ),
    EventType.TASK_STARTED: EventKind(
        State.STARTED,
        "Started",
        _taken,
        "🏃 started on {worker}",
        signal="task_prerun",
        explain="A pool process of {worker} is now running the task's function.",
    ),
    EventType.TASK_PROGRESS: EventKind(
        State.PROGRESS,
        "Progress",
        _progress,
        "  ✔ iteration {current}/{total}: {result}",
        signal="report_progress (celery-live's API)",
        explain="The running task reported step {current} of {total} from inside its function.",
    ),
    EventType.TASK_LOG: EventKind(
        None,
        "Note",
        _logged,
        signal="get_task_logger (celery-live's log handler)",
        explain=(
            "A line for this run's timeline: the task's own logger wrote it, or celery-live noted a "
            "request about the run."
        ),
    ),
    EventType.TASK_RETRIED: EventKind(
        State.RETRY,
        "Retry",
        line="🔁 retrying: {reason}",
        signal="task_retry",
        explain=(
            "The task raised Retry: Celery sent a new message for the next attempt, delayed by its "
            "countdown, and this attempt ends."
        ),
    ),
    EventType.TASK_SUCCEEDED: EventKind(
        State.SUCCESS,
        "Succeeded",
        _succeeded,
        "✅ SUCCESS{took}",
        signal="task_success",
        explain=(
            "The function returned: the worker stored the result in the result backend, where "
            "AsyncResult.get() finds it."
        ),
    ),
    EventType.TASK_FAILED: EventKind(
        State.FAILURE,
        "Failed",
        _failed,
        "❌ FAILURE: {exception}",
        signal="task_failure",
        explain=(
            "The task raised {exception}: the worker stored the exception and its traceback in the result"
            " backend as FAILURE."
        ),
    ),
    EventType.TASK_REVOKED: EventKind(
        State.REVOKED,
        "Revoked",
        _revoked,
        "🛑 revoked",
        signal="task_revoked",
        explain=(
            "A revoke reached the worker over the broadcast exchange: it drops the message, or kills the "
            "pool process running it when asked to terminate."
        ),
    ),
    EventType.TASK_REJECTED: EventKind(
        State.REJECTED,
        "Rejected",
        line="🚫 rejected: {reason}",
        signal="task_rejected / task_unknown",
        explain=(
            "The worker refused the message (a task it does not know, or one it cannot decode): it will "
            "never run."
        ),
    ),
    EventType.TASK_LOST: EventKind(
        State.LOST,
        "Lost",
        line="💀 lost: {reason}",
        signal="the reaper (heartbeat expiry)",
        explain=(
            "The worker holding this run stopped sending heartbeats, so celery-live marked it lost; with "
            "acks_late the broker would deliver it again."
        ),
    ),
    EventType.WORKER_ONLINE: EventKind(
        None,
        "Worker online",
        signal="worker_ready",
        explain="A worker finished starting: its pool is up and it consumes from its queues.",
    ),
    EventType.WORKER_HEARTBEAT: EventKind(
        None,
        "Heartbeat",
        signal="heartbeat (celery-live's timer in the worker)",
        explain="The worker's main process says it is alive, with its pool, its load and what it holds.",
    ),
    EventType.WORKER_OFFLINE: EventKind(
        None,
        "Worker offline",
        signal="worker_shutdown",
        explain=(
            "The worker stopped (a warm shutdown lets running tasks finish first), or its heartbeats "
            "stopped coming."
        ),
    ),
    EventType.WORKER_CONTROL: EventKind(
        None,
        "Worker control",
        signal="app.control (a broadcast command)",
        explain=(
            "A remote-control command went to the worker over the broker's broadcast exchange, and the "
            "worker answered."
        ),
    ),
    EventType.QUEUE_DEPTH: EventKind(
        None,
        "Queue depth",
        signal="the queue sampler (celery-live)",
        explain="celery-live counted the messages waiting on the broker.",
    ),
    EventType.BEAT_SENT: EventKind(
        None,
        "Beat sent",
        signal="Beat's apply_entry",
        explain=(
            "Celery Beat found a periodic entry due and sent its task, just as .delay() would; a worker "
            "runs it like any other."
        ),
    ),
    EventType.LOG_GAP: EventKind(
        None,
        "Events lost",
        signal="the publisher's buffer (celery-live)",
        explain="Redis was unreachable: a process dropped events it could not keep, and says how many.",
    ),
}


class ProcessRole(StrEnum):
    """Which kind of process published an event (its data's "process"; log/events.py):
    explain mode says where in Celery's machinery each step happened."""

    WEB = "web"
    #: The worker's main process: it receives messages and hands them to its pool.
    WORKER = "worker"
    #: A prefork pool child: it runs the task (with the solo pool, the worker runs it).
    POOL = "pool"
    BEAT = "beat"
    RECORDER = "recorder"
    #: celery-live's bridge (`manage.py bridge_events`): the event retells what Celery's own
    #: event stream said of a process celery-live does not run in (`data["celery_event"]`
    #: names that Celery event); no signal of ours fired.
    BRIDGE = "bridge"


#: How explain mode names each kind of process.
PROCESS_LABELS: dict[ProcessRole, str] = {
    ProcessRole.WEB: "web process",
    ProcessRole.WORKER: "worker's main process",
    ProcessRole.POOL: "worker's pool child",
    ProcessRole.BEAT: "Beat process",
    ProcessRole.RECORDER: "recorder",
    ProcessRole.BRIDGE: "bridge, from Celery's own events",
}
#: What a bridged event's sentence calls the process that acted: the bridge only relays it.
_BRIDGED_ACTOR = "sending process"

#: The process that usually makes each event type: what explain mode says of events logged
#: before they carried `data["process"]` (a `task.sent` of a retry comes from a pool child,
#: but most are the web's).
_USUAL_PROCESS: dict[EventType, ProcessRole] = {
    EventType.TASK_RECEIVED: ProcessRole.WORKER,
    EventType.TASK_STARTED: ProcessRole.POOL,
    EventType.TASK_PROGRESS: ProcessRole.POOL,
    EventType.TASK_LOG: ProcessRole.POOL,
    EventType.TASK_RETRIED: ProcessRole.POOL,
    EventType.TASK_SUCCEEDED: ProcessRole.POOL,
    EventType.TASK_FAILED: ProcessRole.POOL,
    EventType.TASK_REVOKED: ProcessRole.WORKER,
    EventType.TASK_REJECTED: ProcessRole.WORKER,
    EventType.TASK_LOST: ProcessRole.RECORDER,
    EventType.WORKER_ONLINE: ProcessRole.WORKER,
    EventType.WORKER_HEARTBEAT: ProcessRole.WORKER,
    EventType.WORKER_OFFLINE: ProcessRole.WORKER,
    EventType.QUEUE_DEPTH: ProcessRole.RECORDER,
    EventType.BEAT_SENT: ProcessRole.BEAT,
}


def process_of(event: Event) -> ProcessRole:
    """The kind of process that made `event`: its `data["process"]`, else the usual one for
    its type (a gap marker's "process" names a host and pid, not a role)."""
    said = (event.get("data") or {}).get("process")
    if said in ProcessRole.__members__.values():
        return ProcessRole(said)
    return _USUAL_PROCESS.get(event.get("type"), ProcessRole.WEB)


class _Unknown(dict):
    """Format fields an event's data lacks read as "?"."""

    def __missing__(self, key: str) -> str:
        return "?"


def explain_sentence(event: Event) -> str:
    """Explain mode's sentence on `event` (`EventKind.explain` filled in from its data)."""
    kind = EVENT_KINDS.get(event.get("type"))
    if kind is None or not kind.explain:
        return ""
    data = event.get("data") or {}
    fields = _Unknown({key: value for key, value in data.items() if value is not None})
    role = process_of(event)
    process = _BRIDGED_ACTOR if role == ProcessRole.BRIDGE else PROCESS_LABELS[role]
    fields.update(worker=event.get("worker") or "?", process=process)
    return kind.explain.format_map(fields)


def signal_of(event: Event) -> str:
    """Explain mode's source of `event`: the Celery signal (or celery-live's hook) that makes
    it, or for a bridged event the Celery event it retells."""
    data = event.get("data") or {}
    if process_of(event) == ProcessRole.BRIDGE:
        return f"Celery's {data.get('celery_event') or 'own'} event (bridged)"
    kind = EVENT_KINDS.get(event.get("type"))
    return kind.signal if kind is not None else ""
