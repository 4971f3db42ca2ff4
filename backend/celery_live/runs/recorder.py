"""The recorder: writes every event and every run's state to the database, off the task's path.

It reads the event stream through a Redis consumer group, so however many Daphne
processes run one, each event is recorded once, and a recorder that was down resumes
where the group left off (its own unacknowledged entries first, then entries another
recorder read and left unacknowledged for `CLAIM_IDLE_MS`: it died or was stopped).
Events are written in batches: one transaction per read. Recording is idempotent and
only moves forward: an event is stored once (by id), and a run's row is written only
from a fold of more of its events than the row holds (`save_run`), so entries taken
over late never set a run back.

It runs as a thread in each Daphne process (`start_in_background`, called from
config/asgi.py), or on its own with `manage.py record_events`. Each loop also gives the
reaper (reaper.py) its turn, and it starts the queue sampler (queues.py) beside it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict
from typing import Any

import redis
from django.db import IntegrityError, close_old_connections, connection, transaction

from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.events import decode_entry, parse_id
from celery_live.log.store import RECORDER_GROUP, stream_key
from celery_live.runs.history import task_events
from celery_live.runs.models import Event, Run
from celery_live.runs.queues import start_sampler
from celery_live.runs.reaper import Reaper
from celery_live.runs.state import RunCache, RunState, log_order

logger = logging.getLogger(__name__)

#: How long an entry another recorder read may stay unacknowledged before this one takes it
#: over. A recorder that died (or is stopped) holds its entries this long at most; taking
#: over a slow but live one's entries is harmless (events are stored once by id, a run row
#: only moves forward), so this can be short.
CLAIM_IDLE_MS = 5_000
#: A busy recorder still looks for stale entries this often (seconds).
CLAIM_EVERY = 5.0


class Recorder:
    def __init__(self, client: redis.Redis | None = None, name: str | None = None, batch: int = 500) -> None:

        self.client = client or store.client()
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch
        self.runs = RunCache()
        self.reaper = Reaper(self.client)
        self._own_pending_done = False
        self._next_claim = 0.0

    def ensure_group(self) -> None:
        try:
            # From the start of the stream: whatever is in it has not been recorded yet.
            self.client.xgroup_create(stream_key(), RECORDER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run_once(self, block_ms: int | None = 1000) -> int:
        """Record one batch; return how many events it held."""
        self.ensure_group()
        entries = []
        if not self._own_pending_done:
            # After a restart: first what this consumer read but did not acknowledge.
            entries = self._read("0", None)
            self._own_pending_done = not entries
        if not entries and time.monotonic() >= self._next_claim:
            entries = self._claim_stale()
            # More may be waiting: claim again at once until none are.
            self._next_claim = 0.0 if entries else time.monotonic() + CLAIM_EVERY
        if not entries:
            entries = self._read(">", block_ms)
        if not entries:
            return 0
        events = [decode_entry(entry_id, fields) for entry_id, fields in entries]
        self.record(events)
        self.client.xack(stream_key(), RECORDER_GROUP, *[e["id"] for e in events])
        return len(events)

    def _read(self, start: str, block_ms: int | None) -> list:
        reply = self.client.xreadgroup(
            RECORDER_GROUP, self.name, {stream_key(): start}, count=self.batch, block=block_ms
        )
        return reply[0][1] if reply else []

    def _claim_stale(self) -> list:
        """Entries another recorder read and never acknowledged (it died), after a while."""
        reply = self.client.xautoclaim(
            stream_key(), RECORDER_GROUP, self.name, CLAIM_IDLE_MS, "0-0", count=self.batch
        )
        entries = reply[1]  # Redis 7 adds a third item (deleted ids); 6.2 does not
        return [entry for entry in entries if entry and entry[1]]

    def record(self, events: list[dict[str, Any]]) -> None:
        """Store `events` and the state of every run they touch, in one transaction.

        Should the batch fail, it is stored run by run, so that one bad run (logged with
        its id, then skipped) never keeps the others from being recorded. If the database
        itself is unreachable this raises: the batch stays unacknowledged and is recorded
        once the database is back.
        """
        try:
            self._record(events)
            return
        except Exception:
            logger.exception("celery-live recorder: a batch of %d failed; recording run by run", len(events))
        for task_id, task_evs in by_task(events).items():
            try:
                self._record(task_evs)
            except Exception:
                close_old_connections()
                if not database_reachable():
                    raise
                logger.exception(
                    "celery-live recorder: could not record %d events of run %r; skipped",
                    len(task_evs),
                    task_id,
                )

    def _record(self, events: list[dict[str, Any]]) -> None:
        states = [self._state_after(task_evs) for task_id, task_evs in by_task(events).items() if task_id]
        with transaction.atomic():
            Event.objects.bulk_create([Event.from_event(e) for e in events], ignore_conflicts=True)
            for state in states:
                save_run(state)

    def _state_after(self, task_events_in_batch: list[dict]) -> RunState:
        run = None
        for event in sorted(task_events_in_batch, key=log_order):
            run = self.runs.advance(event)
            if run is None:
                run = self.runs.reload(event, task_events(event["task_id"]))
        return run

    def run_forever(self, stop: threading.Event) -> None:
        # Beside the reaper, the queue sampler (queues.py), in its own thread: a broker slow
        # to answer must not hold up recording.
        start_sampler(stop)
        redis_down = False
        while not stop.is_set():
            try:
                close_old_connections()
                recorded = self.run_once(block_ms=1000)
                self.reaper.maybe_run()
                if redis_down:
                    redis_down = False
                    logger.warning("celery-live recorder: Redis is back; recording again")
                if 0 < recorded < self.batch:
                    # Let events gather: one transaction per interval instead of one per event
                    # (the recorder shares its process with the live path; measured: it cost
                    # Daphne most of a core at 200 events/s when it wrote every event at once).
                    stop.wait(conf.RECORD_INTERVAL)
            except redis.RedisError as exc:  # an outage, not a bug: one line, no traceback a second
                if not redis_down:
                    redis_down = True
                    logger.warning("celery-live recorder: Redis unreachable (%s); retrying each second", exc)
                stop.wait(1)
            except Exception:  # keep recording whatever one batch did; say so loudly
                logger.exception("celery-live recorder: a batch failed; retrying in 1 s")
                stop.wait(1)


def by_task(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """`events` by run, in their order ("" for events of no run)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        grouped[event.get("task_id") or ""].append(event)
    return grouped


