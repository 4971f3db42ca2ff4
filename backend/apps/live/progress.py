"""`report_progress`: the progress call any task can make."""

from __future__ import annotations

from typing import Any

from celery import current_task

from .events import publish


def report_progress(current: int, total: int, result: Any = None) -> None:
    """Report that the running task finished step `current` of `total`.

    Stores ``PROGRESS`` with ``{"current", "total", "result"}`` in the result backend (so
    ``AsyncResult(id).info`` shows it) and publishes a ``task.progress`` event. Outside a
    worker (a task called directly, as `test_celery` without ``--async`` does) it does
    nothing.
    """
    from django.conf import settings

    task = current_task
    request = getattr(task, "request", None)
    if task is None or request is None or not request.id or request.called_directly:
        return
    meta = {"current": int(current), "total": int(total), "result": result}
    if not request.is_eager:
        task.update_state(state="PROGRESS", meta=meta)
    if not settings.CELERY_LIVE_INSTRUMENT:
        return
    publish(
        "task.progress",
        wait=False,
        task_id=request.id,
        name=task.name,
        worker=request.hostname,
        data={**meta, "attempt": int(request.retries or 0)},
    )
