"""WebSocket consumers: the page's HTML fragments and the JSON event stream.

Both are thin: on connect they send what the viewer missed since its `since` id (from
the database for what the stream no longer holds, then from the stream), then forward
live events from this process's relay, skipping ids already sent, so a reconnecting
viewer gets no gap and no duplicate.

A viewer is never left silent: whenever a socket cannot go on it is closed with one of
the `Close` codes, after a JSON frame saying why where the client has something to do.
In login mode a viewer who may not view (stream/auth.py) is closed so before it is sent
anything.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from celery_live.conf import conf
from celery_live.log.events import LoggedEvent, parse_id
from celery_live.runs.filters import RunFilter
from celery_live.runs.history import database_events_after
from celery_live.stream.auth import may_view, refusal_frame
from celery_live.stream.backpressure import reclaimer, unsent_bytes_probe
from celery_live.stream.failures import FAILURES
from celery_live.stream.fragments import PageView, renderer
from celery_live.stream.queues import QUEUES_VIEW
from celery_live.stream.relay import End, is_after, relay
from celery_live.stream.tour import VIEW as TOUR_VIEW
from celery_live.stream.workers import VIEW as WORKERS_VIEW
from celery_live.stream.workers import board
from celery_live.stream.workflow import watch_workflow

logger = logging.getLogger(__name__)


class Close(enum.IntEnum):
    """The close codes of both sockets (README, "Live JSON").

    Autobahn, under Daphne, sends only 1000 and 3000-4999: `close(1011)` or `1013` raises
    inside Daphne and the socket stays open with nothing on it, hence 4xxx throughout.
    """

    #: The request is wrong (a bad `since` or filter): retrying it unchanged will not help.
    BAD_REQUEST = 4400
    #: Login mode, and no user (no session, or a bad token): log in, then reconnect.
    LOGIN_REQUIRED = 4401
    #: Login mode, and the user may not view: retrying as the same user will not help.
    FORBIDDEN = 4403
    #: The viewer fell too far behind: reconnect with `since` to catch up from the log.
    BEHIND = 4408
    #: `since` is ahead of the log (Redis lost its data): reload your state, then reconnect.
    RESYNC = 4409
    #: The server failed: reconnect with `since`.
    SERVER_ERROR = 4500


#: Redis stream ids are two unsigned 64-bit numbers.
MAX_ID_PART = 2**64 - 1
CATCH_UP_BATCH = 1000
#: Seconds a viewer that is catching up may take nothing before it is closed as behind:
#: the catch-up reads the log at the viewer's pace, but must not wait on a dead reader.
CATCH_UP_PATIENCE = 5.0
#: Tells the page it has everything it missed (live.js shows "catching up" until then).
CAUGHT_UP = '<span id="live-status" hx-swap-oob="true" data-state="live"></span>'


async def refusal_code(user: Any) -> Close | None:
    """The code a socket of `user` is closed with in login mode (None: it may watch)."""
    if await may_view(user):
        return None
    logged_in = user is not None and user.is_authenticated
    return Close.FORBIDDEN if logged_in else Close.LOGIN_REQUIRED


class Behind(Exception):
    """The viewer has not taken what was sent to it: close it with `Close.BEHIND`."""

    def __init__(self, unsent: int) -> None:
        super().__init__(f"{unsent} bytes unsent")


def since_error(since: str | None) -> dict[str, str] | None:
    """The error frame for a `since` that is not a Redis stream id, or None."""
    if since is None:
        return None
    try:
        ms, seq = parse_id(since)
    except ValueError:
        ms = seq = -1
    if not (0 <= ms <= MAX_ID_PART and 0 <= seq <= MAX_ID_PART):
        error = "since must be an event id like 1764090000123-0 (two numbers below 2**64)"
        return {"error": error, "since": since}
    return None


class LogConsumer(AsyncWebsocketConsumer):
    """Base: catch up from `?since=<event id>`, then follow live; `?task=<id>` filters."""

    batch_limit = 200
    #: No channel layer: events come from the relay. With the configured one, every viewer
    #: also waited on the layer's Redis, and when Redis restarted that wait raised, and
    #: Daphne closed the viewer with 1011 (seen in test_viewer_faults).
    channel_layer_alias = None

    async def connect(self) -> None:
        params = parse_qs(self.scope.get("query_string", b"").decode())
        since = (params.get("since") or [None])[0] or None
        self.task_filter = (params.get("task") or [None])[0] or None
        self.pump: asyncio.Task | None = None
        self.sub = None
        self.accepted = self.ended = False
        self.skip_through: str | None = None
        self.unsent_bytes = unsent_bytes_probe(self.base_send)
        self.max_unsent = conf.VIEWER_MAX_BUFFER
        refusal = await refusal_code(self.scope.get("user"))
        if refusal is not None:  # before subscribing: not one event reaches it
            await self._end(refusal, refusal_frame())
            return
        error = self.check_params(params) or since_error(since)
        head = None
        if error is None:
            try:
                # Subscribe before accepting: whatever is logged once the client is
                # connected comes after the relay's position, so it reaches this viewer.
                self.sub = await relay.subscribe(self._relay_ended)
                if since is not None:
                    head = await relay.log.head()
            except Exception:
                await self._fail()
                return
        await self._accept()
        if self.ended:  # the relay ended it meanwhile
            return
        if error is not None:
            await self._end(Close.BAD_REQUEST, error)
        elif head is not None and head.is_ahead(since):
            await self._end(Close.RESYNC, resync_frame("since is ahead of the event log", head.last_id))
        else:
            self.sent_id = since
            self.pump = asyncio.create_task(self._pump(since))

    async def _accept(self) -> None:
        """Accept once (the relay may end a viewer while `connect` still waits on Redis)."""
        if not self.accepted:
            self.accepted = True
            await self.accept()

    def check_params(self, params: dict[str, list[str]]) -> dict | None:
        """An error to send before closing, or None; subclasses check their own parameters."""
        return None

    async def disconnect(self, code: int) -> None:
        if self.unsent_bytes is not None and self.unsent_bytes() >= reclaimer.after_unsent:
            reclaimer.soon()
        if self.pump is not None:
            self.pump.cancel()
        if self.sub is not None:
            self.sub.close()

    async def _pump(self, since: str | None) -> None:
        """Send what the viewer missed, then what queued meanwhile, then go direct."""
        try:
            if since is not None:
                await self._catch_up()
                await self.caught_up()
            # The catch-up may have read the stream past the relay's position: skip those.
            self.skip_through = self.sent_id
            while True:
                await self._room()  # also before going direct, where the relay cannot wait
                if not (batch := self.sub.take(self.batch_limit)):
                    break
                if batch := self._unsent(batch):
                    await self._emit(batch)
            # No await since the queue was found empty: the relay's next events come here.
            self.sub.go_direct(self._deliver)
        except asyncio.CancelledError:
            raise
        except Behind as behind:
            await self._behind(str(behind))
        except Exception:
            await self._fail()

    def _unsent(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`events` without those already sent (up to `skip_through`)."""
        if self.skip_through is not None:
            events = [e for e in events if is_after(e["id"], self.skip_through)]
            if events:
                self.skip_through = None  # events come in order: everything after this is new
        return events

    async def _deliver(self, events: list[dict[str, Any]]) -> None:
        """Called by the relay with each batch of live events, in log order."""
        try:
            events = self._unsent(events)
            for start in range(0, len(events), self.batch_limit):
                # The relay cannot wait for one viewer: one that has not taken what it
                # was sent is closed, and catches up from the log when it reconnects.
                if self.unsent_bytes is not None and (unsent := self.unsent_bytes()) > self.max_unsent:
                    raise Behind(unsent)
                await self._emit(events[start : start + self.batch_limit])
        except Behind as behind:
            await self._behind(str(behind))
        except Exception:
            await self._fail()

    async def _room(self) -> None:
        """Wait until the viewer has taken what was sent down to the bound; the catch-up
        goes at the viewer's pace. Raises Behind if it takes nothing for a while."""
        if self.unsent_bytes is None:
            return
        stalled = 0.0  # seconds without the viewer taking anything
        while (unsent := self.unsent_bytes()) > self.max_unsent:
            if stalled >= CATCH_UP_PATIENCE:
                raise Behind(unsent)
            await asyncio.sleep(0.05)
            stalled = 0.0 if self.unsent_bytes() < unsent else stalled + 0.05

    async def _relay_ended(self, reason: End) -> None:
        """The relay stopped feeding this viewer (see `relay.End`)."""
        if reason is End.BEHIND:
            await self._behind(f"{self.sub.queue.maxsize} live events queued")
        else:
            frame = resync_frame("the event log restarted (Redis lost its data)", relay.last_id)
            await self._end(Close.RESYNC, frame)

    async def _behind(self, why: str) -> None:
        logger.warning("celery-live: a viewer fell behind (%s); closing it, it catches up on reconnect", why)
        await self._end(Close.BEHIND)

    async def _fail(self) -> None:
        logger.exception("celery-live: consumer failed; closing so the client reconnects")
        await self._end(Close.SERVER_ERROR)

    async def _end(self, code: Close, frame: dict[str, Any] | None = None) -> None:
        """Stop following the log and close the socket with `code`, after `frame`."""
        if self.ended:
            return
        self.ended = True
        if self.sub is not None:
            self.sub.close()
        if self.pump is not None and self.pump is not asyncio.current_task():
            self.pump.cancel()
        await self._accept()  # a close before accepting would be an HTTP 403, no code
        if frame is not None:
            await self.send(text_data=json.dumps(frame))
        await self.close(code=int(code))  # autobahn refuses an int subclass (IntEnum)

    async def _catch_up(self) -> None:
        """Send everything after `sent_id`: from the database what the stream no longer
        holds (it is trimmed to MAXLEN), then from the stream."""
        oldest = await relay.log.first_id()
        if oldest is not None and parse_id(self.sent_id) < parse_id(oldest):
            await self._replay(lambda: database_events_after(self.sent_id, oldest, CATCH_UP_BATCH))
        await self._replay(lambda: relay.log.range_after(self.sent_id, CATCH_UP_BATCH))

    async def _replay(self, read: Callable[[], Awaitable[list[dict[str, Any]]]]) -> None:
        """Send the batches `read()` returns until it returns none, at the viewer's pace:
        room first, then read, so a viewer that is waited for holds no batch in memory."""
        while True:
            await self._room()
            if not (batch := await read()):
                return
            await self._emit(batch)
            # Not kept while waiting for room: 30 viewers that never read each held their
            # last 1000 decoded events, ~2 MB apiece (slow_viewers.py).
            del batch

    async def caught_up(self) -> None:
        """Called once a reconnecting viewer has everything it missed."""

    async def _emit(self, events: list[dict[str, Any]]) -> None:
        self.sent_id = events[-1]["id"]
        if self.task_filter:
            events = [e for e in events if self.wants(e)]
        if events:
            await self.send_events(events)

    def wants(self, event: dict[str, Any]) -> bool:
        """Whether a viewer of one run (`?task=`) is sent `event`."""
        return event.get("task_id") == self.task_filter

    async def send_events(self, events: list[dict[str, Any]]) -> None:  # pragma: no cover
        raise NotImplementedError


