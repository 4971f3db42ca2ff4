"""`report_progress`: the progress call any task can make."""

from __future__ import annotations

import logging
from typing import Any

from celery import current_task

from celery_live.conf import conf
from celery_live.log.publishing import publish
from celery_live.log.vocabulary import EventType, State

logger = logging.getLogger(__name__)

#: Whether this process's last PROGRESS write to the result backend failed (so an outage
#: is logged once, not once per call).
_backend_down = False


def report_progress(current: int, total: int, result: Any = None) -> None:
    """Report that the running task finished step `current` of `total`.

    Stores ``PROGRESS`` with ``{"current", "total", "result"}`` in the result backend (so
    ``AsyncResult(id).info`` shows it) and publishes a ``task.progress`` event. Outside a
    worker (a task called directly, as `test_celery` without ``--async`` does) it does
    nothing. Never raises into the task: a monitor must not fail the work it watches.
    While Redis is away the backend write is skipped with one warning, and the event is
    buffered and published when Redis is back.
    """

    task = current_task
    request = getattr(task, "request", None)
    if task is None or request is None or not request.id or request.called_directly:
        return
    meta = {"current": int(current), "total": int(total), "result": result}
    if not request.is_eager:
        _store_progress(task, meta)
    if not conf.INSTRUMENT:
        return
    publish(
        EventType.TASK_PROGRESS,
        wait=False,
        task_id=request.id,
        name=task.name,
        worker=request.hostname,
        data={**meta, "attempt": int(request.retries or 0)},
    )


def _store_progress(task: Any, meta: dict[str, Any]) -> None:
    """Best effort: `update_state` raises (ConnectionError) while Redis is away."""
    global _backend_down
    try:
        # The plain string: a result backend that pickles would otherwise store the enum.
        task.update_state(state=State.PROGRESS.value, meta=meta)
    except Exception as exc:
        if not _backend_down:
            _backend_down = True
            logger.warning(
                "celery-live: could not store PROGRESS of %s in the result backend (%s: %s); "
                "the task goes on, its progress events are kept; not logged again until it is back",
                task.request.id,
                type(exc).__name__,
                exc,
            )
        return
    if _backend_down:
        _backend_down = False
        logger.warning("celery-live: the result backend takes PROGRESS again")
