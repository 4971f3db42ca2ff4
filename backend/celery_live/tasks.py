"""celery-live's own periodic work (scheduled by Celery Beat, see settings)."""

from __future__ import annotations

import time

from celery import shared_task
from django.db import transaction

from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.store import runs_key
from celery_live.runs.metrics import note_pruned, run_stats
from celery_live.runs.models import Event, Run


@shared_task(ignore_result=True)
def prune_history(days: float | None = None) -> dict:
    """Delete runs and events older than the retention (CELERY_LIVE_RETENTION_DAYS)."""
    keep_days = conf.RETENTION_DAYS if days is None else days
    cutoff = time.time() - keep_days * 86400
    old_runs = Run.objects.filter(first_seen__lt=cutoff)
    with transaction.atomic():
        # What /metrics counted of them stays counted (runs/metrics.py); first, so that with
        # Redis away nothing is deleted (and the next prune tries again).
        note_pruned(store.client(), run_stats(old_runs))
        runs, _ = old_runs.delete()
    events, _ = Event.objects.filter(ts__lt=cutoff).delete()
    indexed = store.client().zremrangebyscore(runs_key(), "-inf", cutoff)
    return {"runs": runs, "events": events, "index": indexed}
