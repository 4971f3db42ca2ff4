"""Controlling workers: grow or shrink a pool, start or stop consuming from a queue, change a
task's rate limit, shut a worker down.

One form per action validates its input for the page and the JSON API alike, against the
worker's last heartbeat where that tells more than the input alone (a pool shrunk to
nothing, a queue it does not consume, a task it does not know). Each command goes to the one
worker named (Celery's broadcast with a `destination`), waits up to `REPLY_TIMEOUT` s for
its reply, and is recorded as a `worker.control` event saying who sent it and what the
worker answered ("pool_grow sent → acknowledged by celery@a"). What the worker then does
shows in its next heartbeats (its pool size, its queues).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from celery import current_app as app
from django import forms
from django.core.validators import RegexValidator
from kombu.exceptions import OperationalError

from celery_live.control.runs import ControlError
from celery_live.log import store
from celery_live.log.publishing import publish
from celery_live.log.vocabulary import EventType
from celery_live.log.workers import WorkerRecord, read_workers
from celery_live.validation import flag_bad_values

#: Seconds a command waits for the worker's reply.
REPLY_TIMEOUT = 1.0
#: The most processes one pool_grow or pool_shrink may add or remove.
MAX_POOL_STEP = 64


class WorkerAction(StrEnum):
    """The commands the dashboard sends a worker: Celery's remote control commands' names."""

    POOL_GROW = "pool_grow"
    POOL_SHRINK = "pool_shrink"
    ADD_CONSUMER = "add_consumer"
    CANCEL_CONSUMER = "cancel_consumer"
    RATE_LIMIT = "rate_limit"
    SHUTDOWN = "shutdown"


class ControlStatus(StrEnum):
    """What came of a command."""

    #: The worker answered that it did it.
    ACKNOWLEDGED = "acknowledged"
    #: The worker answered with an error (a pool it cannot shrink, an unknown task…).
    REFUSED = "refused"
    #: No answer within `REPLY_TIMEOUT`.
    NO_REPLY = "no reply"
    #: Sent without waiting: a worker does not answer a shutdown (its `worker.offline` does).
    SENT = "sent"


class ActionForm(forms.Form):
    """The input of one action on one worker instance (`worker`: its last heartbeat)."""

    action: WorkerAction

    def __init__(self, data: Any = None, worker: WorkerRecord | None = None) -> None:
        super().__init__(data)
        self.worker = worker

    def full_clean(self) -> None:
        """Django's validation; then a value of the wrong type (JSON can send a list, an
        object or a number for text) or a lone surrogate gets that error alone."""
        super().full_clean()
        if self.is_bound:
            flag_bad_values(self)

    @property
    def hostname(self) -> str:
        return self.worker.hostname if self.worker is not None else "the worker"

    def arguments(self) -> dict[str, Any]:
        """The remote control command's arguments, from the cleaned data."""
        return {}


class PoolGrowForm(ActionForm):
    action = WorkerAction.POOL_GROW
    n = forms.IntegerField(label="Processes", min_value=1, max_value=MAX_POOL_STEP, initial=1)

    def arguments(self) -> dict[str, Any]:
        return {"n": self.cleaned_data["n"]}


class PoolShrinkForm(PoolGrowForm):
    action = WorkerAction.POOL_SHRINK

    def clean_n(self) -> int:
        n = self.cleaned_data["n"]
        size = self.worker.concurrency if self.worker is not None else None
        if size is not None and n >= size:
            raise forms.ValidationError(
                f"{self.hostname} has {size} process{'es' if size != 1 else ''}: "
                f"shrinking by {n} would leave none."
            )
        return n


#: A queue's name: Celery takes nearly any, but never one with blanks in it.
QUEUE_NAME = RegexValidator(r"^\S+\Z", "A queue's name, without spaces.")


class AddConsumerForm(ActionForm):
    action = WorkerAction.ADD_CONSUMER
    queue = forms.CharField(label="Queue", max_length=255, validators=[QUEUE_NAME])

    def arguments(self) -> dict[str, Any]:
        return {"queue": self.cleaned_data["queue"]}


class CancelConsumerForm(AddConsumerForm):
    action = WorkerAction.CANCEL_CONSUMER

    def clean_queue(self) -> str:
        queue = self.cleaned_data["queue"]
        if self.worker is not None and queue not in self.worker.queues:
            consumed = ", ".join(self.worker.queues) or "none"
            raise forms.ValidationError(
                f"{self.hostname} does not consume from {queue} (it consumes {consumed})."
            )
        return queue


#: Celery's rate limits: a number of tasks a second, or per second, minute or hour.
RATE = RegexValidator(
    r"^\d+(\.\d+)?(/[smh])?\Z",
    "A rate such as 10/s, 100/m or 1000/h (a number alone: per second; 0: no limit).",
)


