"""One Celery event -> one of celery-live's events. Pure: no I/O, never raises.

Celery's events (what `-E` workers and `task_send_sent_event` producers send) say less than
our signals: `args`, `kwargs` and a result come as `repr` strings (cut at 1,024 characters),
an exception as a `repr`, and only `task-sent` and `task-received` name the task and its
attempt (`retries`). `Translator` remembers those per task, a bounded number of tasks, and
carries them to the task's later events; it also remembers which tasks each worker holds,
for the heartbeats' `active` and `reserved`.

Each result carries a *dedupe key* (`store.dedupe_key`): two bridges receive every Celery
event, and the publish script logs the first copy only. `task-sent` uses the key of our
own `task.sent` (`store.sent_dedupe_key`): a producer that runs our signals too logs once.
Celery's receiver rewrites a `task-sent`'s `clock` with its own, so that key is the task's
id and attempt; the other events' is their sender's hostname, type, task, pid, clock and
timestamp (`timestamp` as the sender wrote it: the receiver is asked not to "localize" it).

What a worker-side event cannot say comes from the caller: the worker *instance* its pid
belongs to (receiver.py asks the registry), put on `task.received` and the worker events.
"""

from __future__ import annotations

import ast
import hashlib
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from celery_live.log.events import epoch
from celery_live.log.store import dedupe_key, sent_dedupe_key
from celery_live.log.vocabulary import EventType, ProcessRole
from celery_live.log.workers import SHUT_DOWN, WorkerRecord


class CeleryType(StrEnum):
    """Celery's event types the bridge retells (their `type`; `CELERY_TYPES` maps each to ours)."""

    TASK_SENT = "task-sent"
    TASK_RECEIVED = "task-received"
    TASK_STARTED = "task-started"
    TASK_SUCCEEDED = "task-succeeded"
    TASK_FAILED = "task-failed"
    TASK_RETRIED = "task-retried"
    TASK_REVOKED = "task-revoked"
    TASK_REJECTED = "task-rejected"
    WORKER_ONLINE = "worker-online"
    WORKER_HEARTBEAT = "worker-heartbeat"
    WORKER_OFFLINE = "worker-offline"


#: Ours for each of Celery's; any other Celery type (a task's custom `task-progress`,
#: `task-cancelled`) is ignored.
CELERY_TYPES: dict[CeleryType, EventType] = {
    celery: EventType(celery.replace("-", ".")) for celery in CeleryType
}
#: The ones a worker sends (every one but `task-sent`, which any producer sends): skipped
#: for a worker that runs our worker side.
WORKER_SIDE = frozenset(CeleryType) - {CeleryType.TASK_SENT}
#: The worker events (about no task).
WORKER_EVENTS = frozenset({CeleryType.WORKER_ONLINE, CeleryType.WORKER_HEARTBEAT, CeleryType.WORKER_OFFLINE})
#: The ones that need the worker's instance.
NEEDS_INSTANCE = WORKER_EVENTS | {CeleryType.TASK_RECEIVED}
#: Task events after which a task is no longer on its worker.
_ENDS = frozenset(
    {
        CeleryType.TASK_SUCCEEDED,
        CeleryType.TASK_FAILED,
        CeleryType.TASK_RETRIED,
        CeleryType.TASK_REVOKED,
        CeleryType.TASK_REJECTED,
    }
)

#: A Celery event as its receiver hands it over, and the `data` of ours being made.
CeleryEvent = dict[str, Any]
Data = dict[str, Any]

#: Tasks remembered at most (~200 bytes each): far more than a cluster has in flight.
MEMORY = 10_000
#: Longest `repr` parsed back into a value (Celery cuts its reprs at 1,024 characters).
_LITERAL_MAX = 10_000
#: A repr of an exception: `ValueError('message')`.
_EXCEPTION_REPR = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.DOTALL)
#: Timestamps beyond this are garbage, not seconds since the epoch (year 5138).
_TS_MAX = 1e11


