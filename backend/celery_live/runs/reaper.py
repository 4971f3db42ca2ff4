"""Exact final states whatever is lost: dead workers' runs become LOST, and runs whose
final event went missing are reconciled with the result backend.

- Workers publish a heartbeat every `CELERY_LIVE_HEARTBEAT_INTERVAL` s naming their
  *instance* (heartbeat.py, workers.py). A run that is not final is marked LOST, with the
  reason, when the instance that received it is gone: at once when a newer instance of
  the same hostname beats (a worker killed and restarted within the timeout), or when its
  hostname has been silent for `CELERY_LIVE_WORKER_TIMEOUT` s and the run has had no
  event for that long. The reason says when the
  broker may deliver the task again (Redis: after its visibility timeout).
- A worker instance silent for the timeout, or replaced by a newer instance of its
  hostname, is announced offline once (`worker.offline`; a worker that stops gracefully
  says so itself), and forgotten `FORGET_AFTER` s later (log/workers.py).
- A run that is not final and has had no event for `CELERY_LIVE_RECONCILE_AFTER` s is
  checked against the result backend; if Celery recorded an end there, and the run's own
  events hold none, that end is published (marked `"reconciled": true`).

Runs once a second in the recorder's loop; a Redis lock makes one process do it at a time.
One run that cannot be handled is logged and skipped: it never stops the others.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from urllib.parse import urlparse

import redis
from celery import current_app
from celery.result import AsyncResult
from django.utils import timezone

from celery_live.conf import conf
from celery_live.log.publishing import publish
from celery_live.log.store import reaper_lock_key, reaper_mark_key, worker_instances_key, workers_key
from celery_live.log.vocabulary import FINAL_STATES, EventType, State
from celery_live.log.workers import (
    FORGET_AFTER,
    Beat,
    WorkerRecord,
    bridge_watched,
    forget_stale,
    judged_beats,
    mark_offline,
    parse_registry,
    publish_offline,
    read_beats,
    why_gone,
)
from celery_live.runs import history
from celery_live.runs.models import Run

logger = logging.getLogger(__name__)

#: Brokers that hand an unacknowledged message out again only after a visibility timeout.
VISIBILITY_TIMEOUT_BROKERS = frozenset({"redis", "rediss", "sentinel", "sqs"})
DEFAULT_VISIBILITY_TIMEOUT = 3600  # kombu's Redis transport default, seconds


def redelivery(run: Run) -> tuple[str, float | None]:
    """What the broker will do with a lost run's message: a sentence, and when (or None).

    A task is acknowledged when it starts (Celery's default), so only a run that was
    received but not started (prefetched), or one of an `acks_late` task, is still
    unacknowledged: a Redis broker hands it out again after its visibility timeout,
    counted from the delivery; RabbitMQ as soon as it sees the connection gone.
    """
    app = current_app
    task = app.tasks.get(run.name) if run.name else None
    acks_late = bool(getattr(task, "acks_late", None) or app.conf.task_acks_late)
    if run.state != State.RECEIVED and not acks_late:
        return "", None
    scheme = urlparse(app.conf.broker_url or "").scheme.split("+")[-1]
    if scheme in VISIBILITY_TIMEOUT_BROKERS:
        options = app.conf.broker_transport_options or {}
        timeout = float(options.get("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT))
        at = (run.received_at or run.last_event_at) + timeout
        when = timezone.localtime(datetime.fromtimestamp(at, tz=UTC)).strftime("%H:%M %Z")
        return f"; may be redelivered at {when} by the broker's visibility timeout ({timeout:.0f} s)", at
    return "; the broker delivers it again once it sees the worker's connection gone", None


class Reaper:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._next_check = 0.0
        self._next_reconcile = 0.0
        self._next_forget = 0.0

    def maybe_run(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if now < self._next_check:
            return
        self._next_check = now + 1.0
        if not self.client.set(reaper_lock_key(), "1", nx=True, px=900):
            return
        self.mark_lost(now)
        if now >= self._next_reconcile:
            self._next_reconcile = now + 5.0
            self.reconcile(now)

    def _once(self, task_id: str, what: str, seconds: int = 120) -> bool:
        """True the first time `what` is done for `task_id` (so replicas don't repeat it)."""
        return bool(self.client.set(reaper_mark_key(what, task_id), "1", nx=True, ex=seconds))

    def mark_lost(self, now: float) -> list[str]:
        """Mark runs whose worker process is gone LOST; return their ids."""
        timeout = conf.WORKER_TIMEOUT
        watched = bridge_watched(self.client, now)
        beats = judged_beats(read_beats(self.client), watched, now)
        candidates = (
            Run.objects.exclude(state__in=FINAL_STATES)
            .exclude(worker="")
            .only("task_id", "name", "state", "worker", "worker_instance", "received_at", "last_event_at")
        )
        lost = []
        for run in candidates:
            gone = why_gone(run.worker, run.worker_instance or None, beats, now)
            if gone is None or (not gone.restarted and run.last_event_at >= now - timeout):
                continue  # alive, or its events still arrive: give it the timeout
            try:
                if self._mark_one_lost(run, gone.reason):
                    lost.append(run.task_id)
            except Exception:
                logger.exception("celery-live reaper: could not mark run %s lost; going on", run.task_id)
        self.announce_offline(beats, now, watched)
        return lost

    def announce_offline(self, beats: dict[str, Beat], now: float, watched: bool = True) -> None:
        """Announce offline, once, each worker instance silent for the timeout or replaced
        by a newer instance of its hostname (killed and restarted within the timeout);
        bridged instances only while a bridge watched (`bridge_watched`)."""
        records = [
            record
            for record in parse_registry(self.client.hgetall(worker_instances_key()), None, now)
            if watched or not record.bridged
        ]
        for record in records:
            reason = self._offline_reason(record, records, now)
            if reason and self._once(record.instance, "offline", seconds=int(FORGET_AFTER)):
                mark_offline(self.client, record.instance, reason, now)
                publish_offline(record.hostname, record.instance, reason)
        known = {record.instance for record in records}
        for name, beat in beats.items():
            if not beat.is_silent(now):
                continue
            # A hostname whose instance has no record (a worker of an older version): kept
            # in the hash (so later reasons still say how long it has been silent),
            # announced once, forgotten after an hour.
            if beat.instance not in known and self._once(
                f"{name}:{beat.ts}", "offline", seconds=int(FORGET_AFTER)
            ):
                publish_offline(name, beat.instance, f"no heartbeat for {now - beat.ts:.0f} s")
            if now - beat.ts > FORGET_AFTER:
                self.client.hdel(workers_key(), name)
        if now >= self._next_forget:
            self._next_forget = now + 60.0
            forget_stale(self.client, now)

    @staticmethod
    def _offline_reason(record: WorkerRecord, records: list[WorkerRecord], now: float) -> str | None:
        """Why an instance the registry has online is not (None: it is, or it is known
        to be offline already)."""
        if record.offline_at is not None:
            return None
        newer = [
            other
            for other in records
            if other.hostname == record.hostname
            and (other.started or 0.0) > (record.started or 0.0)
            and other.is_online(now)
        ]
        if newer:
            return f"restarted as pid {newer[0].pid}"
        if not record.is_online(now):
            return f"no heartbeat for {now - record.ts:.0f} s"
        return None

    def _mark_one_lost(self, run: Run, reason: str) -> bool:
        if not self._once(run.task_id, f"lost:{run.worker_instance}"):
            return False
        note, redelivery_at = redelivery(run)
        publish(
            EventType.TASK_LOST,
            task_id=run.task_id,
            name=run.name,
            worker=run.worker,
            data={
                "reason": reason + note,
                "instance": run.worker_instance or None,
                "redelivery_at": redelivery_at,
            },
        )
        return True

    def reconcile(self, now: float, limit: int = 100) -> list[str]:
        """Publish the end Celery recorded for runs whose final event never arrived."""
        quiet_since = now - conf.RECONCILE_AFTER
        stale = (
            Run.objects.exclude(state__in=FINAL_STATES)
            .filter(last_event_at__lt=quiet_since)
            .order_by("last_event_at")
            .only("task_id", "name", "worker")[:limit]
        )
        fixed = []
        for run in stale:
            try:
                if self._reconcile_one(run):
                    fixed.append(run.task_id)
            except Exception:
                logger.exception("celery-live reaper: could not reconcile run %s; going on", run.task_id)
        return fixed

    def _reconcile_one(self, run: Run) -> bool:
        result = AsyncResult(run.task_id)
        state = result.state
        if state not in (State.SUCCESS, State.FAILURE, State.REVOKED):
            return False
        # The database row may lag behind the log (the recorder is behind, or restarting):
        # a run whose own events already end must not get a second final event.
        logged = history.get_run(run.task_id)
        if (logged is not None and logged.is_final) or not self._once(run.task_id, "reconciled"):
            return False
        common = {"task_id": run.task_id, "name": run.name, "worker": run.worker or None}
        if state == State.SUCCESS:
            publish(EventType.TASK_SUCCEEDED, **common, data={"result": result.result, "reconciled": True})
        elif state == State.FAILURE:
            error = result.result
            publish(
                EventType.TASK_FAILED,
                **common,
                data={
                    "exception": f"{type(error).__name__}: {error}",
                    "exc_type": type(error).__name__,
                    "traceback": result.traceback,
                    "reconciled": True,
                },
            )
        else:
            publish(EventType.TASK_REVOKED, **common, data={"reconciled": True})
        return True
