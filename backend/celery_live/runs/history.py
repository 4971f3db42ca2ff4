"""Reading the event log: a run's events, recent runs, and the stream after an id.

Sync functions serve views and the CLI; `AsyncLog` serves consumers and the relay in
Daphne's event loop. Both read what `publishing.Publisher` writes.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async

from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.events import decode_entry, parse_id
from celery_live.log.store import runs_key, stream_key, task_key
from celery_live.log.vocabulary import EventType
from celery_live.runs.state import RunState, fold, log_order

ZERO_ID = "0-0"
#: The events a run's log begins with.
FIRST_EVENT_TYPES = frozenset({EventType.TASK_SENT, EventType.TASK_WAITING})


def task_events(task_id: str) -> list[dict[str, Any]]:
    """Every event of run `task_id`, in log order (from Redis, else from the database: also
    while Redis is unreachable)."""
    try:
        raws = store.client().lrange(task_key(task_id), 0, -1)
    except redis.RedisError:
        return recorded_task_events(task_id)
    return with_recorded(task_id, [json.loads(raw) for raw in raws])


def is_partial(events: list[dict[str, Any]]) -> bool:
    """Whether Redis' copy of a run lacks its beginning: empty, or not starting with its
    `task.sent` (or, for a chord callback, `task.waiting`): Redis lost its data, and the
    run's later events started a new list."""
    return not events or events[0].get("type") not in FIRST_EVENT_TYPES


