"""The state of a run as a pure function of its events.

Events may arrive out of order (a worker's `task.received` can reach the log before the
web process's `task.sent`), so each state has a rank within its attempt and a run only
moves forward: `(attempt, rank)` must grow. Final states (SUCCESS, FAILURE, REVOKED,
REJECTED, LOST) are terminal: no later event brings a run back to running (ranks and
final states: log/vocabulary.py). A retry is a new attempt of the same run, so the next
attempt's `received`/`started` move it on.

One exception to "final stays final": a run marked LOST (its worker died) that a worker
receives again is a redelivery (acks_late; a Redis broker redelivers unacked tasks), so
it becomes a new attempt of the same run instead of staying lost.

Each attempt also keeps its own record (`RunState.attempts`): its state, the worker that
took it, when it started and ended, its error and, when it ended in a retry, when the
next one is due. A retry's next message (`task.sent` of attempt n + 1, which Celery sends
before `task.retried` of attempt n) opens the next attempt's record without moving the
run: the run stays RETRY until a worker receives the next attempt.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any, Literal

from celery_live.log.events import epoch, parse_id
from celery_live.log.vocabulary import FINAL_STATES, RUNNING_STATES, Event, EventType, State, state_rank


def _as_is(value: Any) -> Any:
    return value


def _in_order(iteration_results: dict[int, Any]) -> list:
    """Each iteration's result, in iteration order."""
    return [iteration_results[i] for i in sorted(iteration_results)]


def _numbered(results: list | None) -> dict[int, Any]:
    """The results in iteration order, by iteration number (from 1)."""
    return {i + 1: result for i, result in enumerate(results or [])}


@dataclass(frozen=True)
class Kept:
    """How the database row (runs/models.Run) and the JSON API keep a `RunState` field."""

    #: The name they give it ("": the field's own).
    name: str = ""
    #: Whether the row stores it, and whether the API shows it.
    row: bool = True
    api: bool = True
    #: The field's value as they keep it, and back.
    out: Callable[[Any], Any] = _as_is
    back: Callable[[Any], Any] = _as_is


def kept(**how: Any) -> dict[str, Kept]:
    """Field metadata for a field the row or the API keeps otherwise than as it is (`Kept`)."""
    return {"kept": Kept(**how)}


#: The canvas relations a run's events carry (`RunState.parent_id`, …), in their data.
RELATIONS = ("parent_id", "root_id", "group_id")
#: The relations a run never has to itself, whatever its events say: a retry's message names
#: the run as its own parent (Celery sends it from within the run). A run sent by no task is
#: its own root, though, and keeps that.
NOT_ITSELF = frozenset({"parent_id"})

#: Field metadata for the fold's own bookkeeping, which neither the row nor the API keeps.
IN_MEMORY = kept(row=False, api=False)

#: The states that end one attempt (a retry ends it; the run goes on with the next).
_ATTEMPT_ENDS = FINAL_STATES | {State.RETRY}
#: What an attempt's error is, by the event type that says it (`RunState.attempts`).
_ATTEMPT_ERROR = {
    EventType.TASK_FAILED: "exception",
    EventType.TASK_RETRIED: "exception",
    EventType.TASK_REVOKED: "reason",
    EventType.TASK_REJECTED: "reason",
    EventType.TASK_LOST: "reason",
}


def new_attempt(number: int) -> dict[str, Any]:
    """The record of attempt `number` (Celery's `retries`: 0 is the first) before any event."""
    return {
        "attempt": number,
        "state": str(State.PENDING),
        "worker": None,
        "started": None,
        "ended": None,
        "error": None,
        "retry_at": None,
    }