def resync_frame(reason: str, last_id: str | None) -> dict[str, Any]:
    """What a viewer closed with `Close.RESYNC` is told: reload, then follow from `last_id`."""
    return {"resync": True, "reason": reason, "last_id": last_id}


def websocket_message(event: dict[str, Any]) -> dict[str, str]:
    """The ASGI `websocket.send` message of one event as JSON, built once per event."""
    message = getattr(event, "message", None)
    if message is None:
        message = {"type": "websocket.send", "text": getattr(event, "text", None) or json.dumps(event)}
        if isinstance(event, LoggedEvent):
            event.message = message
    return message


class EventsConsumer(LogConsumer):
    """`/ws/events/`: one JSON frame per event, in log order."""

    async def send_events(self, events: list[dict[str, Any]]) -> None:
        # Straight to the server's send: the same frame goes to every viewer, so skip
        # building it again in each consumer's layers.
        for event in events:
            await self.base_send(websocket_message(event))


#: The page socket's refusal of `?before=` (runs.html: an older page of the list has no socket).
OLDER_PAGE_NOT_LIVE = "an older page of runs is not live: follow the newest page (without before)"
#: The page views `/ws/page/?view=` serves.
PAGE_VIEWS = ("index", "detail", "list", QUEUES_VIEW, FAILURES, WORKERS_VIEW, TOUR_VIEW)


