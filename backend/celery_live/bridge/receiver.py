"""The bridge's loop: Celery's event stream in, celery-live's events out.

`Bridge(broker_url).run()` consumes Celery's events with Celery's own receiver
(`app.events.Receiver`, every type: `handlers={"*": ...}`) on a Celery app of its own, which
imports none of the cluster's code. Each event:

- is skipped when its worker runs our worker side (`store.instrumented_key`: its heartbeat
  step marks its hostname before its consumer starts, so before its first Celery event);
  a producer's `task-sent` is not skipped but shares our signal's dedupe key instead;
- is translated (translate.py), the worker instance its pid belongs to found first
  (`Instances`): a bridge restarted, or a second one, names a live worker process as the
  first did, so its runs are not judged "restarted";
- for a worker event, is written to the worker registry (log/workers.py) as our heartbeat
  step writes it: the reaper marks a silent worker's runs LOST, the workers page lists it;
- is published with its dedupe key, without waiting for Redis (one connection keeps the
  order; the publisher buffers while Redis is away).

The broker going away (or not there yet) is one log line per attempt, then a new
connection after 1 s, 2 s, 4 s… up to 30 s; never a traceback. `stop()` (SIGTERM, Ctrl-C
in `manage.py bridge_events`) ends `run()` within a second.

With a Redis broker Celery's events are a PUBLISH each (a fanout exchange): each bridge gets
every event, and events sent while no bridge listens are gone. On connecting the bridge asks
every worker for a heartbeat (Celery's receiver does, `wakeup`), so the registry knows the
workers at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from celery.events.receiver import EventReceiver
from kombu.exceptions import OperationalError

from celery_live.bridge.translate import NEEDS_INSTANCE, WORKER_SIDE, Bridged, CeleryType, Skipped, Translator
from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.publishing import publish
from celery_live.log.store import instrumented_key, worker_instances_key, workers_key
from celery_live.log.workers import (
    BRIDGE_RENEW,
    Beat,
    WorkerRecord,
    forget_instance,
    mark_offline,
    note_bridge_watching,
    record_worker,
)

logger = logging.getLogger(__name__)

#: What the bridge says once it listens (`manage.py bridge_events` prints it: the contract a
#: supervisor waits for), when the broker does not answer, and when it listens again.
LISTENING = "bridging Celery's events from"
UNREACHABLE = "unreachable"
LISTENING_AGAIN = "listening again on"
#: Seconds between two connection attempts: the first, and the most.
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
#: Seconds the bridge trusts what it read of a hostname's instrumented mark (a worker's
#: `worker-online` reads it again at once: a new worker may be another kind).
MARK_RECHECK = 5.0


class _Receiver(EventReceiver):
    """Celery's receiver, but timestamps as their senders wrote them (epoch seconds: its
    "localize" shifts them by the two hosts' zone difference), and a hook once it listens."""

    on_ready: Callable[[], None] | None = None
    #: Whether it got as far as listening (its connection then broke, if it returns).
    listening = False

    def event_from_message(self, body: dict, localize: bool = True, **kwargs: Any) -> tuple[str, dict]:
        return super().event_from_message(body, localize=False, **kwargs)

    def on_consume_ready(self, connection: Any, channel: Any, consumers: Any, **kwargs: Any) -> None:
        super().on_consume_ready(connection, channel, consumers, **kwargs)
        self.listening = True
        if self.on_ready is not None:
            self.on_ready()