def database_reachable() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def save_run(state: RunState, attempts: int = 3) -> None:
    """Write a run's row, only ever forward: a state folded up to an older event (entries a
    restarted recorder took over late) never overwrites one folded further. Compared by
    event id, not seq: ids keep growing when Redis loses its data, a run's seq starts over."""
    fields = Run.fields_from_state(state)
    for _ in range(attempts):
        stored = Run.objects.filter(task_id=state.task_id).values_list("last_event_id", flat=True).first()
        if stored is None:
            try:
                with transaction.atomic():  # a savepoint: another recorder may create it first
                    Run.objects.create(task_id=state.task_id, **fields)
                return
            except IntegrityError:
                continue
        if stored and parse_id(stored) >= state.position:
            return
        # Only if no other recorder moved it meanwhile; else look again.
        if Run.objects.filter(task_id=state.task_id, last_event_id=stored).update(**fields):
            return
    logger.warning("celery-live recorder: run %s kept changing meanwhile; left as it is", state.task_id)


_thread: threading.Thread | None = None
_stop = threading.Event()


def start_in_background() -> threading.Thread | None:
    """Start the recorder thread in this process (once); off with CELERY_LIVE_RECORDER=0."""
    global _thread
    if not conf.RECORDER or (_thread is not None and _thread.is_alive()):
        return _thread
    _thread = threading.Thread(
        target=Recorder().run_forever, args=(_stop,), name="celery-live-recorder", daemon=True
    )
    _thread.start()
    return _thread
