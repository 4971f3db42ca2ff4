"""The recorder: writes every event and every run's state to the database, off the task's path.

It reads the event stream through a Redis consumer group, so however many Daphne
processes run one, each event is recorded once, and a recorder that was down resumes
where the group left off (its own unacknowledged entries first, then other consumers'
stale ones). Events are written in batches: one transaction per read.

It runs as a thread in each Daphne process (`start_in_background`, called from
config/asgi.py), or on its own with `manage.py record_events`. Each loop also gives the
reaper (reaper.py) its turn.
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
from django.conf import settings
from django.db import close_old_connections, transaction

from .events import decode_entry, stream_key
from .history import task_events
from .models import Event, Run
from .reaper import Reaper
from .state import RunCache, RunState

logger = logging.getLogger(__name__)

GROUP = "celery-live-recorder"
CLAIM_IDLE_MS = 30_000


class Recorder:
    def __init__(self, client: redis.Redis | None = None, name: str | None = None, batch: int = 500) -> None:
        from .events import get_publisher

        self.client = client or get_publisher().client
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch
        self.runs = RunCache()
        self.reaper = Reaper(self.client)
        self._own_pending_done = False

    def ensure_group(self) -> None:
        try:
            # From the start of the stream: whatever is in it has not been recorded yet.
            self.client.xgroup_create(stream_key(), GROUP, id="0", mkstream=True)
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
        if not entries:
            entries = self._read(">", block_ms) or self._claim_stale()
        if not entries:
            return 0
        events = [decode_entry(entry_id, fields) for entry_id, fields in entries]
        self.record(events)
        self.client.xack(stream_key(), GROUP, *[e["id"] for e in events])
        return len(events)

    def _read(self, start: str, block_ms: int | None) -> list:
        reply = self.client.xreadgroup(
            GROUP, self.name, {stream_key(): start}, count=self.batch, block=block_ms
        )
        return reply[0][1] if reply else []

    def _claim_stale(self) -> list:
        """Entries another recorder read and never acknowledged (it died), after a while."""
        reply = self.client.xautoclaim(stream_key(), GROUP, self.name, CLAIM_IDLE_MS, "0-0", count=self.batch)
        entries = reply[1]  # Redis 7 adds a third item (deleted ids); 6.2 does not
        return [entry for entry in entries if entry and entry[1]]

    def record(self, events: list[dict[str, Any]]) -> None:
        """Store `events` and the state of every run they touch, in one transaction."""
        by_task: dict[str, list[dict]] = defaultdict(list)
        for event in events:
            if event.get("task_id"):
                by_task[event["task_id"]].append(event)
        states = {task_id: self._state_after(task_evs) for task_id, task_evs in by_task.items()}
        with transaction.atomic():
            Event.objects.bulk_create([Event.from_event(e) for e in events], ignore_conflicts=True)
            for task_id, state in states.items():
                Run.objects.update_or_create(task_id=task_id, defaults=Run.fields_from_state(state))

    def _state_after(self, task_events_in_batch: list[dict]) -> RunState:
        run = None
        for event in sorted(task_events_in_batch, key=lambda e: e.get("seq", 0)):
            run = self.runs.advance(event)
            if run is None:
                run = self.runs.reload(event, task_events(event["task_id"]))
        return run

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                close_old_connections()
                recorded = self.run_once(block_ms=1000)
                self.reaper.maybe_run()
                if 0 < recorded < self.batch:
                    # Let events gather: one transaction per interval instead of one per event
                    # (the recorder shares its process with the live path; measured: it cost
                    # Daphne most of a core at 200 events/s when it wrote every event at once).
                    stop.wait(settings.CELERY_LIVE_RECORD_INTERVAL)
            except Exception:  # keep recording whatever one batch did; say so loudly
                logger.exception("celery-live recorder: a batch failed; retrying in 1 s")
                time.sleep(1)


_thread: threading.Thread | None = None
_stop = threading.Event()


def start_in_background() -> threading.Thread | None:
    """Start the recorder thread in this process (once); off with CELERY_LIVE_RECORDER=0."""
    global _thread
    if not settings.CELERY_LIVE_RECORDER or (_thread is not None and _thread.is_alive()):
        return _thread
    _thread = threading.Thread(
        target=Recorder().run_forever, args=(_stop,), name="celery-live-recorder", daemon=True
    )
    _thread.start()
    return _thread
