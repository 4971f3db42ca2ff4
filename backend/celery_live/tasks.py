"""celery-live's own periodic work (scheduled by Celery Beat, see settings)."""

from __future__ import annotations

import time

from celery import shared_task

from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.store import runs_key
from celery_live.runs.models import Event, Run


@shared_task(ignore_result=True)
def prune_history(days: float | None = None) -> dict:
    """Delete runs and events older than the retention (CELERY_LIVE_RETENTION_DAYS)."""
    keep_days = conf.RETENTION_DAYS if days is None else days
    cutoff = time.time() - keep_days * 86400
    runs, _ = Run.objects.filter(first_seen__lt=cutoff).delete()
    events, _ = Event.objects.filter(ts__lt=cutoff).delete()
    indexed = store.client().zremrangebyscore(runs_key(), "-inf", cutoff)
    return {"runs": runs, "events": events, "index": indexed}
