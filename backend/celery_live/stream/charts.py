"""The charts, live: one aggregator per Daphne process, fed by its relay, pushing to the
chart pages' sockets (`/ws/charts/`) at most once a second.

The aggregator (`stats.Aggregator`) is started by the first chart viewer of a process and
then kept: a direct subscriber of the relay (one fold per event, no queue), seeded once
from the database with the window's runs (one query per process, not per viewer or
second; a run seen both ways counts once; what was logged in the moment before and not yet
recorded, the recorder's lag, is missed). Every `TICK` it drops what left the window and,
if anything changed and anyone watches, renders one frame per scope (every task, or one
task name) and sends it to that scope's viewers: the changed buckets as JSON in a data
attribute (charts.js draws them with uPlot) and the changed rows or figures as htmx
out-of-band swaps. Nothing changed: nothing is sent. A viewer gets the whole window when it
connects (it replaces what the page was rendered with from the database).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string
from django.urls import reverse

from celery_live.conf import conf
from celery_live.stream import stats
from celery_live.stream.auth import refusal_frame
from celery_live.stream.backpressure import unsent_bytes_probe
from celery_live.stream.consumers import Close, refusal_code
from celery_live.stream.relay import End, Subscription, relay

logger = logging.getLogger(__name__)

#: Seconds between two pushes to a chart viewer (at most).
TICK = 1.0


def duration(seconds: float | None) -> str:
    """Seconds as a person reads them: 850 ms, 3.2 s, 4.5 min; "—" for none."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min"


def row_id(name: str) -> str:
    """The id of a task name's row in the page (a name can hold any character)."""
    return "chart-name-" + hashlib.blake2s(name.encode(), digest_size=6).hexdigest()


def summary_context(window: stats.Window, name: str) -> dict[str, Any]:
    """A name's figures over the window, as the templates show them."""
    summary = window.summary(name)
    rate = summary["failure_rate"]
    return {
        "name": name,
        "row_id": row_id(name),
        # No run of it left in the window: its row goes.
        "gone": name not in window.totals,
        "now": time.time(),
        "summary": summary,
        "failure_rate": "—" if rate is None else f"{rate * 100:.1f} %",
        "wait": {key: duration(value) for key, value in summary["wait"].items()},
        "run": {key: duration(value) for key, value in summary["run"].items()},
        "url": reverse("celery_live:task_name", args=[name]) if name else "",
    }


def render_data(payload: dict[str, Any], oob: bool) -> str:
    """The element charts.js reads its data from."""
    return render_to_string("celery_live/_chart_data.html", {"payload": json.dumps(payload), "oob": oob})


def render_name_row(window: stats.Window, name: str, oob: bool) -> str:
    return render_to_string("celery_live/_chart_name_row.html", {**summary_context(window, name), "oob": oob})


def render_name_summary(window: stats.Window, name: str, oob: bool) -> str:
    return render_to_string(
        "celery_live/_task_name_summary.html", {**summary_context(window, name), "oob": oob}
    )


def page_parts(window: stats.Window, name: str, now: float) -> dict[str, Any]:
    """What a chart page shows at first (its view renders it from the database) and what
    its socket sends first (from the aggregator): the whole window."""
    parts: dict[str, Any] = {"data": render_data(stats.chart_payload(window, name, now), oob=False)}
    if name == stats.ALL:
        parts["rows"] = [render_name_row(window, each, oob=False) for each in window.names()]
    else:
        parts["summary_panel"] = render_name_summary(window, name, oob=False)
    return parts


def full_frame(window: stats.Window, name: str, now: float) -> str:
    """A socket's first frame: the whole window, replacing the page's."""
    frame = render_data(stats.chart_payload(window, name, now), oob=True)
    if name == stats.ALL:
        return frame + "".join(render_name_row(window, each, oob=True) for each in window.names())
    return frame + render_name_summary(window, name, oob=True)


def update_frame(window: stats.Window, name: str, changes: dict[str, set[int]], now: float) -> str:
    """A frame of what changed in scope `name` ("" if nothing did)."""
    if name not in changes:
        return ""
    frame = render_data(stats.chart_payload(window, name, now, changes[name]), oob=True)
    if name == stats.ALL:
        changed_names = sorted(each for each in changes if each != stats.ALL)
        return frame + "".join(render_name_row(window, each, oob=True) for each in changed_names)
    return frame + render_name_summary(window, name, oob=True)


