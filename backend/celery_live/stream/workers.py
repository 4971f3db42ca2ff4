"""Workers, live: the workers page's fragments, and what this process knows of the workers.

The page (`/workers/`) shows one card per worker instance. Each event becomes its swaps,
from the event alone (so each is rendered once per process, whoever watches):

- a heartbeat: the instance's figures and badge (`_worker_stats.html`, ~0.7 kB), or only
  its time and load (~0.2 kB) when the worker says nothing else changed since its last
  beat (`changed: false`, an idle worker's usual beat); the heartbeats that carry its
  registered tasks (its first, and any after they change) bring its whole card instead,
  inserted if the page has none yet (live.js, `data-upsert`);
- `worker.offline`: the instance's state badge, with the reason;
- `worker.control`: the instance's last command and what the worker answered.

`board` is this process's picture of the worker instances, for the "no worker knows this
task" flag on run cards: loaded from the registry (log/workers.py) once, then kept by the
events themselves, which it follows through the relay like a viewer; no Redis read per
render. A sync view in a process where no socket made it follow reads the registry instead
(at most once a second).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import redis
from django.template.loader import render_to_string

from celery_live.log import store
from celery_live.log.store import worker_instances_key, worker_registered_key
from celery_live.log.vocabulary import EventType
from celery_live.log.workers import WorkerRecord, parse_registry, read_workers
from celery_live.stream.relay import End, Subscription, relay

logger = logging.getLogger(__name__)

#: The page socket's view of the workers page (`/ws/page/?view=workers`).
VIEW = "workers"
#: The element the cards are in (live.js inserts new ones there).
ROWS_ID = "workers-rows"


def dom_id(instance: str) -> str:
    """The instance's card id on the page (an instance id is `<pid>-<ms>`; anything else
    a foreign process sent is made safe for an id and a selector)."""
    return "worker-" + re.sub(r"[^A-Za-z0-9_-]", "_", instance)


def card_context(
    record: WorkerRecord, now: float | None = None, online: bool | None = None
) -> dict[str, Any]:
    """What the worker templates need for one instance (`online`: as the beat says, or
    judged at `now`)."""
    return {
        "worker": record,
        "key": dom_id(record.instance),
        "online": record.is_online(time.time() if now is None else now) if online is None else online,
        "active": len(record.active),
        "load": " ".join(f"{n:.2f}" for n in record.load),
    }


def render_card(record: WorkerRecord, now: float | None = None, oob: bool = False) -> str:
    context = card_context(record, now, online=True if oob else None)
    return render_to_string("celery_live/_worker_card.html", {**context, "oob": oob, "rows_id": ROWS_ID})


def render_stats(record: WorkerRecord) -> str:
    """The figures of a beat and its badge (online: it beats), as out-of-band swaps."""
    context = {**card_context(record, online=True), "oob": True}
    return "".join(
        render_to_string(f"celery_live/{name}.html", context) for name in ("_worker_stats", "_worker_state")
    )


def render_pulse(record: WorkerRecord) -> str:
    """A beat that shows nothing new (`changed: false`): only its time and the load move."""
    context = {**card_context(record, online=True), "oob": True}
    return "".join(
        render_to_string("celery_live/_worker_pulse.html", {**context, "part": part})
        for part in ("load", "beat")
    )


def render_offline(event: dict[str, Any], instance: str) -> str:
    """The instance's badge, now offline, and why, as out-of-band swaps."""
    context = {"key": dom_id(instance), "online": False, "reason": (event.get("data") or {}).get("reason")}
    return "".join(
        render_to_string(f"celery_live/{name}.html", {**context, "oob": True})
        for name in ("_worker_state", "_worker_reason")
    )


def render_ack(key: str, data: dict[str, Any], ts: float | None, oob: bool) -> str:
    """A worker's last command and its answer (`data`: a `worker.control` event's, or the
    page's own request's)."""
    return render_to_string("celery_live/_worker_ack.html", {"key": key, "ack": data, "ts": ts, "oob": oob})


def render_event(event: dict[str, Any]) -> str:
    """The workers page's swaps for one event ("" for events it does not show)."""
    etype, data = event.get("type"), event.get("data") or {}
    worker, instance = event.get("worker"), data.get("instance")
    if not worker or not isinstance(instance, str):
        return ""
    if etype == EventType.WORKER_HEARTBEAT:
        record = WorkerRecord.from_beat(worker, event.get("ts") or 0.0, data)
        if record.registered is not None:
            return render_card(record, oob=True)
        return render_pulse(record) if data.get("changed") is False else render_stats(record)
    if etype == EventType.WORKER_OFFLINE:
        return render_offline(event, instance)
    if etype == EventType.WORKER_CONTROL:
        return render_ack(dom_id(instance), data, event.get("ts"), oob=True)
    return ""


_rendered: OrderedDict[str, str] = OrderedDict()
_RENDERED_MAX = 5000