@dataclass(frozen=True)
class Bridged:
    """Our event for one Celery event: `publish(type, dedupe=dedupe, **fields)`; for a
    worker event, the registry entry to write (`record`) or the instance gone (`offline`)."""

    type: EventType
    fields: dict[str, Any]
    dedupe: str
    record: WorkerRecord | None = None
    offline: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A Celery event the bridge cannot retell; `kind` groups alike ones (logged once)."""

    kind: str
    reason: str


@dataclass
class _Task:
    """What the bridge knows of one task from its earlier events."""

    name: str | None = None
    attempt: int | None = None
    queue: str | None = None
    worker: str | None = None
    running: bool = False
    #: The ETA of the next attempt's message (a retry's `task-sent`), for `retry_at`.
    next_eta: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    """A non-negative int, or None (bools and garbage are not counts)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(value: Any) -> float | None:
    """A finite number as a float, or None (bools and garbage are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _seconds(value: Any) -> float | None:
    """Epoch seconds, or None for anything else (NaN, negative, absurd, not a number)."""
    value = _number(value)
    return value if value is not None and 0 < value < _TS_MAX else None


def _literal(text: Any) -> tuple[bool, Any]:
    """`text` (a repr) read back as a Python literal: (True, value), or (False, None)."""
    if not isinstance(text, str) or len(text) > _LITERAL_MAX:
        return False, None
    try:
        return True, ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def arguments(args: Any, kwargs: Any) -> dict[str, Any]:
    """`args` (a list) and `kwargs` (a dict) from Celery's reprs, where they read back;
    the reprs as they came (`argsrepr`, `kwargsrepr`) where they do not (cut, or objects)."""
    data: dict[str, Any] = {}
    ok, value = (True, args) if isinstance(args, (list, tuple)) else _literal(args)
    if ok and isinstance(value, (list, tuple)):
        data["args"] = list(value)
    elif args is not None:
        data["argsrepr"] = str(args)
    ok, value = (True, kwargs) if isinstance(kwargs, dict) else _literal(kwargs)
    if ok and isinstance(value, dict):
        data["kwargs"] = value
    elif kwargs is not None:
        data["kwargsrepr"] = str(kwargs)
    return data


def exception_text(value: Any) -> str | None:
    """Celery's repr of an exception (`ValueError('boom')`) as our signals write it
    (`ValueError: boom`); other text as it is."""
    if not isinstance(value, str) or not value:
        return None
    match = _EXCEPTION_REPR.match(value)
    if match is None:
        return value
    name, inner = match.groups()
    ok, parts = _literal(f"({inner},)") if inner.strip() else (True, ())
    if not ok:
        return f"{name}: {inner}"
    message = str(parts[0]) if len(parts) == 1 else (str(parts) if parts else "")
    return f"{name}: {message}" if message else name


def _result(value: Any) -> Any:
    """A result's repr read back (`'3'` -> 3), else as it came."""
    ok, parsed = _literal(value)
    return parsed if ok else value


def identity(event: dict[str, Any]) -> str:
    """The dedupe identity of a worker-side Celery event (the same for every bridge)."""
    parts = (event.get(key) for key in ("hostname", "type", "uuid", "pid", "clock", "timestamp"))
    text = "\x1f".join(repr(part) for part in parts)
    return "bridge:" + hashlib.blake2b(text.encode(errors="replace"), digest_size=12).hexdigest()