class PageConsumer(LogConsumer):
    """`/ws/page/`: htmx out-of-band fragments; events that arrive together share a frame.

    `?view=index` (default) the launch page, `?view=detail&task=<id>` one run with its
    timeline, `?view=list&state=...` the list, with the list page's filters, `?view=queues`
    the queues page (stream/queues.py), `?view=failures` the failures inbox (stream/failures.py),
    `?view=workers` the workers page (stream/workers.py), `?view=tour` the tour page: the
    index's cards, the architecture diagram and the event feed (stream/tour.py).
    """

    async def connect(self) -> None:
        # Run cards say when no worker knows their task: the process's board of workers
        # must follow the log before any card is rendered for this page.
        await board.follow()
        # A run's detail page follows its workflow's runs too (stream/workflow.py).
        params = parse_qs(self.scope.get("query_string", b"").decode())
        task_id = (params.get("task") or [None])[0]
        self.workflow = None
        if (params.get("view") or [None])[0] == "detail" and task_id:
            self.workflow = await database_sync_to_async(watch_workflow, thread_sensitive=False)(task_id)
        await super().connect()

    def wants(self, event: dict[str, Any]) -> bool:
        return self.workflow.wants(event) if self.workflow is not None else super().wants(event)

    def check_params(self, params: dict[str, list[str]]) -> dict | None:
        kind = (params.get("view") or ["index"])[0]
        if kind not in PAGE_VIEWS:
            return {"error": f"view must be {', '.join(PAGE_VIEWS[:-1])} or {PAGE_VIEWS[-1]}"}
        run_filter = None
        if kind == "list":
            if params.get("before"):
                # Only the list's newest page is live: an older one would get the new runs.
                return {"errors": {"before": [OLDER_PAGE_NOT_LIVE]}}
            run_filter, errors, _ = RunFilter.from_params({k: v[0] for k, v in params.items()})
            if run_filter is None:
                return {"errors": errors}
        self.view = PageView(kind, run_filter, task_id=self.task_filter, workflow=self.workflow)
        return None

    async def send_events(self, events: list[dict[str, Any]]) -> None:
        if frame := await renderer.frame(events, relay.log, self.view):
            await self.send(text_data=frame)

    async def caught_up(self) -> None:
        await self.send(text_data=CAUGHT_UP)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # the page sends nothing we act on