#: The seed's query, in a thread of its own: not on the one thread every socket's database
#: call shares (a user lookup), which a long read would hold up.
read_window = database_sync_to_async(stats.recent_rows, thread_sensitive=False)


class ChartsHub:
    """This process's aggregator and the chart viewers it pushes to."""

    def __init__(self) -> None:
        self.aggregator: stats.Aggregator | None = None
        #: Viewer -> its scope (`stats.ALL`, or a task name).
        self.viewers: dict[ChartsConsumer, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._ticker: asyncio.Task | None = None
        self._subscription: Subscription | None = None

    async def join(self, viewer: ChartsConsumer, name: str) -> None:
        """Start pushing `name`'s charts to `viewer`, the whole window first."""
        await self._ensure_running()
        # No await between the frame and joining: no change falls between the two.
        frame = full_frame(self.aggregator.window, name, time.time())
        self.viewers[viewer] = name
        await viewer.push(frame)

    def leave(self, viewer: ChartsConsumer) -> None:
        self.viewers.pop(viewer, None)

    async def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): start afresh on it
            self._loop, self._lock, self._ticker, self.viewers = loop, asyncio.Lock(), None, {}
        async with self._lock:
            if self._ticker is not None and not self._ticker.done():
                return
            if self._subscription is not None:  # the last start failed half-way
                self._subscription.close()
            aggregator = stats.Aggregator()
            self.aggregator = aggregator
            await self._subscribe()
            # Live events fold in while the database is read: the aggregator counts each
            # run's start and end once, whichever way it sees them first.
            for row in await read_window(time.time()):
                aggregator.fold_row(row)
            aggregator.window.take_changes()  # no viewer has anything yet: each gets it whole
            self._ticker = loop.create_task(self._tick_forever(), name="celery-live-charts")

    async def _subscribe(self) -> None:
        self._subscription = await relay.subscribe(self._relay_ended)
        self._subscription.go_direct(self._fold)  # straight after subscribing: its queue is empty

    async def _fold(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.aggregator.fold(event)

    async def _relay_ended(self, reason: End) -> None:
        # The log restarted (Redis lost its data): what was counted stays counted; follow
        # the new log from its end, as the relay does.
        await self._subscribe()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.tick(time.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("celery-live charts: a tick failed")

    async def tick(self, now: float) -> None:
        """Drop what left the window; send each viewer what changed in its scope."""
        window = self.aggregator.window
        window.evict(now)
        changes = window.take_changes()
        if not changes:
            return
        frames: dict[str, str] = {}
        for viewer, name in tuple(self.viewers.items()):
            if name not in frames:
                frames[name] = update_frame(window, name, changes, now)
            if frames[name]:
                await viewer.push(frames[name])


hub = ChartsHub()


class ChartsConsumer(AsyncWebsocketConsumer):
    """`/ws/charts/` (every task) or `/ws/charts/?name=<task name>`: the charts' frames.

    Close codes as the other sockets' (consumers.Close): 4401/4403 refused in login mode,
    4408 a viewer that has not taken what it was sent, 4500 the server failed.
    """

    channel_layer_alias = None

    async def connect(self) -> None:
        params = parse_qs(self.scope.get("query_string", b"").decode())
        name = (params.get("name") or [stats.ALL])[0]
        self.unsent_bytes = unsent_bytes_probe(self.base_send)
        await self.accept()
        refusal = await refusal_code(self.scope.get("user"))
        if refusal is not None:
            await self.send(text_data=json.dumps(refusal_frame()))
            await self.close(code=int(refusal))
            return
        try:
            await hub.join(self, name)
        except Exception:
            logger.exception(
                "celery-live charts: starting the charts failed; closing so the client reconnects"
            )
            await self.close(code=int(Close.SERVER_ERROR))

    async def disconnect(self, code: int) -> None:
        hub.leave(self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # the page sends nothing we act on

    async def push(self, frame: str) -> None:
        """Send a frame, or close the viewer as behind if it has not taken what it was sent."""
        try:
            if self.unsent_bytes is not None and self.unsent_bytes() > conf.VIEWER_MAX_BUFFER:
                hub.leave(self)
                await self.close(code=int(Close.BEHIND))
                return
            await self.send(text_data=frame)
        except Exception:  # a viewer gone meanwhile must not stop the others' frames
            logger.debug("celery-live charts: a viewer's frame failed", exc_info=True)
            hub.leave(self)