class Marks:
    """Which hostnames run our worker side, read from Redis at most every `MARK_RECHECK` s."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._read: dict[str, tuple[bool, float]] = {}

    def instrumented(self, hostname: str, fresh: bool = False) -> bool:
        """Whether `hostname` is marked (`fresh`: read it now)."""
        now = time.monotonic()
        known = self._read.get(hostname)
        if fresh or known is None or now - known[1] > MARK_RECHECK:
            try:
                known = (bool(self.client.exists(instrumented_key(hostname))), now)
            except redis.RedisError:
                if known is None:
                    raise  # not known at all: the event waits for nothing, it is skipped
                return known[0]  # Redis away: what it said last (the publisher buffers)
            self._read[hostname] = known
        return known[0]


@dataclass
class _Process:
    pid: Any
    instance: str
    processed: int


class Instances:
    """The worker instance (`<pid>-<start ms>`, log/workers.py) of each bridged worker.

    Celery's events give the worker's pid, not when it started. A pid seen for the first
    time becomes the instance its registry entry names, when that pid's (another bridge's,
    or this one's before a restart); else a new instance started at this event. A
    `worker-online` is a new process unless it is the one known and counts no fewer tasks
    processed (a consumer that reconnects says online again; a restart that got the same
    pid, as in a container, counts from 0).
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._known: dict[str, _Process] = {}

    def resolve(self, event: dict[str, Any]) -> str | None:
        hostname, pid = event.get("hostname"), event.get("pid")
        if not isinstance(hostname, str) or isinstance(pid, bool) or not isinstance(pid, (int, str)):
            return None
        processed = event.get("processed")
        processed = processed if isinstance(processed, int) and not isinstance(processed, bool) else None
        known = self._known.get(hostname)
        if known is None or known.pid != pid:
            known = self._registered(hostname, pid)
        online = event.get("type") == CeleryType.WORKER_ONLINE
        if known is None or (online and processed is not None and processed < known.processed):
            ts = event.get("timestamp")
            ms = int(ts * 1000) if isinstance(ts, (int, float)) and 0 < ts < 1e11 else int(time.time() * 1000)
            known = _Process(pid, f"{pid}-{ms}", 0)
        if processed is not None:
            known.processed = processed
        if event.get("type") == CeleryType.WORKER_OFFLINE:
            self._known.pop(hostname, None)
        else:
            self._known[hostname] = known
        return known.instance

    def _registered(self, hostname: str, pid: Any) -> _Process | None:
        """The registry's instance of `hostname`, if it is process `pid`'s."""
        raw = self.client.hget(workers_key(), hostname)
        instance = Beat.parse(raw).instance if raw is not None else None
        if not instance or instance.partition("-")[0] != str(pid):
            return None
        record_raw = self.client.hget(worker_instances_key(), instance)
        record = WorkerRecord.parse(record_raw) if record_raw is not None else None
        return _Process(pid, instance, record.processed if record is not None else 0)


