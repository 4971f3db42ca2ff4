"""The event format and its publishing.

One event format feeds every view (HTML fragments for the page, JSON for programs):

    {"v": 1, "id": "1764090000123-0", "seq": 3, "type": "task.progress",
     "task_id": "...", "name": "apps.assets.tasks.example_async_task",
     "state": "PROGRESS", "ts": 1764090000.123, "worker": "celery@host",
     "data": {"current": 2, "total": 5, "result": "Bob - iteration 2"}}

`id` is the event's Redis stream id (ordered; what `?since=` takes) and `seq` its place
among its task's events (1 for the first one the log saw). Both are assigned by Redis
when the event is published, in one round trip, by a Lua script that appends the event to
the stream (bounded by MAXLEN), to the task's own list (for `GET /api/tasks/<id>/`) and
indexes the task by time (for the list of runs).

Each process keeps one Redis connection pool for publishing (redis-py re-creates it
after a fork, so prefork children get their own); no event loop, no thread, no new
connection per event.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

VERSION = 1

#: Event type -> the Celery state it puts a run in (None: not a task state change).
TASK_EVENT_STATES: dict[str, str | None] = {
    "task.sent": "PENDING",
    "task.received": "RECEIVED",
    "task.started": "STARTED",
    "task.progress": "PROGRESS",
    "task.log": None,
    "task.retried": "RETRY",
    "task.succeeded": "SUCCESS",
    "task.failed": "FAILURE",
    "task.revoked": "REVOKED",
    "task.rejected": "REJECTED",
    "task.lost": "LOST",
}
OTHER_EVENT_TYPES = frozenset(
    {"worker.online", "worker.heartbeat", "worker.offline", "queue.depth", "beat.sent"}
)
EVENT_TYPES = frozenset(TASK_EVENT_STATES) | OTHER_EVENT_TYPES


#: Message header a re-run carries: the id of the run it repeats.
RERUN_HEADER = "celery_live_rerun_of"


class InvalidEvent(ValueError):
    """An event that does not follow the format."""


def make_event(
    type: str,
    *,
    task_id: str | None = None,
    name: str | None = None,
    worker: str | None = None,
    data: dict[str, Any] | None = None,
    ts: float | None = None,
    state: str | None = None,
) -> dict[str, Any]:
    """Build and validate an event (without `id`/`seq`, which publishing assigns)."""
    if type not in EVENT_TYPES:
        raise InvalidEvent(f"unknown event type {type!r}")
    if type.startswith("task.") and not task_id:
        raise InvalidEvent(f"{type} needs a task_id")
    event = {
        "v": VERSION,
        "type": type,
        "task_id": task_id,
        "name": name,
        "state": state if state is not None else TASK_EVENT_STATES.get(type),
        "ts": time.time() if ts is None else ts,
        "worker": worker,
        "data": jsonable(data or {}),
    }
    return event


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


def stream_key() -> str:
    return settings.CELERY_LIVE_STREAM_KEY


def task_key(task_id: str) -> str:
    return f"{settings.CELERY_LIVE_STREAM_KEY}:task:{task_id}"


def runs_key() -> str:
    return f"{settings.CELERY_LIVE_STREAM_KEY}:runs"


# KEYS: stream, task list, runs index. ARGV: json, maxlen, ttl, task_id, ts.
_PUBLISH_LUA = """
local is_task = ARGV[4] ~= ''
local seq = 0
if is_task then seq = redis.call('LLEN', KEYS[2]) + 1 end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1], 'seq', seq)
if is_task then
  redis.call('RPUSH', KEYS[2], '{"id":"' .. id .. '","seq":' .. seq .. ',' .. string.sub(ARGV[1], 2))
  if seq == 1 then  -- a run's first event: index it, and let its list expire with the retention
    redis.call('EXPIRE', KEYS[2], ARGV[3])
    redis.call('ZADD', KEYS[3], 'NX', ARGV[5], ARGV[4])
  end
