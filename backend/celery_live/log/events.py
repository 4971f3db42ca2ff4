"""The event format: built, validated, encoded and decoded in one place.

One event format feeds every view (HTML fragments for the page, JSON for programs):

    {"v": 1, "id": "1764090000123-0", "seq": 3, "type": "task.progress",
     "task_id": "...", "name": "apps.assets.tasks.example_async_task",
     "state": "PROGRESS", "ts": 1764090000.123, "uid": "9f2c4e1a7b3d5c60",
     "worker": "celery@host", "data": {"current": 2, "total": 5, "result": "Bob - iteration 2"}}

`id` is the event's Redis stream id (ordered; what `?since=` takes) and `seq` its place
among its task's events (1 for the first one the log saw). Both are assigned by Redis
when the event is published, in one round trip, by a Lua script that appends the event to
the stream (bounded by MAXLEN), to the task's own list (for `GET /api/tasks/<id>/`) and
indexes the task by time (for the list of runs); see publishing.py. `uid` is made by the
publishing process (random): an event sent twice is the same event, and counts once.
Its types and states, and what each means, are in vocabulary.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from celery_live.log.vocabulary import EVENT_KINDS, TASK_EVENT_TYPES, Event, EventType, ProcessRole

VERSION = 1

#: Message header a re-run carries: the id of the run it repeats.
RERUN_HEADER = "celery_live_rerun_of"


class InvalidEvent(ValueError):
    """An event that does not follow the format."""


#: What this process is (`set_process_role`): every process that loads Django starts as web.
_role = ProcessRole.WEB
#: A role for one thread only: a worker embedded in another process (tests' in-thread
#: worker) is a worker in its own thread and leaves the rest of the process as it was.
_thread_role = threading.local()


def set_process_role(role: ProcessRole, *, thread_only: bool = False) -> None:
    """Say what this process (or only the calling thread) is, for its events' "process"."""
    global _role
    if thread_only:
        _thread_role.role = role
    else:
        _role = role


def process_role() -> ProcessRole:
    """The role the calling thread's events carry (`set_process_role`)."""
    return getattr(_thread_role, "role", _role)


def make_event(
    type: EventType | str,
    *,
    task_id: str | None = None,
    name: str | None = None,
    worker: str | None = None,
    data: dict[str, Any] | None = None,
    ts: float | None = None,
    state: str | None = None,
) -> Event:
    """Build and validate an event (without `id`/`seq`, which publishing assigns).

    The state is the one its type implies (vocabulary.EVENT_KINDS) unless `state` is given;
    `data["process"]` is this process's role (`process_role`) unless `data` says it.
    """
    kind = EVENT_KINDS.get(type)
    if kind is None:
        raise InvalidEvent(f"unknown event type {type!r}")
    if type in TASK_EVENT_TYPES and not task_id:
        raise InvalidEvent(f"{type} needs a task_id")
    if state is None:
        state = kind.state
    event: Event = {
        "v": VERSION,
        # Plain strings, not enum members: an event is JSON data, in memory as on the wire.
        "type": str(type),
        "task_id": task_id,
        "name": name,
        "state": None if state is None else str(state),
        "ts": time.time() if ts is None else ts,
        "uid": os.urandom(8).hex(),
        "worker": worker,
        "data": jsonable({"process": str(process_role()), **(data or {})}),
    }
    return event


def epoch(value: str | datetime | None) -> float | None:
    """Epoch seconds of an ISO 8601 time (a message's `eta`) or a datetime; None if it is
    neither. A time without a zone is UTC (Celery's default)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def jsonable(value: Any) -> Any:
    """Return `value` if JSON can carry it, else a JSON-safe copy (repr for the rest)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        pass
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return repr(value)


def encode(event: dict[str, Any]) -> str:
    """Serialise an event for the log (compact JSON, always an object)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


class LoggedEvent(dict):
    """An event read from the log, carrying its JSON text (`text`) ready to send, and
    the consumers' `websocket.send` message once one has built it."""

    __slots__ = ("message", "text")


def decode_entry(entry_id: str | bytes, fields: dict) -> LoggedEvent:
    """Turn a stream entry (id, {"e": json, "seq": n}) into an event with `id` and `seq`."""
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    raw = fields.get("e", fields.get(b"e"))
    if isinstance(raw, bytes):
        raw = raw.decode()
    seq = int(fields.get("seq", fields.get(b"seq", 0)))
    # Same composition as the publish script's per-task copy: no re-encoding needed.
    text = f'{{"id":"{entry_id}","seq":{seq},{raw[1:]}'
    event = LoggedEvent(json.loads(text))
    event.text = text
    return event


def parse_id(event_id: str) -> tuple[int, int]:
    """Parse a stream id ("<ms>-<n>" or "<ms>") into a comparable tuple.

    Raises ValueError on anything else, so callers can reject bad `since` values.
    """
    ms, _, n = str(event_id).partition("-")
    if not ms.isdigit() or (n and not n.isdigit()):
        raise ValueError(f"not an event id: {event_id!r}")
    return int(ms), int(n or 0)
