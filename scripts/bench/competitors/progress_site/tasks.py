"""The task whose progress the celery-progress bar shows."""

from __future__ import annotations

import os
import time

import redis
from celery import shared_task
from celery_progress.backend import ProgressRecorder


@shared_task(bind=True, name="progress_site.count_up")
def count_up(self, total: int, delay: float) -> str:
    """Report `total` iterations, `delay` seconds apart; each description carries its time.time().

    When done, the times of all set_progress() calls go to the Redis list
    `bench:progress:<task id>` (after the loop, so as not to slow it), so that the benchmark
    knows the iterations the page never showed too.
    """
    recorder = ProgressRecorder(self)
    times: list[float] = []
    for i in range(1, total + 1):
        time.sleep(delay)
        now = time.time()
        recorder.set_progress(i, total, description=f"t={now:.6f}")
        times.append(now)
    client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    client.rpush(f"bench:progress:{self.request.id}", *(f"{t:.6f}" for t in times))
    client.close()
    return "done"
