"""The Celery app Flower watches in the competitors benchmark.

One task, `flower_app.nap`, that sleeps a little. The broker is the benchmark's private
Redis (BENCH_REDIS_URL); no result backend, since Flower learns results from task events.
Run from this directory: `celery -A flower_app worker -E` and `celery -A flower_app flower`.
"""

from __future__ import annotations

import os
import time

from celery import Celery

app = Celery("flower_app", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(
    worker_send_task_events=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="flower_app.nap")
def nap(seconds: float) -> float:
    """Sleep `seconds` and return them."""
    time.sleep(seconds)
    return seconds