@dataclass
class Translator:
    """Celery events -> our events, remembering up to `memory` tasks (oldest forgotten)."""

    memory: int = MEMORY
    tasks: OrderedDict[str, _Task] = field(default_factory=OrderedDict)
    #: Each worker's last record (its heartbeat's `changed` compares with it).
    last: dict[str, WorkerRecord] = field(default_factory=dict)
    #: Tasks each worker failed since this bridge saw it come online (or first saw it).
    failed: dict[str, int] = field(default_factory=dict)

    def translate(self, event: Any, instance: str | None = None) -> Bridged | Skipped | None:
        """Our event for Celery's `event` (None: a type the bridge ignores). `instance`: the
        worker instance its pid belongs to, for the types in `NEEDS_INSTANCE`."""
        if not isinstance(event, dict):
            return Skipped("not an event", f"a {type(event).__name__}, not a mapping")
        kind = event.get("type")
        etype = CELERY_TYPES.get(kind) if isinstance(kind, str) else None
        if etype is None:
            return None
        hostname = _text(event.get("hostname"))
        ts = _seconds(event.get("timestamp")) or _seconds(event.get("local_received"))
        data: dict[str, Any] = {"process": str(ProcessRole.BRIDGE), "celery_event": kind}
        if kind in WORKER_EVENTS:
            if hostname is None:
                return Skipped(f"{kind} without a hostname", "no hostname")
            return self._worker(etype, event, hostname, ts, instance, data)
        task_id = _text(event.get("uuid"))
        if task_id is None:
            return Skipped(f"{kind} without a uuid", "no task id")
        task = self._task(task_id)
        handler = getattr(self, "_" + kind.replace("-", "_"))
        handler(event, task, data, hostname)
        if kind == CeleryType.TASK_RECEIVED:  # which process of the worker holds it (log/workers.py)
            data["instance"] = instance
        if kind in _ENDS:
            task.running = False
            self.tasks.pop(task_id, None)
        if kind == CeleryType.TASK_SENT:
            dedupe = sent_dedupe_key(task_id, _count(event.get("retries")) or 0)
        else:
            dedupe = dedupe_key(identity(event))
        fields = {
            "task_id": task_id,
            "name": task.name,
            # A producer is no worker: a run's `worker` is who holds it (the reaper reads it).
            "worker": hostname if kind in WORKER_SIDE else None,
            "ts": ts,
            "data": data,
        }
        return Bridged(etype, fields, dedupe)

    def _task(self, task_id: str) -> _Task:
        task = self.tasks.get(task_id)
        if task is None:
            task = self.tasks[task_id] = _Task()
            while len(self.tasks) > self.memory:
                self.tasks.popitem(last=False)
        else:
            self.tasks.move_to_end(task_id)
        return task

    # --- task events: each fills `data` (and learns what later events lack) ---------------

    @staticmethod
    def _relations(event: dict[str, Any], data: dict[str, Any]) -> None:
        data.update(
            eta=_text(event.get("eta")),
            expires=_text(event.get("expires")),
            parent_id=_text(event.get("parent_id")),
            root_id=_text(event.get("root_id")),
        )

    def _task_sent(self, event: CeleryEvent, task: _Task, data: Data, hostname: str | None) -> None:
        attempt = _count(event.get("retries")) or 0
        task.name = _text(event.get("name")) or task.name
        task.queue = _text(event.get("queue")) or _text(event.get("routing_key")) or task.queue
        if task.attempt is None or attempt <= task.attempt:
            task.attempt = attempt
        else:  # the next attempt's message, sent before the retry is told (its retry_at)
            task.next_eta = _text(event.get("eta"))
        data.update(arguments(event.get("args"), event.get("kwargs")))
        data.update(queue=task.queue, attempt=attempt, sender=hostname)
        self._relations(event, data)

    def _task_received(self, event: CeleryEvent, task: _Task, data: Data, hostname: str | None) -> None:
        task.name = _text(event.get("name")) or task.name
        task.attempt = _count(event.get("retries")) or 0
        task.worker, task.running = hostname, False
        data.update(arguments(event.get("args"), event.get("kwargs")))
        data.update(queue=task.queue, attempt=task.attempt)
        self._relations(event, data)

    def _task_started(self, event: CeleryEvent, task: _Task, data: Data, hostname: str | None) -> None:
        task.worker, task.running = hostname or task.worker, True
        data["attempt"] = task.attempt

    def _task_succeeded(self, event: CeleryEvent, task: _Task, data: Data, hostname: str | None) -> None:
        data.update(result=_result(event.get("result")), runtime=_seconds(event.get("runtime")))
        data["attempt"] = task.attempt

    def _task_failed(self, event: CeleryEvent, task: _Task, data: Data, hostname: str | None) -> None:
        exception = exception_text(event.get("exception"))
        data.update(
            exception=exception,
            exc_type=exception.split(":", 1)[0] if exception else None,
            traceback=_text(event.get("traceback")),
            attempt=task.attempt,
        )
        if hostname is not None:
            self.failed[hostname] = self.failed.get(hostname, 0) + 1

    def _task_retried(self, event: CeleryEvent, task: _Task, data: Data, hostname: str | None) -> None:
        exception = exception_text(event.get("exception"))
        data.update(
            reason=f"Retry: {exception}" if exception else "Retry",
            exception=exception,
            traceback=_text(event.get("traceback")),
            retry_at=epoch(task.next_eta),
            attempt=task.attempt,
        )

    def _task_revoked(self, event: CeleryEvent, task: _Task, data: Data, hostname: str | None) -> None:
        signum = event.get("signum")
        data.update(
            terminated=bool(event.get("terminated")),
            signum=str(signum) if signum is not None else None,
            expired=bool(event.get("expired")),
        )

    def _task_rejected(self, event: CeleryEvent, task: _Task, data: Data, hostname: str | None) -> None:
        requeue = bool(event.get("requeue"))
        data.update(
            reason="rejected by the worker" + (" (requeued)" if requeue else ""),
            requeue=requeue,
        )

    # --- worker events ---------------------------------------------------------------------

    def _worker(
        self,
        etype: EventType,
        event: dict[str, Any],
        hostname: str,
        ts: float | None,
        instance: str | None,
        data: dict[str, Any],
    ) -> Bridged:
        instance = instance or hostname
        dedupe = dedupe_key(identity(event))
        fields = {"worker": hostname, "ts": ts, "data": data}
        if etype != EventType.WORKER_HEARTBEAT:  # a new process, or one gone
            self.failed.pop(hostname, None)
        if etype == EventType.WORKER_OFFLINE:
            self.last.pop(hostname, None)
            data.update(instance=instance, reason=SHUT_DOWN)
            return Bridged(etype, fields, dedupe, offline=instance)
        record = self.record(hostname, instance, time.time() if ts is None else ts, event)
        if etype == EventType.WORKER_ONLINE:
            data["instance"] = instance
        else:
            last = self.last.get(hostname)
            same = record.same_figures(last) and last is not None and last.instance == instance
            freq = _seconds(event.get("freq"))
            data.update(record.beat_data(), interval=freq, changed=not same)
        software = " ".join(str(event[key]) for key in ("sw_ident", "sw_ver") if _text(event.get(key)))
        if software:
            data["software"] = software
        self.last[hostname] = record
        return Bridged(etype, fields, dedupe, record=record)

    def record(self, hostname: str, instance: str, ts: float, event: dict[str, Any]) -> WorkerRecord:
        """A worker's registry entry from its Celery event, with the tasks it holds (those
        this bridge saw it receive, and start, and not end) and the failures it saw. Celery's
        events do not say its pool, size or queues."""
        held = [(task_id, task) for task_id, task in self.tasks.items() if task.worker == hostname]
        loads = event.get("loadavg")
        load = tuple(n for n in map(_number, loads) if n is not None) if isinstance(loads, list) else ()
        return WorkerRecord(
            hostname=hostname,
            instance=instance,
            ts=ts,
            active=tuple(sorted(task_id for task_id, task in held if task.running)),
            reserved=sum(1 for _, task in held if not task.running),
            processed=_count(event.get("processed")) or 0,
            failed=self.failed.get(hostname, 0),
            load=load,
            bridged=True,
        )