class RateLimitForm(ActionForm):
    action = WorkerAction.RATE_LIMIT
    task = forms.CharField(label="Task", max_length=255)
    rate = forms.CharField(label="Rate", max_length=32, validators=[RATE])

    def clean_task(self) -> str:
        task = self.cleaned_data["task"]
        known = self.worker.registered if self.worker is not None else None
        if known is not None and task not in known:
            raise forms.ValidationError(f"{self.hostname} does not know the task {task}.")
        return task

    def arguments(self) -> dict[str, Any]:
        return {"task_name": self.cleaned_data["task"], "rate_limit": self.cleaned_data["rate"]}


class ShutdownForm(ActionForm):
    action = WorkerAction.SHUTDOWN


#: Each action's form.
FORMS: dict[WorkerAction, type[ActionForm]] = {
    form.action: form
    for form in (
        PoolGrowForm,
        PoolShrinkForm,
        AddConsumerForm,
        CancelConsumerForm,
        RateLimitForm,
        ShutdownForm,
    )
}


def find_worker(hostname: str, now: float | None = None) -> WorkerRecord:
    """The newest instance of `hostname`, online; ControlError 404 if the registry has none,
    409 if it is offline (nothing would answer)."""
    now = time.time() if now is None else now
    instances = [record for record in read_workers(store.client(), now) if record.hostname == hostname]
    if not instances:
        raise ControlError(f"unknown worker {hostname!r}", status=404)
    newest = instances[0]
    if not newest.is_online(now):
        why = f" ({newest.offline_reason})" if newest.offline_reason else ""
        raise ControlError(f"worker {hostname} is offline{why}", status=409)
    return newest


def form_class(action: str) -> type[ActionForm]:
    """The form of `action`; ControlError 404 for an action there is none of."""
    try:
        return FORMS[WorkerAction(action)]
    except ValueError:
        raise ControlError(
            f"unknown action {action!r}: one of {', '.join(WorkerAction)}", status=404
        ) from None


@dataclass(frozen=True)
class Outcome:
    """A command sent, and what came of it."""

    hostname: str
    action: WorkerAction
    arguments: dict[str, Any]
    status: ControlStatus
    message: str
    by: str = ""
    acknowledged_by: list[str] = field(default_factory=list)
    #: Each answering worker's reply, as Celery gives it (`{"ok": …}` or `{"error": …}`).
    replies: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "action": str(self.action),
            "arguments": self.arguments,
            "status": str(self.status),
            "message": self.message,
            "by": self.by,
            "acknowledged_by": self.acknowledged_by,
            "replies": self.replies,
        }


def _outcome(form: ActionForm, replies: dict[str, Any], by: str) -> Outcome:
    action = form.action
    acknowledged = sorted(
        name for name, reply in replies.items() if isinstance(reply, dict) and "ok" in reply
    )
    refused = {name: reply for name, reply in replies.items() if name not in acknowledged}
    if action == WorkerAction.SHUTDOWN:
        status, what = ControlStatus.SENT, "a worker does not answer a shutdown: it goes offline"
    elif refused:
        status = ControlStatus.REFUSED
        what = "; ".join(
            f"{name} refused: {reply.get('error') if isinstance(reply, dict) else reply}"
            for name, reply in sorted(refused.items())
        )
    elif acknowledged:
        status, what = ControlStatus.ACKNOWLEDGED, f"acknowledged by {', '.join(acknowledged)}"
    else:
        status, what = ControlStatus.NO_REPLY, "no reply"
    return Outcome(
        hostname=form.hostname,
        action=action,
        arguments=form.arguments(),
        status=status,
        message=f"{action} sent → {what}",
        by=by,
        acknowledged_by=acknowledged,
        replies=replies,
    )


def send(form: ActionForm, by: str = "") -> Outcome:
    """Send a valid form's command to its worker, wait for the reply (not for a shutdown),
    and record it as a `worker.control` event; ControlError 503 if the broker is away."""
    if not form.is_valid() or form.worker is None:
        raise ValueError("only a valid form bound to a worker has a command to send")
    wait = form.action != WorkerAction.SHUTDOWN
    try:
        answers = app.control.broadcast(
            str(form.action),
            arguments=form.arguments(),
            destination=[form.worker.hostname],
            reply=wait,
            timeout=REPLY_TIMEOUT,
        )
    except OperationalError as exc:
        raise ControlError(f"could not reach the broker: {exc}", status=503) from exc
    replies = {name: reply for answer in answers or [] for name, reply in answer.items()}
    outcome = _outcome(form, replies, by)
    publish(
        EventType.WORKER_CONTROL,
        worker=form.worker.hostname,
        data={**outcome.as_dict(), "instance": form.worker.instance},
    )
    return outcome
