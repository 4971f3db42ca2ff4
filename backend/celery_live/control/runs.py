"""Controlling runs: revoke a queued task, terminate a running one, re-run a finished one.

Each request is recorded as a `task.log` event on the run; what Celery then does arrives
as its own events (`task.revoked` from the worker, `task.sent` of the new run).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from celery import current_app as app
from celery.result import AsyncResult
from celery.utils import uuid
from django import forms
from kombu.exceptions import OperationalError

from celery_live import launchable
from celery_live.control import signature
from celery_live.control.launch import LaunchForm
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


def rerun_launchable(run: RunState) -> launchable.Launchable:
    """The declared launchable `run` is a run of; ControlError (400) if none is.

    Only a task the host declared launchable: a re-run is a launch, and the dashboard must
    not become a way to send any task the workers know.
    """
    item = launchable.kind_of(run.name) if run.name else None
    if item is None:
        raise ControlError(
            f"cannot re-run {run.name!r}: not a launchable task here ({launchable.SETTING})", status=400
        )
    return item


def rerun_initial(run: RunState) -> dict[str, Any]:
    """The run's arguments as its kind's form's values: where a re-run with changes starts."""
    return signature.initial_from_run(rerun_launchable(run), run.args or [], run.kwargs or {})


def rerun_form(run: RunState, changes: Mapping[str, Any] | None = None, keep: bool = True) -> LaunchForm:
    """A bound form re-running `run` with `changes` (the fields to change; the others keep
    the run's values), validated as a launch of its kind is. Without `keep`, `changes` are
    the whole form (the page's, which sends every field: an unticked box is absent)."""
    item = rerun_launchable(run)
    if not keep:
        return LaunchForm(changes, rerun_kind=item.kind)
    fields = signature.form_class_of(item)().fields
    # The form's data are what a request would send: a JSON field takes its JSON text.
    data = {
        name: fields[name].prepare_value(value) if isinstance(fields[name], forms.JSONField) else value
        for name, value in rerun_initial(run).items()
        if name in fields
    }
    return LaunchForm({**data, **(changes or {})}, rerun_kind=item.kind)


def rerun(task_id: str, by: str = "", form: LaunchForm | None = None) -> AsyncResult:
    """Send the same task again, linked to the original: with the same arguments, or with
    those of a valid `rerun_form` of it."""
    run = find(task_id)
    rerun_launchable(run)
    if form is None:
        args, kwargs = run.args, run.kwargs
    else:
        args, kwargs = (), form.task_call()[1]
    new_id = uuid()
    try:
        result = app.send_task(
            run.name, args=args, kwargs=kwargs, task_id=new_id, headers={RERUN_HEADER: task_id}
        )
    except OperationalError as exc:
        publish(
            EventType.TASK_REJECTED,
            task_id=new_id,
            name=run.name,
            data={"reason": f"could not reach the broker: {exc}", "rerun_of": task_id},
        )
        raise ControlError(f"could not reach the broker: {exc}", status=503) from exc
    edited = " with changes" if form is not None else ""
    publish(
        EventType.TASK_LOG,
        task_id=task_id,
        name=run.name,
        data={
            "message": f"re-run{edited} as {new_id}" + (f" by {by}" if by else ""),
            "control": "rerun",
            "rerun_id": new_id,
            "by": by,
        },
    )
    return result
