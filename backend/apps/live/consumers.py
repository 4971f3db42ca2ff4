"""WebSocket consumers: the page's HTML fragments and the JSON event stream.

Both are thin: on connect they send what the viewer missed since its `since` id (from
the database for what the stream no longer holds, then from the stream), then forward
live events from this process's relay, skipping ids already sent, so a reconnecting
viewer gets no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

from .events import LoggedEvent, parse_id
from .filters import RunFilter
from .fragments import PageView, renderer
from .history import database_events_after
from .relay import is_after, relay

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_TRY_AGAIN = 1013
CATCH_UP_BATCH = 1000
#: Tells the page it has everything it missed (live.js shows "catching up" until then).
CAUGHT_UP = '<span id="live-status" hx-swap-oob="true" data-state="live"></span>'


class LogConsumer(AsyncWebsocketConsumer):
    """Base: catch up from `?since=<event id>`, then follow live; `?task=<id>` filters."""

    batch_limit = 200

    async def connect(self) -> None:
        params = parse_qs(self.scope.get("query_string", b"").decode())
        since = (params.get("since") or [None])[0] or None
        self.task_filter = (params.get("task") or [None])[0] or None
        self.pump: asyncio.Task | None = None
        self.sub = None
        self.skip_through: str | None = None
        error = self.check_params(params)
        if since is not None:
            try:
                parse_id(since)
            except ValueError:
                error = {"error": "since must be an event id like 1764090000123-0", "since": since}
        if error:
            await self.accept()
            await self.send(text_data=json.dumps(error))
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        # Subscribe before accepting: whatever is logged once the client is connected
        # comes after the relay's position, so it reaches this viewer.
        self.sub = await relay.subscribe()
        await self.accept()
        self.sent_id = since
        self.pump = asyncio.create_task(self._pump(since))

    def check_params(self, params: dict[str, list[str]]) -> dict | None:
        """An error to send before closing, or None; subclasses check their own parameters."""
        return None

    async def disconnect(self, code: int) -> None:
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
            while batch := self.sub.take(self.batch_limit):
                if self.sub.overflowed:  # the queue is full when it overflows: never empty here
                    await self.close(code=CLOSE_TRY_AGAIN)
                    return
                if batch := self._unsent(batch):
                    await self._emit(batch)
            # No await since the queue was found empty: the relay's next events come here.
            self.sub.go_direct(self._deliver)
        except asyncio.CancelledError:
            raise
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
                await self._emit(events[start : start + self.batch_limit])
        except Exception:
            await self._fail()

    async def _fail(self) -> None:
        logger.exception("celery-live: consumer failed; closing so the client reconnects")
        self.sub.close()
        await self.close(code=1011)

    async def _catch_up(self) -> None:
        """Send everything after `sent_id`: from the database what the stream no longer
        holds (it is trimmed to MAXLEN), then from the stream."""
        oldest = await relay.log.first_id()
        if oldest is not None and parse_id(self.sent_id) < parse_id(oldest):
            while older := await database_events_after(self.sent_id, oldest, CATCH_UP_BATCH):
                await self._emit(older)
        while missed := await relay.log.range_after(self.sent_id, CATCH_UP_BATCH):
            await self._emit(missed)

    async def caught_up(self) -> None:
        """Called once a reconnecting viewer has everything it missed."""

    async def _emit(self, events: list[dict[str, Any]]) -> None:
        self.sent_id = events[-1]["id"]
        if self.task_filter:
            events = [e for e in events if e.get("task_id") == self.task_filter]
        if events:
            await self.send_events(events)

    async def send_events(self, events: list[dict[str, Any]]) -> None:  # pragma: no cover
        raise NotImplementedError


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


class PageConsumer(LogConsumer):
    """`/ws/page/`: htmx out-of-band fragments; events that arrive together share a frame.

    `?view=index` (default) the launch page, `?view=detail&task=<id>` one run with its
    timeline, `?view=list&state=...` the list, with the list page's filters.
    """

    def check_params(self, params: dict[str, list[str]]) -> dict | None:
        kind = (params.get("view") or ["index"])[0]
        if kind not in ("index", "detail", "list"):
            return {"error": "view must be index, detail or list"}
        run_filter = None
        if kind == "list":
            run_filter, errors, _ = RunFilter.from_params({k: v[0] for k, v in params.items()})
            if run_filter is None:
                return {"errors": errors}
        # A page of older runs only updates its rows; new runs go to the newest page.
        self.view = PageView(kind, run_filter, upsert=not params.get("before"))
        return None

    async def send_events(self, events: list[dict[str, Any]]) -> None:
        await self.send(text_data=await renderer.frame(events, relay.log, self.view))

    async def caught_up(self) -> None:
        await self.send(text_data=CAUGHT_UP)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # the page sends nothing we act on