@dataclass
class RunState:
    """Everything the views show about one run, folded from its events.

    Its fields are the run's one declaration: the database row (`from_row`, `kept_as`),
    the JSON API (`as_dict`) and the list views' snapshots (`snapshot`) are made from
    them; a field's `Kept` metadata says where it differs (`KEPT`).
    """

    task_id: str
    name: str | None = None
    state: str = State.PENDING
    attempt: int = 0
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    queue: str | None = None
    worker: str | None = None
    #: The worker process (workers.py instance id) that received the run last.
    worker_instance: str | None = None
    #: Steps done of `total`; the API shows both as "progress" (`as_dict`).
    current: int = field(default=0, metadata=kept(api=False))
    total: int | None = field(default=None, metadata=kept(api=False))
    #: Each iteration's result by its number; kept as the list of results in order.
    iteration_results: dict[int, Any] = field(
        default_factory=dict, metadata=kept(name="results", out=_in_order, back=_numbered)
    )
    result: Any = None
    exception: str | None = None
    traceback: str | None = None
    sent_at: float | None = None
    received_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    rerun_of: str | None = None
    #: Canvas relations, as Celery's message says them (written once): the task that sent
    #: this one, the workflow's first task (Celery makes a run sent by no task its own
    #: root), and the group (a chord's header and its callback share one).
    parent_id: str | None = None
    root_id: str | None = None
    group_id: str | None = None
    #: Runs this one sent (their `parent_id`): the database knows them, not this run's
    #: events, so only the views that ask (`runs/relations.py`) fill it in.
    children: list[str] = field(default_factory=list, metadata=kept(row=False))
    #: What a run that is not sent yet waits for (a chord callback: its header).
    waiting_for: str | None = None
    #: One record per attempt, oldest first (`new_attempt`; written once per change, never
    #: in place, so a snapshot keeps the list it had).
    attempts: list[dict[str, Any]] = field(default_factory=list)
    #: When the current attempt's message may run (epoch; a countdown, an ETA, a retry's delay).
    eta: float | None = None
    #: How many retries its task allows, if the worker said (None: no limit, or not known).
    max_retries: int | None = None
    first_seen: float | None = field(default=None, metadata=kept(api=False))
    last_event_at: float | None = field(default=None, metadata=kept(api=False))
    #: The run's events (the database keeps them as its own rows; `as_dict` adds them).
    events: list[dict] = field(default_factory=list, metadata=IN_MEMORY)
    last_id: str | None = field(default=None, metadata=kept(name="last_event_id"))
    last_seq: int = field(default=0, metadata=kept(api=False))
    #: Whether the last event applied changed `state` (views redraw less when it did not).
    state_changed: bool = field(default=False, metadata=IN_MEMORY)
    _seen: set = field(default_factory=set, repr=False, metadata=IN_MEMORY)

    @property
    def position(self) -> tuple[int, int]:
        """How far in the log this state goes: `log_order` of its newest event."""
        return log_order({"id": self.last_id, "seq": self.last_seq})

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def is_running(self) -> bool:
        """Whether a worker process is on it (Terminate, not Revoke, stops it)."""
        return self.state in RUNNING_STATES

    @property
    def results(self) -> list:
        """Each iteration's result, in iteration order."""
        return _in_order(self.iteration_results)

    @property
    def search_text(self) -> str:
        """Lower-cased JSON of args, kwargs and result: what free-text search looks in."""
        return json.dumps([self.args, self.kwargs, self.result], ensure_ascii=False, default=str).lower()

    @property
    def queue_wait(self) -> float | None:
        """Seconds from sent to started (the first attempt's wait)."""
        if self.sent_at is None or self.started_at is None:
            return None
        return max(0.0, self.started_at - self.sent_at)

    @property
    def run_time(self) -> float | None:
        """Seconds from started to the final state."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    @property
    def fraction(self) -> str:
        """Share of the work done, 0 to 1, as CSS wants it."""
        return f"{self.percent / 100:.3f}"

    @property
    def percent(self) -> int:
        if self.state == State.SUCCESS:
            return 100
        if not self.total:
            return 0
        return min(100, int(100 * self.current / self.total))

    def apply(self, event: Event) -> RunState:
        """Fold one event into this run (idempotent: an event seen twice counts once)."""
        # A process re-sends what Redis may not have written before a connection broke;
        # the copy has a new id but the same `uid`, and counts once.
        key = event.get("uid") or event.get("id") or (event.get("type"), event.get("ts"))
        if key in self._seen:
            self.state_changed = False
            return self
        self._seen.add(key)
        self.events.append(event)
        if event.get("ts") and (self.first_seen is None or event["ts"] < self.first_seen):
            self.first_seen = event["ts"]
        if event.get("ts") and (self.last_event_at is None or event["ts"] > self.last_event_at):
            self.last_event_at = event["ts"]
        if self.last_id is None or log_order(event) > self.position:
            # The newest event: its id says how far this state goes; its seq is where the
            # run's list in Redis stands (it starts again at 1 if Redis lost its data).
            self.last_seq, self.last_id = event.get("seq", 0), event.get("id")
        data = event.get("data") or {}
        etype = event.get("type")
        ts = event.get("ts")
        self.name = self.name or event.get("name")
        # The worker that received the run (the name its heartbeats carry); later events
        # from a pool child don't override it, a redelivery to another worker does.
        if event.get("worker") and (etype == EventType.TASK_RECEIVED or self.worker is None):
            self.worker = event["worker"]
        if etype == EventType.TASK_RECEIVED and data.get("instance"):
            self.worker_instance = data["instance"]
        # The first message's arguments win over an announcement's (a chain step gets the
        # previous step's result first); a retry's message does not change them.
        first_sent = etype == EventType.TASK_SENT and self.sent_at is None
        if "args" in data and (not self.args or first_sent):
            self.args = list(data.get("args") or [])
        if "kwargs" in data and (not self.kwargs or first_sent):
            self.kwargs = dict(data.get("kwargs") or {})
        if data.get("max_retries") is not None:
            self.max_retries = int(data["max_retries"])
        if data.get("queue") and not self.queue:
            self.queue = data["queue"]
        if data.get("rerun_of") and not self.rerun_of:
            self.rerun_of = data["rerun_of"]
        for relation in RELATIONS:
            value = data.get(relation)
            itself = relation in NOT_ITSELF and value == self.task_id
            if value and not itself and not getattr(self, relation):
                setattr(self, relation, value)

        # Waiting lasts until the run is sent or ends (the announcement may come late).
        if etype == EventType.TASK_WAITING:
            if self.state == State.PENDING and self.sent_at is None:
                self.waiting_for = data.get("waiting_for")
        elif event.get("state") is not None:
            self.waiting_for = None
        if etype == EventType.TASK_SENT:
            self.sent_at = ts if self.sent_at is None else min(self.sent_at, ts)
            if int(data.get("attempt") or 0) >= self.attempt:  # not an older attempt's message
                self.eta = epoch(data.get("eta"))
        elif etype == EventType.TASK_RECEIVED:
            self.received_at = ts if self.received_at is None else min(self.received_at, ts)
        elif etype == EventType.TASK_STARTED:
            self.started_at = ts if self.started_at is None else min(self.started_at, ts)
        elif etype == EventType.TASK_PROGRESS:
            current = int(data.get("current") or 0)
            self.current = max(self.current, current)
            if data.get("total") is not None:
                self.total = int(data["total"])
            if "result" in data and current:
                self.iteration_results[current] = data["result"]
        elif etype == EventType.TASK_SUCCEEDED:
            self.result = data.get("result")
        elif etype == EventType.TASK_FAILED:
            self.exception = data.get("exception")
            self.traceback = data.get("traceback")
        elif etype in (
            EventType.TASK_REVOKED,
            EventType.TASK_REJECTED,
            EventType.TASK_LOST,
            EventType.TASK_RETRIED,
        ):
            self.exception = data.get("reason") or self.exception

        before = self.state
        if etype == EventType.TASK_RECEIVED and self.state == State.LOST:
            self.state, self.attempt, self.finished_at = State.PENDING, self.attempt + 1, None
            data = {**data, "attempt": self.attempt}
        self._fold_attempt(event, data)
        if not (etype == EventType.TASK_SENT and data.get("attempt")):  # a retry's message: see above
            self._move(event.get("state"), data.get("attempt"), ts)
        self.state_changed = self.state != before
        return self

    def _fold_attempt(self, event: Event, data: dict[str, Any]) -> None:
        """Update the record of the attempt `event` is about (`attempts`)."""
        etype, state, ts = event.get("type"), event.get("state"), event.get("ts")
        number = data.get("attempt")
        if number is None and etype in (EventType.TASK_RECEIVED, EventType.TASK_STARTED):
            number = self.attempt
        if number is None:
            # An event that does not say its attempt (the worker's main process failing a
            # task at its hard time limit; a loss) is about the newest one, if any ran.
            if not self.attempts or state is None or etype == EventType.TASK_SENT:
                return
            number = self.attempts[-1]["attempt"]
        elif etype == EventType.TASK_WAITING or state is None:
            return
        number = int(number)
        index = next((i for i, a in enumerate(self.attempts) if a["attempt"] == number), None)
        entry = dict(new_attempt(number) if index is None else self.attempts[index])
        if entry["state"] not in _ATTEMPT_ENDS and (
            state in _ATTEMPT_ENDS or state_rank(state) > state_rank(entry["state"])
        ):
            entry["state"] = str(state)
        if event.get("worker") and (etype == EventType.TASK_RECEIVED or entry["worker"] is None):
            entry["worker"] = event["worker"]
        if etype == EventType.TASK_STARTED and ts is not None:
            entry["started"] = ts if entry["started"] is None else min(entry["started"], ts)
        if state in _ATTEMPT_ENDS and entry["ended"] is None:
            entry["ended"] = ts
        if etype in _ATTEMPT_ERROR:
            entry["error"] = data.get(_ATTEMPT_ERROR[etype]) or data.get("reason") or entry["error"]
        if etype == EventType.TASK_RETRIED:
            entry["retry_at"] = data.get("retry_at")
        attempts = list(self.attempts)
        if index is None:
            attempts.append(entry)
            attempts.sort(key=lambda a: a["attempt"])
        else:
            attempts[index] = entry
        self.attempts = attempts

    def _move(self, new_state: str | None, attempt: int | None, ts: float | None) -> None:
        if new_state is None or self.is_final:
            return
        if new_state in FINAL_STATES:
            self.state = new_state
            self.finished_at = ts
            if attempt is not None:  # the attempt that ended it, even if its start comes late
                self.attempt = max(self.attempt, int(attempt))
            if new_state == State.SUCCESS and self.total:
                self.current = max(self.current, self.total)
            return
        attempt = self.attempt if attempt is None else int(attempt)
        if (attempt, state_rank(new_state)) > (self.attempt, state_rank(self.state)):
            self.state, self.attempt = new_state, attempt

    def kept_as(self, where: Literal["row", "api"]) -> dict[str, Any]:
        """The fields the database row (`"row"`) or the API (`"api"`) keeps, as it keeps them."""
        return {how.name: how.out(getattr(self, name)) for name, how in KEPT.items() if getattr(how, where)}

    @classmethod
    def from_row(cls, column: Callable[[str], Any]) -> RunState:
        """The run a database row holds, given the value of each of its columns by name."""
        return cls(**{name: how.back(column(how.name)) for name, how in KEPT.items() if how.row})

    def as_dict(self, with_events: bool = True) -> dict[str, Any]:
        """The run as the JSON API shows it (`GET /api/tasks/<id>/`)."""
        out = self.kept_as("api")
        out["progress"] = {"current": self.current, "total": self.total}
        out["queue_wait"] = self.queue_wait
        out["run_time"] = self.run_time
        if with_events:
            out["events"] = self.events
        return out

    def snapshot(self) -> RunState:
        """A copy of the run as it is now, to look at later while the run folds on (a list
        view's filters): all its fields but the history that only grows (its events and
        iteration results)."""
        return replace(self, events=[], iteration_results={}, _seen=set())


def _kept(run_field: Field[Any]) -> Kept:
    how = run_field.metadata.get("kept", Kept())
    return replace(how, name=how.name or run_field.name)


#: How the row and the API keep each field of `RunState`, by field name.
KEPT: Mapping[str, Kept] = {run_field.name: _kept(run_field) for run_field in fields(RunState)}


def log_order(event: dict) -> tuple[int, int]:
    """Where an event stands in the log: its stream id, which grows across Redis restarts
    (ids are times), unlike `seq`, which a run's list starts again if Redis lost its data."""
    event_id = event.get("id")
    return parse_id(event_id) if event_id else (0, event.get("seq") or 0)


