"""Exact final states whatever is lost: dead workers' runs become LOST, and runs whose
final event went missing are reconciled with the result backend.

- Workers publish a heartbeat every `CELERY_LIVE_HEARTBEAT_INTERVAL` s (heartbeat.py) and
  note it in a Redis hash. A run that is not final, ran on a worker whose last heartbeat
  is older than `CELERY_LIVE_WORKER_TIMEOUT` s (or that is gone), and has had no event
  for that long, is marked LOST with the reason, and the worker is announced offline.
- A run that is not final and has had no event for `CELERY_LIVE_RECONCILE_AFTER` s is
  checked against the result backend; if Celery recorded an end there, that end is
  published (marked `"reconciled": true`).

Runs once a second in the recorder's loop; a Redis lock makes one process do it at a time.
"""

from __future__ import annotations

import logging
import time

import redis
from celery.result import AsyncResult
from django.conf import settings

from .events import publish, stream_key
from .models import Run
from .state import FINAL_STATES

logger = logging.getLogger(__name__)


def workers_key() -> str:
    return f"{stream_key()}:workers"


class Reaper:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._next_check = 0.0
        self._next_reconcile = 0.0

    def maybe_run(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if now < self._next_check:
            return
        self._next_check = now + 1.0
        if not self.client.set(f"{stream_key()}:reaper-lock", "1", nx=True, px=900):
            return
        self.mark_lost(now)
        if now >= self._next_reconcile:
            self._next_reconcile = now + 5.0
            self.reconcile(now)

    def _once(self, task_id: str, what: str, seconds: int = 120) -> bool:
        """True the first time `what` is done for `task_id` (so replicas don't repeat it)."""
        return bool(self.client.set(f"{stream_key()}:{what}:{task_id}", "1", nx=True, ex=seconds))

    def mark_lost(self, now: float) -> list[str]:
        """Mark runs on dead or silent workers LOST; return their ids."""
        timeout = settings.CELERY_LIVE_WORKER_TIMEOUT
        beats = {name: float(ts) for name, ts in self.client.hgetall(workers_key()).items()}
        silent = {name for name, ts in beats.items() if now - ts > timeout}
        lost = []
        candidates = (
            Run.objects.exclude(state__in=FINAL_STATES)
            .exclude(worker="")
            .filter(last_event_at__lt=now - timeout)
            .only("task_id", "name", "worker")
        )
        for run in candidates:
            if run.worker in beats and run.worker not in silent:
                continue
            last = beats.get(run.worker)
            reason = (
                f"worker {run.worker} stopped responding: no heartbeat for {now - last:.0f} s"
                if last is not None
                else f"worker {run.worker} is gone"
            )
            if self._once(run.task_id, "lost"):
                publish(
                    "task.lost",
                    task_id=run.task_id,
                    name=run.name,
                    worker=run.worker,
                    data={"reason": reason},
                )
                lost.append(run.task_id)
        for name in silent:
            # Kept in the hash (so later reasons still say how long it has been silent),
            # announced once, forgotten after an hour.
            if self._once(f"{name}:{beats[name]}", "offline", seconds=3600):
                publish(
                    "worker.offline",
                    worker=name,
                    data={"reason": f"no heartbeat for {now - beats[name]:.0f} s"},
                )
            if now - beats[name] > 3600:
                self.client.hdel(workers_key(), name)
        return lost

    def reconcile(self, now: float, limit: int = 100) -> list[str]:
        """Publish the end Celery recorded for runs whose final event never arrived."""
        quiet_since = now - settings.CELERY_LIVE_RECONCILE_AFTER
        stale = (
            Run.objects.exclude(state__in=FINAL_STATES)
            .filter(last_event_at__lt=quiet_since)
            .order_by("last_event_at")
            .only("task_id", "name", "worker")[:limit]
        )
        fixed = []
        for run in stale:
            result = AsyncResult(run.task_id)
            state = result.state
            if state not in ("SUCCESS", "FAILURE", "REVOKED") or not self._once(run.task_id, "reconciled"):
                continue
            common = {"task_id": run.task_id, "name": run.name, "worker": run.worker or None}
            if state == "SUCCESS":
                publish("task.succeeded", **common, data={"result": result.result, "reconciled": True})
            elif state == "FAILURE":
                error = result.result
                publish(
                    "task.failed",
                    **common,
                    data={
                        "exception": f"{type(error).__name__}: {error}",
                        "exc_type": type(error).__name__,
                        "traceback": result.traceback,
                        "reconciled": True,
                    },
                )
            else:
                publish("task.revoked", **common, data={"reconciled": True})
            fixed.append(run.task_id)
        return fixed
