"""The relay: one reader of the event log per Daphne process, fanning out in memory.

A Redis round trip per viewer per event does not scale; one blocking XREAD per process and
an in-memory hand-off to each connected consumer does. Measured before this design with a
probe (events XADDed to a stream, read by a relay in one Daphne, N WebSocket viewers on the
same 2-core machine; latency from XADD to the client's frame):

    viewers x events/s   channels-redis group_send per event   one read + in-memory fan-out
    1 x 50               p50 2.8 ms, p99 4.2 ms                p50 1.2 ms, p99 2.0 ms
    10 x 100             p50 5.7 ms, p99 8.1 ms                p50 1.9 ms, p99 2.7 ms
    100 x 50             p50 45 ms, p99 106 ms                 p50 5.4 ms, p99 8.4 ms
    100 x 200            p50 7.3 s (a backlog)                 p50 3.2 ms, p99 5.8 ms

A subscriber starts *queued*: while its consumer sends what the viewer missed, live events
wait in a bounded queue. Once caught up, the consumer goes *direct*: the relay awaits the
consumer's delivery coroutine itself, in log order, for every subscriber in turn. Sending a
frame never waits (Daphne buffers it), so this costs no more than the send, and it saves
a queue, a wake-up and a task switch per viewer per event: measured with 1000 viewers,
those were a third of Daphne's CPU. (A page's first fragment of a run it has not seen may
wait for Redis once, to load the run; the other viewers' frames wait with it.)

Nothing is dropped silently. The relay ends a subscription, awaiting its consumer's
`on_end(reason)`, when:

- `End.BEHIND`: its queue filled while its consumer was still catching up (the viewer is
  `CELERY_LIVE_VIEWER_QUEUE` events behind); the consumer closes the socket and the client
  reconnects with `since`, catching up from the log, which keeps everything.
- `End.RESYNC`: the log restarted below the relay's position (Redis lost its data and
  hands out ids at or before those already relayed, e.g. its clock went back): an XREAD
  from the old position would wait forever, and the viewers' ids mean nothing in the new
  log. The relay moves to the new log's end and every viewer is told to reload its state.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis

from celery_live.conf import conf
from celery_live.log.events import parse_id
from celery_live.runs.history import AsyncLog

logger = logging.getLogger(__name__)


class End(enum.Enum):
    """Why the relay stopped feeding a subscription."""

    BEHIND = "behind"
    RESYNC = "resync"


Deliver = Callable[[list[dict[str, Any]]], Awaitable[None]]
OnEnd = Callable[[End], Awaitable[None]]


class Subscription:
    """One consumer's view of the live stream: queued until it goes direct."""

    def __init__(self, relay: Relay, on_end: OnEnd) -> None:
        self.relay = relay
        self.on_end = on_end
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(conf.VIEWER_QUEUE)
        self.deliver: Deliver | None = None

    def put(self, events: list[dict[str, Any]]) -> bool:
        """Queue `events`; False if the queue is full (the viewer is too far behind)."""
        try:
            for event in events:
                self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def take(self, limit: int) -> list[dict[str, Any]]:
        """What is queued (up to limit), without waiting."""
        batch: list[dict[str, Any]] = []
        while len(batch) < limit and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch

    def go_direct(self, deliver: Deliver) -> None:
        """From now on the relay awaits `deliver(events)` itself; call with the queue empty
        and without awaiting in between, so no event can slip past in the queue."""
        assert self.queue.empty(), "drain the queue before going direct"
        self.deliver = deliver

    def close(self) -> None:
        self.relay.unsubscribe(self)


class Relay:
    """Reads the log from where it started and hands each event to every subscriber."""

    def __init__(self, batch: int = 500, block_ms: int = 5000) -> None:
        self.batch = batch
        self.block_ms = block_ms
        self.subscribers: set[Subscription] = set()
        self.last_id: str | None = None
        self.log: AsyncLog | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def subscribe(self, on_end: OnEnd) -> Subscription:
        """Subscribe to events after the relay's current position (started if needed).

        Everything the log holds after the returned subscription's start is delivered,
        so a consumer that reads the log up to "now" *after* subscribing has no gap.
        `on_end(reason)` is awaited if the relay ends the subscription (see `End`).
        """
        await self._ensure_running()
        sub = Subscription(self, on_end)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    async def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): start afresh on it
            self._loop, self._task, self._lock = loop, None, asyncio.Lock()
            self.log = AsyncLog()
            self.subscribers = set()
        async with self._lock:
            if self._task is None or self._task.done():
                self.last_id = await self.log.last_id()
                self._task = loop.create_task(self._run(), name="celery-live-relay")

    async def _run(self) -> None:
        delay = 0.1
        check_position = False
        while True:
            try:
                if check_position:
                    await self._follow_restarted_log()
                    check_position = False
                events = await self.log.read(self.last_id, self.batch, self.block_ms)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                logger.warning("celery-live relay: Redis read failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                check_position = True  # Redis may come back empty
                continue
            if not events:
                # Idle for block_ms, or the log restarted below our position and nothing
                # after it will ever come: one cheap look tells.
                check_position = True
                continue
            self.last_id = events[-1]["id"]
            await self._fan_out(events)

    async def _fan_out(self, events: list[dict[str, Any]]) -> None:
        for sub in tuple(self.subscribers):
            try:
                if sub.deliver is not None:
                    await sub.deliver(events)
                elif not sub.put(events):
                    await self._end(sub, End.BEHIND)
            except asyncio.CancelledError:
                raise
            except Exception:  # a consumer's failure must not stop the others' events
                logger.exception("celery-live relay: delivering to a viewer failed; dropping it")
                self.unsubscribe(sub)

    async def _follow_restarted_log(self) -> None:
        """If the next event's id cannot come after our position, move to the log's end and
        tell every subscriber to resync."""
        head = await self.log.head()
        if not head.is_ahead(self.last_id):
            return
        logger.warning(
            "celery-live relay: the event log restarted below our position (at %s, next id %s);"
            " following it from %s and telling %d viewers to resync",
            self.last_id,
            head.next_id,
            head.last_id,
            len(self.subscribers),
        )
        self.last_id = head.last_id
        for sub in tuple(self.subscribers):
            await self._end(sub, End.RESYNC)

    async def _end(self, sub: Subscription, reason: End) -> None:
        self.unsubscribe(sub)
        try:
            await sub.on_end(reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("celery-live relay: ending a viewer's subscription failed")


relay = Relay()


def is_after(event_id: str, since: str | None) -> bool:
    """Whether `event_id` comes after `since` in the log (`since` None: everything does)."""
    return since is None or parse_id(event_id) > parse_id(since)