def fold(task_id: str, events: Iterable[dict]) -> RunState:
    """The state of run `task_id` after `events` (in log order)."""
    run = RunState(task_id=task_id)
    for event in events:
        run.apply(event)
    return run


class RunCache:
    """Recent runs' states, advanced one event at a time in log order.

    `advance` applies an event when it is the next (`seq`) of a run already followed and
    returns None otherwise; the caller then `reload`s the run from its stored events.
    """

    def __init__(self, max_runs: int = 5000) -> None:
        self.runs: OrderedDict[str, RunState] = OrderedDict()
        self.max_runs = max_runs

    def advance(self, event: dict) -> RunState | None:
        run = self.runs.get(event.get("task_id"))
        seq = event.get("seq", 0)
        if run is None or run.last_seq not in (seq, seq - 1):
            return None
        if run.last_seq == seq - 1:
            run.apply(event)
        # else: this event is the last one applied (another view asked for it first)
        self.runs.move_to_end(run.task_id)
        return run

    def reload(self, event: dict, stored: Iterable[dict]) -> RunState:
        """The run right after `event`, folded from its stored events (up to that one)."""
        task_id, until = event["task_id"], log_order(event)
        events = [e for e in stored if log_order(e) <= until]
        if not any(e.get("id") == event.get("id") for e in events):
            events.append(event)
        events.sort(key=log_order)
        state = fold(task_id, events)
        known = self.runs.get(task_id)
        if known is None or until >= known.position:
            self.runs[task_id] = state
            self.runs.move_to_end(task_id)
            if len(self.runs) > self.max_runs:
                self.runs.popitem(last=False)
        return state