def fragment(event: dict[str, Any]) -> str:
    """`render_event`, once per event in this process (every viewer shares it)."""
    event_id = event.get("id")
    if event_id is None:
        return render_event(event)
    html = _rendered.get(event_id)
    if html is None:
        html = _rendered[event_id] = render_event(event)
        if len(_rendered) > _RENDERED_MAX:
            _rendered.popitem(last=False)
    return html


# --- what this process knows of the workers ------------------------------------------------


class WorkerBoard:
    """The worker instances as this process last heard of them, by instance id."""

    #: Seconds between two reads of the registry by a sync view while nothing follows.
    REFRESH_EVERY = 1.0

    def __init__(self) -> None:
        self.instances: dict[str, WorkerRecord] = {}
        self.loaded = False
        self._sub: Subscription | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._read_at = 0.0

    # -- kept by the events

    def observe(self, event: dict[str, Any]) -> None:
        """Take in one event (those of no worker instance change nothing)."""
        etype, data = event.get("type"), event.get("data") or {}
        worker, instance = event.get("worker"), data.get("instance")
        if not worker or not isinstance(instance, str):
            return
        if etype == EventType.WORKER_HEARTBEAT:
            record = WorkerRecord.from_beat(worker, event.get("ts") or 0.0, data)
            known = self.instances.get(instance)
            if known is None:  # a new instance: the time to forget those long gone
                self._forget(record.ts)
            elif record.registered is None:
                record = replace(record, registered=known.registered)
            self.instances[instance] = record
        elif etype == EventType.WORKER_OFFLINE and instance in self.instances:
            reason = data.get("reason") if isinstance(data.get("reason"), str) else "offline"
            self.instances[instance] = self.instances[instance].gone_offline(reason, event.get("ts") or 0.0)

    def load(self, records: list[WorkerRecord], now: float) -> None:
        """Take in the registry (read after subscribing: events may have come meanwhile;
        of the two, the newer word on an instance wins)."""
        for record in records:
            known = self.instances.get(record.instance)
            if known is None or record.said_at >= known.said_at:
                self.instances[record.instance] = record
        self._forget(now)
        self.loaded = True

    def _forget(self, now: float) -> None:
        for instance, record in list(self.instances.items()):
            if record.is_forgotten(now):
                del self.instances[instance]

    # -- following the relay

    async def follow(self) -> None:
        """Follow the log through this process's relay (once per event loop), then load
        the registry: subscribing first, no beat can fall between the two."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._sub, self._lock, self.loaded = loop, None, asyncio.Lock(), False
        async with self._lock:
            try:
                if not self.following:
                    self.loaded = False
                    self._sub = await relay.subscribe(self._ended)
                    self._sub.go_direct(self._deliver)  # nothing awaited since subscribing
                if not self.loaded:
                    async with relay.log.client.pipeline(transaction=False) as pipe:
                        pipe.hgetall(worker_instances_key())
                        pipe.hgetall(worker_registered_key())
                        records, registered = await pipe.execute()
                    now = time.time()
                    self.load(parse_registry(records, registered, now), now)
            except (redis.RedisError, OSError) as exc:
                logger.warning(
                    "celery-live: could not read the worker registry (%s); the next page retries", exc
                )

    @property
    def following(self) -> bool:
        return self._sub is not None and self._sub in relay.subscribers

    async def _deliver(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if str(event.get("type", "")).startswith("worker."):
                self.observe(event)

    async def _ended(self, reason: End) -> None:
        # The log restarted (Redis lost its data): start again from the registry.
        self._sub, self.loaded = None, False

    # -- what the run cards ask

    def unknown_task(self, name: str | None, now: float | None = None) -> bool:
        """Whether no online worker instance registers the task `name`, so that a run of it
        waits for nobody. False when nothing is known (no worker of ours ever seen)."""
        now = time.time() if now is None else now
        self._read_if_idle(now)
        return self.nobody_registers(name, now)

    def nobody_registers(self, name: str | None, now: float) -> bool:
        """`unknown_task` from what the board holds now."""
        if not name or not self.loaded or not self.instances:
            return False
        # A copy first: a sync view reads the board while the event loop's thread updates it.
        return not any(
            record.is_online(now) and (record.registered is None or name in record.registered)
            for record in tuple(self.instances.values())
        )

    def _read_if_idle(self, now: float) -> None:
        """In a sync view of a process whose board does not follow: read the registry (at
        most every `REFRESH_EVERY` s). Never in the event loop, which must not block."""
        if (self.following and self.loaded) or now - self._read_at < self.REFRESH_EVERY:
            return
        try:
            asyncio.get_running_loop()
            return
        except RuntimeError:
            pass
        self._read_at = now
        try:
            records = read_workers(store.client(), now)
        except (redis.RedisError, OSError):
            return
        self.instances = {record.instance: record for record in records}
        self.loaded = True


board = WorkerBoard()
