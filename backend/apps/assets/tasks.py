"""The seed's demo tasks.

Both keep the seed's signatures and return values; the sleep per step is the seed's by
default (2 s, 1 s per iteration) and can be set per call with `delay` so tests and
benchmarks need not sleep. `example_async_task` reports every iteration as progress, and
can be asked to fail at iteration `fail_at` to show what a failure looks like.
"""

from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings

from celery_live.worker.progress import report_progress


class DemoTaskError(RuntimeError):
    """Raised by `example_async_task` when asked to fail (`fail_at`)."""


def _delay_or_default(delay: float | None, default: float) -> float:
    if delay is None:
        return default
    delay = float(delay)
    if delay < 0:
        raise ValueError("delay must be >= 0")
    return delay


@shared_task
def noop() -> None:
    """Does nothing: the worker-overhead benchmark measures Celery around it."""


@shared_task
def add(x: int, y: int = 2) -> int:
    """Add two numbers (its launch form is built from this signature)."""
    return x + y


@shared_task
def test_task(message: str, delay: float | None = None) -> str:
    """Sleep (2 s by default) and return ``"Processed: {message}"``."""
    time.sleep(_delay_or_default(delay, settings.CELERY_LIVE_TEST_TASK_DELAY))
    result = f"Processed: {message}"
    print(f"Task completed: {result}")
    return result


@shared_task
def example_async_task(
    name: str,
    count: int = 1,
    delay: float | None = None,
    fail_at: int | None = None,
) -> dict:
    """Run `count` iterations (1 s each by default), reporting each one's result.

    Returns the seed's dict: ``{"name", "count", "results", "status": "completed"}``.
    """
    pause = _delay_or_default(delay, settings.CELERY_LIVE_EXAMPLE_ITERATION_DELAY)
    results = []
    for i in range(count):
        time.sleep(pause)
        if fail_at is not None and i + 1 == fail_at:
            raise DemoTaskError(f"Failed at iteration {i + 1} of {count} (fail_at={fail_at})")
        result = f"{name} - iteration {i + 1}"
        results.append(result)
        report_progress(i + 1, count, result=result)
    return {"name": name, "count": count, "results": results, "status": "completed"}
