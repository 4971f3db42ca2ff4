"""`/queues/`: every known queue's depth, by priority, and its consumers, live.

The first rendering reads the last samples from Redis (no broker call, no database query);
then the page socket (`?view=queues`, stream/queues.py) swaps in each queue that changes.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.queues import read_samples, sampled_at
from celery_live.runs import history
from celery_live.stream.queues import render_queue_row
from celery_live.web.gate import view_required

#: Sample intervals without a sample after which the page says the sampler has stopped
#: (its lock passes to another recorder within 3).
STALE_AFTER = 10


@require_GET
@view_required
def queues_page(request: HttpRequest) -> HttpResponse:
    # The cursor first: a sample written after it arrives over the socket as well.
    cursor = history.snapshot_cursor()
    client = store.client()
    samples = read_samples(client)
    last = sampled_at(client)
    # The page is live for changes only: say when the sampler itself has stopped.
    quiet = time.time() - last if last is not None else 0.0
    return render(
        request,
        "celery_live/queues.html",
        {
            "cursor": cursor,
            "rows": [render_queue_row(samples[name]) for name in sorted(samples)],
            "sampled_at": last,
            "stale_for": quiet if quiet > STALE_AFTER * conf.QUEUE_SAMPLE_INTERVAL else None,
            "interval": conf.QUEUE_SAMPLE_INTERVAL,
        },
    )
