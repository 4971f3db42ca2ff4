"""Controlling runs: revoke a queued task, terminate a running one, re-run a finished one.

Each request is recorded as a `task.log` event on the run; what Celery then does arrives
as its own events (`task.revoked` from the worker, `task.sent` of the new run).
"""

from __future__ import annotations

import time

from celery import current_app as app
from celery.result import AsyncResult
from celery.utils import uuid
from kombu.exceptions import OperationalError

from celery_live import launchable
from celery_live.log import store
from celery_live.log.events import RERUN_HEADER
from celery_live.log.publishing import publish
from celery_live.log.vocabulary import EventType, State
from celery_live.log.workers import live_worker_count, read_beats, why_gone
from celery_live.runs import history
from celery_live.runs.state import RunState


class ControlError(Exception):
    """A control request that cannot be carried out; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def find(task_id: str) -> RunState:
    """The run `task_id` names; ControlError (404) if the log never saw it."""
    # A NUL names no run, and PostgreSQL refuses it in a query (a 500, not a 404).
    run = None if "\x00" in task_id else history.get_run(task_id)
    if run is None:
        raise ControlError(f"unknown task id {task_id!r}", status=404)
    return run


def revoke(task_id: str, terminate: bool = False, by: str = "") -> RunState:
    """Revoke a run that has not ended; with `terminate`, kill it if it is running.

    Waits (up to 1 s) for the workers to confirm. A worker discards a revoked task that is
    still queued or reserved only when it reaches it, but it marks the result REVOKED at
    once; that is published straight away, so the run does not look queued meanwhile.
    """
    run = find(task_id)
    if run.is_final:
        raise ControlError(f"the task already ended ({run.state}); nothing to revoke")
    now = time.time()
    beats = read_beats(store.client())
    try:
        replies = app.control.revoke(
            task_id,
            terminate=terminate,
            signal="SIGTERM",
            reply=True,
            timeout=1.0,
            limit=live_worker_count(beats, now) or None,
        )
    except OperationalError as exc:
        raise ControlError(f"could not reach the broker: {exc}", status=503) from exc
    confirmed = sorted(name for reply in replies or [] for name in reply)
    what = "terminate" if terminate else "revoke"
    message = f"{what} requested" + (f" by {by}" if by else "")
    message += f"; confirmed by {', '.join(confirmed)}" if confirmed else "; no worker answered yet"
    publish(
        EventType.TASK_LOG,
        task_id=task_id,
        name=run.name,
        data={"message": message, "control": what, "confirmed_by": confirmed, "by": by},
    )
    gone = why_gone(run.worker, run.worker_instance, beats, now)
    if run.worker and gone is not None:
        # No process holds it any more, so none will say "revoked": say it here. The
        # revocation above still makes live workers discard it if the broker redelivers it.
        publish(
            EventType.TASK_REVOKED,
            task_id=task_id,
            name=run.name,
            worker=run.worker,
            data={"reason": f"{what} requested; {gone.reason}", "confirmed_by": confirmed},
        )
    elif not terminate and AsyncResult(task_id).state == State.REVOKED:
        publish(
            EventType.TASK_REVOKED,
            task_id=task_id,
            name=run.name,
            data={"reason": "revoked before it ran", "confirmed_by": confirmed},
        )
    return run


def rerun(task_id: str, by: str = "") -> AsyncResult:
    """Send the same task with the same arguments again, linked to the original.

    Only a task the host declared launchable: a re-run is a launch, and the dashboard must
    not become a way to send any task the workers know.
    """
    run = find(task_id)
    if not run.name or run.name not in launchable.declared_task_names():
        raise ControlError(
            f"cannot re-run {run.name!r}: not a launchable task here ({launchable.SETTING})", status=400
        )
    new_id = uuid()
    try:
        result = app.send_task(
            run.name, args=run.args, kwargs=run.kwargs, task_id=new_id, headers={RERUN_HEADER: task_id}
        )
    except OperationalError as exc:
        publish(
            EventType.TASK_REJECTED,
            task_id=new_id,
            name=run.name,
            data={"reason": f"could not reach the broker: {exc}", "rerun_of": task_id},
        )
        raise ControlError(f"could not reach the broker: {exc}", status=503) from exc
    publish(
        EventType.TASK_LOG,
        task_id=task_id,
        name=run.name,
        data={
            "message": f"re-run as {new_id}" + (f" by {by}" if by else ""),
            "control": "rerun",
            "rerun_id": new_id,
            "by": by,
        },
    )
    return result