end
return {id, seq}
"""


class Publisher:
    """Publishes events to the log through one connection pool per process."""

    def __init__(self, url: str | None = None) -> None:
        self._url = url
        self._client: redis.Redis | None = None
        self._script = None
        self._lock = threading.Lock()
        self._quiet: tuple[int, redis.Connection] | None = None  # (pid, connection) for publish_nowait
        # A fork (prefork pool) while another thread holds the lock must not leave the child
        # with a lock nobody will release.
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def _ensure(self):
        if self._script is None:
            with self._lock:
                if self._script is None:
                    client = redis.Redis.from_url(
                        self._url or settings.REDIS_URL,
                        decode_responses=True,
                        socket_timeout=5,
                        socket_connect_timeout=2,
                        health_check_interval=30,
                    )
                    self._client = client
                    self._script = client.register_script(_PUBLISH_LUA)
        return self._script

    @staticmethod
    def _script_call(event: dict[str, Any]) -> tuple[list[str], list[Any]]:
        task_id = event.get("task_id") or ""
        ttl = max(1, settings.CELERY_LIVE_RETENTION_DAYS) * 86400
        keys = [stream_key(), task_key(task_id) if task_id else stream_key(), runs_key()]
        return keys, [encode(event), settings.CELERY_LIVE_STREAM_MAXLEN, ttl, task_id, event["ts"]]

    def publish(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append `event` to the log; return it with its `id` and `seq` filled in."""
        script = self._ensure()
        keys, args = self._script_call(event)
        event_id, seq = script(keys=keys, args=args)
        event["id"] = event_id
        event["seq"] = int(seq)
        return event

    def publish_nowait(self, event: dict[str, Any]) -> None:
        """Append `event` to the log without waiting for Redis' answer.

        On a connection of its own (one per process) that has told Redis `CLIENT REPLY OFF`:
        the call costs a socket write, not a round trip. Redis runs one connection's
        commands in order, so one process's events keep their order. The id and seq are
        not known to the caller. `EVAL` (not EVALSHA): a flushed script cache must not
        drop events silently. A broken connection raises (and is reopened next time).
        """
        keys, args = self._script_call(event)
        # One connection per process, shared by a threads pool's threads: one write at a time.
        with self._lock:
            connection = self._no_reply_connection()
            try:
                connection.send_command("EVAL", _PUBLISH_LUA, len(keys), *keys, *args)
            except (redis.ConnectionError, OSError):
                self._quiet = None
                raise

    def _no_reply_connection(self) -> redis.Connection:
        quiet = self._quiet
        if quiet is None or quiet[0] != os.getpid():  # new, or inherited across a fork
            pool = redis.ConnectionPool.from_url(
                self._url or settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2
            )
            connection = pool.make_connection()
            connection.connect()
            connection.send_command("CLIENT", "REPLY", "OFF")
            self._quiet = quiet = (os.getpid(), connection)
        return quiet[1]

    @property
    def client(self) -> redis.Redis:
        self._ensure()
        assert self._client is not None
        return self._client


_publisher = Publisher()


def get_publisher() -> Publisher:
    return _publisher


def publish(type: str, *, wait: bool = True, **fields: Any) -> dict[str, Any] | None:
    """Build an event and publish it. Never raises: a failure is logged loudly instead.

    Publishing happens inside Celery's signal handlers and tasks; an exception there
    must not fail the user's task, but a lost event must not go unnoticed either.
    `wait=False` does not wait for Redis (see `Publisher.publish_nowait`): for events a
    running task publishes, whose order only matters within its own process.
    """
    try:
        event = make_event(type, **fields)
    except InvalidEvent:
        logger.exception("celery-live: refusing to publish an invalid event")
        return None
    try:
        if not wait:
            _publisher.publish_nowait(event)
            return event
        return _publisher.publish(event)
    except redis.RedisError:
        logger.exception(
            "celery-live: could not publish %s for task %s; the run is reconciled later",
            type,
            fields.get("task_id"),
        )
        return None