class Bridge:
    """Celery's events on `broker_url` -> the log, until `stop()`."""

    def __init__(self, broker_url: str, on_ready: Callable[[str], None] | None = None) -> None:
        self.app = Celery("celery-live-bridge", broker=broker_url, set_as_current=False)
        self.on_ready = on_ready
        self.stopping = threading.Event()
        self.translator = Translator()
        client = store.client()
        self.client = client
        self.marks = Marks(client)
        self.instances = Instances(client)
        self._receiver: _Receiver | None = None
        #: Whether it has listened once (a later start is a reconnection).
        self.listened = False
        #: What was logged once already (a kind of bad event, a failing part).
        self._said: set[str] = set()
        #: Counts for the benchmark and the tests: published, skipped (instrumented
        #: workers), ignored (other types), refused (bad events), dropped (held too long).
        self.counts = {"published": 0, "skipped": 0, "ignored": 0, "refused": 0, "dropped": 0}
        #: Events waiting for Redis to answer (`handle`), oldest first.
        self._held: deque[dict[str, Any]] = deque()

    @property
    def where(self) -> str:
        """The broker's URL, its password masked."""
        return self.app.connection_for_read().as_uri()

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        """Receive and publish until `stop()`; reconnect (with backoff) when the broker goes.

        A URL no transport reads raises (kombu's error: the caller says so)."""
        delay = RETRY_FIRST
        threading.Thread(target=self._note_watching, name="celery-live-bridge-watch", daemon=True).start()
        while not self.stopping.is_set():
            with self.app.connection_for_read() as connection:
                # kombu re-raises a transport's failure to connect as its OperationalError.
                errors = (*connection.connection_errors, *connection.channel_errors, OSError)
                errors += (OperationalError,)
                try:
                    connection.ensure_connection(max_retries=0)
                    receiver = _Receiver(connection, handlers={"*": self.handle}, app=self.app)
                    receiver.connect_max_retries = 0  # this loop retries, one line each time
                    receiver.on_ready = self._ready
                    self._receiver = receiver
                    receiver.should_stop = self.stopping.is_set()
                    receiver.capture(limit=None, timeout=None, wakeup=True)
                    return
                except errors as exc:
                    reason = f"{type(exc).__name__}: {exc}"
            if self._receiver is not None and self._receiver.listening:
                delay = RETRY_FIRST  # it was up: the first retry comes soon again
            self._receiver = None
            if self.stopping.is_set():
                return
            logger.warning(
                "celery-live bridge: broker %s %s (%s); connecting again in %.0f s",
                self.where,
                UNREACHABLE,
                reason,
                delay,
            )
            if self.stopping.wait(delay):
                return
            delay = min(delay * 2, RETRY_MAX)

    def _ready(self) -> None:
        with contextlib.suppress(redis.RedisError):  # said again every BRIDGE_RENEW s
            note_bridge_watching(self.client)
        if self.listened:
            logger.warning("celery-live bridge: %s %s", LISTENING_AGAIN, self.where)
        elif self.on_ready is not None:
            self.on_ready(self.where)
        self.listened = True

    def _note_watching(self) -> None:
        """Say in Redis, every `BRIDGE_RENEW` s while it listens, that a bridge reads
        Celery's events: the reaper judges bridged workers' silence only then."""
        while not self.stopping.wait(BRIDGE_RENEW):
            receiver = self._receiver
            if receiver is None or not receiver.listening:
                continue
            try:
                note_bridge_watching(self.client)
            except redis.RedisError as exc:
                self._once("watching", "celery-live bridge: cannot note that it listens (%s)", exc)

    def stop(self) -> None:
        """End `run()` (within a second: the receiver looks once a second)."""
        self.stopping.set()
        receiver = self._receiver
        if receiver is not None:
            receiver.should_stop = True

    # --- one event -------------------------------------------------------------------------

    def handle(self, event: dict[str, Any]) -> None:
        """Translate and publish one Celery event; never raises into the receiver.

        An event the bridge cannot judge now (Redis, where the instrumented marks and the
        registry are, does not answer) is held, with every later one to keep their order,
        and handled once Redis answers again (at the next event: a live worker beats every
        2 s). Past `conf.PUBLISH_BUFFER` held events the oldest are dropped, counted and
        logged: with Redis away that long, the publisher's own buffer is full as well.
        """
        if self._held:
            self._release_held()
        if self._held or not self._handle(event):
            self._hold(event)

    def _hold(self, event: dict[str, Any]) -> None:
        self._held.append(event)
        if len(self._held) > conf.PUBLISH_BUFFER:
            self._held.popleft()
            self.counts["dropped"] += 1
            self._once("dropped", "celery-live bridge: Redis is away too long; dropping the oldest held")

    def _release_held(self) -> None:
        while self._held:
            if not self._handle(self._held[0]):
                return
            self._held.popleft()
        if "redis" in self._said:
            self._said -= {"redis", "dropped"}
            logger.warning(
                "celery-live bridge: Redis answers again; held events logged (%d dropped so far)",
                self.counts["dropped"],
            )

    def _handle(self, event: dict[str, Any]) -> bool:
        """Translate and publish one event; False if Redis did not answer (try it again)."""
        kind = event.get("type") if isinstance(event, dict) else None
        try:
            hostname = event.get("hostname") if isinstance(event, dict) else None
            fresh = kind == CeleryType.WORKER_ONLINE
            if kind in WORKER_SIDE and isinstance(hostname, str) and self.marks.instrumented(hostname, fresh):
                self.counts["skipped"] += 1
                return True
            instance = self.instances.resolve(event) if kind in NEEDS_INSTANCE else None
            bridged = self.translator.translate(event, instance)
        except redis.RedisError as exc:
            self._once("redis", "celery-live bridge: Redis does not answer (%s); holding events", exc)
            return False
        except Exception as exc:  # a bug must cost one event, not the bridge
            self._once(f"bug:{kind}", "celery-live bridge: could not translate a %s event (%r)", kind, exc)
            self.counts["refused"] += 1
            return True
        if bridged is None:
            self.counts["ignored"] += 1
        elif isinstance(bridged, Skipped):
            self.counts["refused"] += 1
            self._once(bridged.kind, "celery-live bridge: skipping %s (%s)", bridged.kind, bridged.reason)
        else:
            self._registry(bridged)
            publish(bridged.type, wait=False, dedupe=bridged.dedupe, **bridged.fields)
            self.counts["published"] += 1
        return True

    def _registry(self, bridged: Bridged) -> None:
        """What a worker event says, in the worker registry (as our heartbeat step writes it)."""
        try:
            if bridged.record is not None:
                record_worker(self.client, bridged.record)
            elif bridged.offline is not None:
                worker = bridged.fields["worker"]
                mark_offline(self.client, bridged.offline, bridged.fields["data"]["reason"])
                forget_instance(self.client, worker, bridged.offline)
        except redis.RedisError as exc:  # the reaper copes with a missed beat
            self._once("registry", "celery-live bridge: cannot write the worker registry (%s)", exc)
            return
        self._said.discard("registry")

    def _once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._said:
            self._said.add(key)
            logger.warning(message, *args)