def with_recorded(task_id: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`events` (Redis' copy) after the recorded ones they lack, when they are partial."""
    if not is_partial(events):
        return events
    return merge_recorded(recorded_task_events(task_id), events)


def merge_recorded(recorded: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded events older than Redis' first one, then Redis' events."""
    if not events:
        return recorded
    first = log_order(events[0])
    return [e for e in recorded if log_order(e) < first] + events


def recorded_task_events(task_id: str) -> list[dict[str, Any]]:
    """Every event of run `task_id` from the database (after Redis' copy expired or was lost)."""
    from celery_live.runs.models import Event

    return [row.body for row in Event.objects.filter(task_id=task_id).order_by("stream_ms", "stream_seq")]


def get_run(task_id: str, until_id: str | None = None) -> RunState | None:
    """The run's state, or None if the log never saw it. `until_id` folds only up to it."""
    events = task_events(task_id)
    if until_id is not None:
        limit = parse_id(until_id)
        events = [e for e in events if parse_id(e["id"]) <= limit]
    if not events:
        return None
    return fold(task_id, events)


def recent_task_ids(limit: int = 50, before: float | None = None) -> list[str]:
    """Ids of the newest runs (by first event time), newest first."""
    top = f"({before}" if before is not None else "+inf"
    return store.client().zrevrangebyscore(runs_key(), top, "-inf", start=0, num=limit)


def recent_runs(limit: int = 50, before: float | None = None, until_id: str | None = None) -> list[RunState]:
    """The newest runs' states, newest first (one round trip for all their events); none
    while Redis is unreachable (the pages then show the database's)."""
    try:
        ids = recent_task_ids(limit, before)
        if not ids:
            return []
        pipe = store.client().pipeline(transaction=False)
        for task_id in ids:
            pipe.lrange(task_key(task_id), 0, -1)
        replies = pipe.execute()
    except redis.RedisError:
        return []
    runs = []
    limit_id = parse_id(until_id) if until_id else None
    for task_id, raws in zip(ids, replies, strict=False):
        events = with_recorded(task_id, [json.loads(raw) for raw in raws])
        if limit_id is not None:
            events = [e for e in events if parse_id(e["id"]) <= limit_id]
        if events:
            runs.append(fold(task_id, events))
    return runs


def page_runs(limit: int, until_id: str) -> list[RunState]:
    """A page's snapshot: the newest runs in Redis, filled up with recorded ones, newest first.

    Redis' log is trimmed and can be lost while the database keeps every run: after a loss
    Redis may hold only the runs started since, and the snapshot must not shrink to them.
    """
    from celery_live.runs.models import Run

    runs = recent_runs(limit, until_id=until_id)
    if len(runs) < limit:
        held = [run.task_id for run in runs]
        runs += [row.to_state() for row in Run.objects.exclude(task_id__in=held)[:limit]]
        runs.sort(key=lambda run: run.first_seen or 0.0, reverse=True)
    return runs[:limit]


def last_event_id() -> str:
    """Id of the newest event in the stream ("0-0" when empty, or Redis unreachable)."""
    try:
        newest = store.client().xrevrange(stream_key(), count=1)
    except redis.RedisError:
        return ZERO_ID
    return newest[0][0] if newest else ZERO_ID


def snapshot_cursor() -> str:
    """Where a page's snapshot stands, and so where its socket starts.

    The stream's newest event; when Redis holds none (restarted empty, or its log was
    lost) the database's newest, whose runs the snapshot then shows: starting from "0-0"
    would make the viewer replay the whole recorded history as soon as any new event is
    logged. "0-0" when neither has any.
    """
    cursor = last_event_id()
    if cursor == ZERO_ID:
        cursor = newest_recorded_id() or ZERO_ID
    return cursor


def newest_recorded_id() -> str | None:
    """Id of the newest event in the database, or None."""
    from celery_live.runs.models import Event

    return Event.objects.order_by("-stream_ms", "-stream_seq").values_list("event_id", flat=True).first()


def read_after(since: str, count: int = 1000, block_ms: int | None = None) -> list[dict[str, Any]]:
    """Events after `since` (exclusive), oldest first; waits up to `block_ms` for new ones."""
    reply = store.client().xread({stream_key(): since}, count=count, block=block_ms)
    if not reply:
        return []
    return [decode_entry(entry_id, fields) for entry_id, fields in reply[0][1]]


def _database_events_after(since: str, before: str, limit: int) -> list[dict[str, Any]]:
    from django.db.models import Q

    from celery_live.runs.models import Event

    ms, seq = parse_id(since)
    end_ms, end_seq = parse_id(before)
    after = Q(stream_ms__gt=ms) | Q(stream_ms=ms, stream_seq__gt=seq)
    until = Q(stream_ms__lt=end_ms) | Q(stream_ms=end_ms, stream_seq__lt=end_seq)
    rows = Event.objects.filter(after & until).order_by("stream_ms", "stream_seq")[:limit]
    return [row.body for row in rows]


#: Recorded events after `since` and before `before` (both exclusive), oldest first.
database_events_after = sync_to_async(_database_events_after)


class Head(NamedTuple):
    """Where the log stands: its last id and the id Redis would give the next event."""

    last_id: str
    next_id: str

    def is_ahead(self, event_id: str) -> bool:
        """Whether `event_id` is at or past the id the next event gets: the log will never
        hold it, and a reader positioned there would wait forever."""
        return parse_id(event_id) >= parse_id(self.next_id)


class AsyncLog:
    """The same reads for asyncio code; one connection pool per process and event loop."""

    def __init__(self, url: str | None = None) -> None:
        self.client = aioredis.Redis.from_url(
            url or conf.redis_url,
            decode_responses=True,
            socket_connect_timeout=2,
            health_check_interval=30,
        )

    async def last_id(self) -> str:
        newest = await self.client.xrevrange(stream_key(), count=1)
        return newest[0][0] if newest else ZERO_ID

    async def head(self) -> Head:
        """The stream's last generated id ("0-0" when Redis holds no stream) and the id
        the next event would get: XADD gives max(Redis' clock in ms, last id + 1), so an
        id at or past `next_id` is ahead of the log, and a reader positioned there would
        wait forever (e.g. after Redis lost its data and its clock went back)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.xinfo_stream(stream_key())
            (seconds, micros), info = await pipe.execute(raise_on_error=False)
        if isinstance(info, redis.ResponseError):
            if "no such key" not in str(info).lower():
                raise info
            last_id = ZERO_ID  # Redis holds no log
        else:
            last_id = info["last-generated-id"]  # kept even when trimming emptied the stream
        ms, seq = parse_id(last_id)
        now_ms = seconds * 1000 + micros // 1000
        next_id = f"{now_ms}-0" if now_ms > ms else f"{ms}-{seq + 1}"
        return Head(last_id, next_id)

    async def first_id(self) -> str | None:
        oldest = await self.client.xrange(stream_key(), count=1)
        return oldest[0][0] if oldest else None

    async def range_after(self, since: str, count: int = 1000) -> list[dict[str, Any]]:
        """Up to `count` events after `since` (exclusive), oldest first."""
        entries = await self.client.xrange(stream_key(), min=f"({since}", count=count)
        return [decode_entry(entry_id, fields) for entry_id, fields in entries]

    async def read(self, since: str, count: int, block_ms: int) -> list[dict[str, Any]]:
        reply = await self.client.xread({stream_key(): since}, count=count, block=block_ms)
        if not reply:
            return []
        return [decode_entry(entry_id, fields) for entry_id, fields in reply[0][1]]

    async def task_events(self, task_id: str) -> list[dict[str, Any]]:
        events = [json.loads(raw) for raw in await self.client.lrange(task_key(task_id), 0, -1)]
        if not is_partial(events):
            return events
        return merge_recorded(await sync_to_async(recorded_task_events)(task_id), events)
