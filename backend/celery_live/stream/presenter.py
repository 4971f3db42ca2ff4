"""Presenter mode: `/ws/present/`, one person's navigation and pointing followed by others.

Every page opens this socket (presenter.js), so a page opened before a presentation began
learns of it. Its frames are few (a presenter's page loads and clicks, counts when someone
follows or leaves) but must reach the pages on every web replica: they cross over the
channel layer (channels-redis), in one group. Each process joins that group once, through
its `Hub`, and fans what arrives out to its own sockets in memory, as the relay does for the
log: a socket costs no Redis operation to open, where the layer's usual one channel and
group membership per consumer failed under a hundred sockets connecting at once. The page's
own socket (consumers.py) is untouched: no per-event cost there.

Who presents and who follows is kept in Redis (log/presence.py), so any replica answers the
same and a page load keeps its role. Frames from the browser are JSON objects with an
`action`; anything else gets an error frame and changes nothing. Only the current
presenter's frames move others, and only to paths of this dashboard. Frames are limited to
`RATE` a second per socket (a token bucket: no Redis work for a flood).

The frames, both ways, are in docs/api.md ("Presenter socket").
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.urls import Resolver404, resolve

from celery_live.access import DENIED, Action, allows
from celery_live.conf import conf
from celery_live.log.presence import Presence, Presentation
from celery_live.stream.auth import refusal_frame
from celery_live.stream.consumers import Close, refusal_code

logger = logging.getLogger(__name__)

#: The channel-layer group every process's hub is in.
GROUP = "celery-live.presence"
#: Seconds between a hub's looks at Redis: it renews its group membership (lost when Redis
#: restarts, and expiring after the layer's `group_expiry`) and tells its sockets of a
#: presentation or followers that lapsed (log/presence.py `EXPIRY`).
TICK = 15.0
#: Seconds between two pings of a presenting or following page (presenter.js reads it).
PING_INTERVAL = 15
#: Frames a socket may send a second, and at once.
RATE = 10
BURST = 20
MAX_FRAME = 4096
MAX_PATH = 2000
#: A seat: the random id presenter.js makes for its tab.
SEAT = re.compile(r"[A-Za-z0-9_-]{16,64}")
#: What a highlight names: an element's `data-present-highlight` value or its id (run-<id>).
TARGET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
NO_LAYER = "presenter mode needs a channel layer (the host's CHANNEL_LAYERS setting)"
#: The URL namespace of this dashboard's pages: the only places a follower is sent.
NAMESPACE = "celery_live"


class Role(enum.StrEnum):
    """What a socket is in the presentation (the state frame's `role`)."""

    PRESENTER = "presenter"
    FOLLOWER = "follower"
    VIEWER = "viewer"


class Verb(enum.StrEnum):
    """What a browser may ask (the frame's `action`)."""

    PRESENT = "present"
    STOP = "stop"
    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    NAVIGATE = "navigate"
    HIGHLIGHT = "highlight"
    PING = "ping"


class Message(enum.StrEnum):
    """The types of the messages hubs send each other over the layer (`Hub._deliver`)."""

    STATE = "presence.state"
    NAVIGATE = "presence.navigate"
    HIGHLIGHT = "presence.highlight"


class FrameError(ValueError):
    """A frame the socket refuses; its text is what the browser is told."""


def app_path(raw: Any) -> str:
    """`raw` if it is a path (with its query) of one of this dashboard's pages, else FrameError.

    A follower's page goes wherever the presenter's says: a scheme, a host (`//evil`), a
    backslash (which browsers read as a slash) or a path outside the dashboard would be an
    open redirect, or script (`javascript:`), run in every follower's page.
    """
    error = FrameError("path must be a path of this dashboard, like /runs/")
    if not isinstance(raw, str) or not raw.startswith("/") or len(raw) > MAX_PATH:
        raise error
    if raw.startswith("//") or "\\" in raw or any(ord(char) < 0x21 or ord(char) == 0x7F for char in raw):
        raise error
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        raise error
    try:
        match = resolve(parts.path)
    except Resolver404:
        raise error from None
    if NAMESPACE not in match.namespaces:
        raise error
    return urlunsplit(("", "", parts.path, parts.query, ""))


def parse_frame(text: str | None) -> tuple[Verb, dict[str, Any]]:
    """A browser's frame as (action, frame), or FrameError saying what is wrong with it."""
    if text is None:
        raise FrameError("frames must be JSON text")
    if len(text) > MAX_FRAME:
        raise FrameError(f"frames must be at most {MAX_FRAME} characters")
    try:
        frame = json.loads(text)
    except ValueError:
        raise FrameError("frames must be JSON objects") from None
    if not isinstance(frame, dict):
        raise FrameError("frames must be JSON objects")
    try:
        action = Verb(frame.get("action"))
    except ValueError:
        raise FrameError(f"action must be one of {', '.join(Verb)}") from None
    if action is Verb.NAVIGATE:
        frame["path"] = app_path(frame.get("path"))
    elif action is Verb.HIGHLIGHT:
        target = frame.get("target")
        if not isinstance(target, str) or not TARGET.fullmatch(target):
            raise FrameError("target must be an element's id or data-present-highlight value")
    return action, frame


class Bucket:
    """A token bucket: `rate` a second, `burst` at once; in memory, per socket."""

    def __init__(self, rate: float = RATE, burst: int = BURST) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def state_message(presentation: Presentation) -> dict[str, Any]:
    """The layer message of a presentation (the presenter's seat included: servers only)."""
    presenter = presentation.presenter
    return {
        "type": Message.STATE.value,
        "presenter": None if presenter is None else [presenter.seat, presenter.name, presenter.path],
        "watching": presentation.watching,
    }


class Hub:
    """This process's one member of `GROUP`: what the layer brings goes to every local socket.

    Started by the first socket of its event loop, stopped when the last one leaves.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        # A layer of its own: the process's shared one allows one event loop at a time to
        # receive, and its receive must not be tied to any consumer's life.
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.presence = Presence()
        self.members: set[PresenterConsumer] = set()
        self.channel = ""
        self.started: asyncio.Future | None = None
        self.tasks: list[asyncio.Task] = []
        #: The last state told to the local sockets, to tell them only of a change.
        self.last_state: dict[str, Any] | None = None

    async def join(self, member: PresenterConsumer) -> None:
        self.members.add(member)
        if self.started is None:
            self.started = asyncio.ensure_future(self._start())
        try:
            await asyncio.shield(self.started)
        except Exception:
            self.members.discard(member)
            self.started = None  # the next socket tries again
            raise

    async def _start(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(GROUP, self.channel)
        self.tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._tick())]

    async def leave(self, member: PresenterConsumer) -> None:
        """`member` closed; the last one out stops the hub (the next socket makes a new one)."""
        global _hub
        self.members.discard(member)
        if self.members:
            return
        if _hub is self:  # before any await: a socket opening meanwhile gets a new hub
            _hub = None
        for task in self.tasks:
            task.cancel()
        started = self.started
        if started is not None and started.done() and not started.cancelled() and started.exception() is None:
            with contextlib.suppress(Exception):  # it expires anyway; a dead Redis must not fail a close
                await self.layer.group_discard(GROUP, self.channel)
        with contextlib.suppress(Exception):
            await self.presence.close()
            await self.layer.close_pools()

    async def send(self, message: dict[str, Any]) -> None:
        """To every page of every replica (this one included, through the layer)."""
        await self.layer.group_send(GROUP, message)

    async def broadcast_state(self) -> None:
        await self.send(state_message(await self.presence.read()))

    async def _listen(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("celery-live: presenter hub could not read the channel layer", exc_info=True)
                await asyncio.sleep(1)
                continue
            await self._deliver(message)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.layer.group_add(GROUP, self.channel)
                message = state_message(await self.presence.read())
            except Exception:
                logger.warning("celery-live: presenter hub could not reach Redis", exc_info=True)
                continue
            if message != self.last_state:
                await self._deliver(message)

    async def _deliver(self, message: dict[str, Any]) -> None:
        if message.get("type") == Message.STATE:
            self.last_state = message
        for member in list(self.members):
            try:
                await member.on_message(message)
            except Exception:  # one broken socket must not starve the others
                logger.warning("celery-live: a presenter socket failed a delivery", exc_info=True)


_hub: Hub | None = None


def hub() -> Hub:
    """This process's hub (one per event loop: tests run one loop each)."""
    global _hub
    if _hub is None or _hub.loop is not asyncio.get_running_loop():
        _hub = Hub()
    return _hub


async def may_present(user: Any) -> bool:
    """Whether `user` may present: launching's permission (login-free: anyone)."""
    if not conf.require_login:  # nothing to look up: no hop to the database thread
        return True
    return await database_sync_to_async(allows)(user, Action.LAUNCH)


def user_name(user: Any) -> str:
    """The name shown to followers: the username, or "" (the page says "Someone")."""
    return user.get_username() if user is not None and user.is_authenticated else ""


class PresenterConsumer(AsyncWebsocketConsumer):
    """`/ws/present/?seat=<id>`: see the module's docstring."""

    #: No channel per socket: the process's hub holds the one the layer delivers to.
    channel_layer_alias = None

    async def connect(self) -> None:
        self.hub: Hub | None = None
        self.ready = False  # the hub's messages wait for the socket to be accepted
        self.role = Role.VIEWER
        self.bucket = Bucket()
        user = self.scope.get("user")
        refusal = await refusal_code(user)
        if refusal is not None:
            await self._close(refusal, refusal_frame())
            return
        params = parse_qs(self.scope.get("query_string", b"").decode())
        self.seat = (params.get("seat") or [""])[0]
        if not SEAT.fullmatch(self.seat):
            await self._close(
                Close.BAD_REQUEST, {"type": "error", "error": "seat must be 16-64 letters or digits"}
            )
            return
        if DEFAULT_CHANNEL_LAYER not in channel_layers.configs:
            # A host without CHANNEL_LAYERS has no presenter mode: the page hides it.
            await self._close(Close.BAD_REQUEST, {"type": "error", "error": NO_LAYER})
            return
        self.name = user_name(user)
        self.can_present = await may_present(user)
        try:
            # Join before reading, so no change made meanwhile is missed.
            self.hub = hub()
            await self.hub.join(self)
            presentation = await self.hub.presence.read()
            if presentation.presenter is not None and presentation.presenter.seat == self.seat:
                self.role = Role.PRESENTER
                await self.hub.presence.touch(self.seat)
            elif presentation.presenter is not None and await self.hub.presence.follows(self.seat):
                self.role = Role.FOLLOWER
                await self.hub.presence.follow(self.seat)
        except Exception:
            logger.exception("celery-live: presenter socket could not start")
            await self._close(Close.SERVER_ERROR)
            return
        await self.accept()
        self.ready = True
        await self._send_state(state_message(presentation))

    async def _close(self, code: Close, frame: dict[str, Any] | None = None) -> None:
        await self.accept()  # a close before accepting would be an HTTP 403, with no code
        if frame is not None:
            await self.send(text_data=json.dumps(frame))
        await self.close(code=int(code))

    async def disconnect(self, code: int) -> None:
        if getattr(self, "hub", None) is None:
            return
        # The tab's next page may already be connected here (its socket can open before
        # this one's close is handled): then its seat is not leaving.
        staying = any(m.seat == self.seat for m in self.hub.members if m is not self)
        if self.role is not Role.VIEWER and not staying:
            with contextlib.suppress(Exception):  # it lapses anyway
                await self.hub.presence.left(self.seat, presenting=self.role is Role.PRESENTER)
        await self.hub.leave(self)

    # --- from the browser ---------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.bucket.take():
            await self._error(f"too many frames: at most {RATE} a second")
            return
        try:
            action, frame = parse_frame(text_data)
            await getattr(self, f"do_{action.value}")(frame)
        except FrameError as exc:
            await self._error(str(exc))
        except Exception:
            logger.exception("celery-live: presenter frame failed")
            await self._error("the server could not do that now; try again in a moment")

    async def _error(self, text: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "error": text}))

    async def do_present(self, frame: dict[str, Any]) -> None:
        if not self.can_present:
            raise FrameError(DENIED[Action.LAUNCH])
        path = app_path(frame["path"]) if frame.get("path") is not None else ""
        self.role = Role.PRESENTER
        await self.hub.presence.start(self.seat, self.name, path)
        await self.hub.broadcast_state()

    async def do_stop(self, frame: dict[str, Any]) -> None:
        if not await self.hub.presence.stop(self.seat):
            raise FrameError("you are not presenting")
        await self.hub.broadcast_state()

    async def do_follow(self, frame: dict[str, Any]) -> None:
        presentation = await self.hub.presence.read()
        if presentation.presenter is None:
            raise FrameError("nobody is presenting")
        if presentation.presenter.seat == self.seat:
            raise FrameError("you are presenting")
        self.role = Role.FOLLOWER
        await self.hub.presence.follow(self.seat)
        await self.hub.broadcast_state()

    async def do_unfollow(self, frame: dict[str, Any]) -> None:
        if self.role is Role.FOLLOWER:
            self.role = Role.VIEWER
        await self.hub.presence.unfollow(self.seat)
        await self.hub.broadcast_state()

    async def do_navigate(self, frame: dict[str, Any]) -> None:
        await self._as_presenter(frame["path"])
        await self.hub.send({"type": Message.NAVIGATE.value, "path": frame["path"]})

    async def do_highlight(self, frame: dict[str, Any]) -> None:
        await self._as_presenter()
        await self.hub.send({"type": Message.HIGHLIGHT.value, "target": frame["target"]})

    async def do_ping(self, frame: dict[str, Any]) -> None:
        if self.role is Role.PRESENTER:
            await self.hub.presence.touch(self.seat)
        elif self.role is Role.FOLLOWER:
            await self.hub.presence.follow(self.seat)

    async def _as_presenter(self, path: str = "") -> None:
        """Refresh the presentation (at `path`), or FrameError if this seat does not present:
        checked in Redis, which a takeover on another replica has already changed."""
        if not await self.hub.presence.touch(self.seat, path):
            raise FrameError("only the presenter moves the followers' pages")

    # --- from the hub -------------------------------------------------------------------

    async def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if not self.ready:
            return
        if kind == Message.STATE:
            await self._send_state(message)
        elif self.role is Role.FOLLOWER and kind == Message.NAVIGATE:
            await self.send(text_data=json.dumps({"type": "navigate", "path": message["path"]}))
        elif self.role is Role.FOLLOWER and kind == Message.HIGHLIGHT:
            await self.send(text_data=json.dumps({"type": "highlight", "target": message["target"]}))

    async def _send_state(self, message: dict[str, Any]) -> None:
        """Tell the page the presentation as `message` says, in its own role."""
        presenter = message["presenter"]
        seat, name, path = presenter if presenter is not None else (None, "", "")
        if seat == self.seat:
            self.role = Role.PRESENTER
        elif self.role is Role.PRESENTER or (self.role is Role.FOLLOWER and seat is None):
            who = name or "Someone"
            reason = "the presentation ended" if seat is None else f"{who} took over the presentation"
            self.role = Role.VIEWER
            await self.send(text_data=json.dumps({"type": "ended", "reason": reason}))
        frame = {
            "type": "state",
            "role": self.role.value,
            "presenter": None if seat is None else {"name": name, "path": path},
            "watching": message["watching"],
            "can_present": self.can_present,
            "ping_interval": PING_INTERVAL,
        }
        await self.send(text_data=json.dumps(frame))
