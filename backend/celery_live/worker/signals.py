"""Celery signals -> celery-live events.

Where each handler runs (prefork pool; docs/architecture.md has the whole path):
- `before_task_publish`: whatever process sends the task (web, CLI, a worker retrying).
  Before, not after: once the broker has the message a worker may receive it at once,
  and its `task.received` must not reach the log ahead of `task.sent`.
- `task_received`, `task_revoked`, `task_rejected`, `task_unknown`, `worker_ready`,
  `worker_shutdown`: the worker's main process.
- `task_prerun`, `task_success`, `task_failure`, `task_retry`: the pool child (the parent
  sends `task_failure` itself when a child dies or hits the hard time limit).

Every handler publishes one event and never raises into Celery. Events from a worker
(received, started, succeeded, failed, retried; and progress) do not wait for Redis'
answer (`wait=False`): one process's events keep their order on its one connection, and
`received` is written to Redis' socket before the task is handed to a pool process, so
Redis (which serves ready connections first come, first served) logs it first. Should
two ever swap, the run's state does not go back: states only move forward (state.py).
Measured with a no-op task: waiting for `received` cost the worker 8 % of its throughput.
`sent` waits: it must be in the log before any worker can receive the task.

Canvas relations come from the message (protocol 2): `parent_id`, `root_id` and `group`
headers ride on `task.sent`. A chord's callback is sent only once its header has
succeeded, so each header task's message carries it (the `chord` option); the first
header message a process sends announces the callback (`task.waiting`), so its run exists
while it waits. When a header task fails, Celery stores a ChordError for the callback in
the result backend and never sends it: no signal fires for it anywhere, so the backend's
`chord_error_from_stack` (every backend's one way to fail a callback) is wrapped to
publish the callback's `task.failed` where it happens (the worker that ran the header
task ending the chord). The reaper's reconciliation with the result backend remains the
backstop.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback as traceback_module
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from celery import current_app, group, signals
from celery.backends.base import Backend
from celery.canvas import Signature, maybe_signature

from celery_live.log.events import RERUN_HEADER
from celery_live.log.publishing import get_publisher, publish
from celery_live.log.vocabulary import EventType
from celery_live.log.workers import current_instance, publish_offline

logger = logging.getLogger(__name__)

#: Chord callbacks this process has announced (`task.waiting`), newest last: a chord's
#: header tasks are usually all sent by one process, one after another.
_announced: OrderedDict[str, None] = OrderedDict()
_ANNOUNCED_MAX = 1000


def _attempt(request: Any) -> int:
    """The attempt number (Celery's `retries`) of a request, a context or a task request."""
    retries = getattr(request, "retries", None)
    if retries is None:
        retries = (getattr(request, "request_dict", None) or {}).get("retries", 0)
    return int(retries or 0)


def _task_request(sender: Any) -> Any:
    return getattr(sender, "request", None)


@signals.before_task_publish.connect(dispatch_uid="celery_live.sent")
def on_before_task_publish(
    sender: str | None = None,
    body: Any = None,
    headers: dict | None = None,
    routing_key: str | None = None,
    exchange: str | None = None,
    **kwargs: Any,
) -> None:
    headers = headers or {}
    task_id = headers.get("id")
    if not task_id:  # protocol 1 message: nothing we can follow
        return
    args, task_kwargs, embed = [], {}, {}
    if isinstance(body, (list, tuple)) and len(body) >= 2:
        args, task_kwargs = body[0], body[1]
        embed = body[2] if len(body) >= 3 and isinstance(body[2], dict) else {}
    if embed.get("chord") and not headers.get("retries"):
        announce_chord_callback(embed["chord"], headers)
    publish(
        EventType.TASK_SENT,
        task_id=task_id,
        name=headers.get("task") or sender,
        data={
            "args": args,
            "kwargs": task_kwargs,
            "queue": routing_key or exchange or None,
            "eta": headers.get("eta"),
            "attempt": int(headers.get("retries") or 0),
            "parent_id": headers.get("parent_id"),
            "root_id": headers.get("root_id"),
            "group_id": headers.get("group"),
            "rerun_of": headers.get(RERUN_HEADER),
        },
    )


def _callback_tasks(callback: Any) -> Iterator[Signature]:
    """The tasks a chord callback stands for: itself, or each task of a group callback."""
    signature = maybe_signature(callback, app=current_app)
    if isinstance(signature, group):
        for task in signature.tasks:
            yield from _callback_tasks(task)
    elif signature is not None and signature.id:
        yield signature


def announce_chord_callback(callback: Any, headers: dict) -> None:
    """Publish `task.waiting` for a chord's callback (once per process), from a header
    task's message: Celery sends the callback only when the whole header has succeeded."""
    try:
        tasks = list(_callback_tasks(callback))
    except Exception:  # a callback this process cannot read must not stop the send
        logger.exception("celery-live: could not read the chord callback of %s", headers.get("id"))
        return
    group_id, root_id = headers.get("group"), headers.get("root_id")
    for task in tasks:
        if task.id in _announced:
            continue
        _announced[task.id] = None
        if len(_announced) > _ANNOUNCED_MAX:
            _announced.popitem(last=False)
        publish(
            EventType.TASK_WAITING,
            wait=False,  # the header task's `task.sent` right after it waits for both
            task_id=task.id,
            name=task.task,
            data={
                "args": list(task.args or ()),
                "kwargs": dict(task.kwargs or {}),
                "queue": task.options.get("queue"),
                # A header task sent by no task is its own root (Celery's default): then
                # the callback's root is not known until Celery sends it.
                "root_id": root_id if root_id != headers.get("id") else None,
                "group_id": task.options.get("group_id") or group_id,
                "waiting_for": f"its chord header (group {group_id})" if group_id else "its chord header",
            },
        )


def publish_chord_failure(callback: Any, exc: BaseException | None, traceback: str | None) -> None:
    """Publish `task.failed` for each run of a chord callback Celery has failed."""
    try:
        tasks = list(_callback_tasks(callback))
    except Exception:
        logger.exception("celery-live: could not read a failed chord's callback")
        return
    for task in tasks:
        publish(
            EventType.TASK_FAILED,
            wait=False,
            task_id=task.id,
            name=task.task,
            data={
                "exception": f"{type(exc).__name__}: {exc}" if exc is not None else None,
                "exc_type": type(exc).__name__ if exc is not None else None,
                "traceback": traceback,
            },
        )


def _publishing_chord_errors(chord_error_from_stack: Callable[..., Any]) -> Callable[..., Any]:
    """`Backend.chord_error_from_stack`, then the callback's `task.failed` (whatever it did)."""

    @functools.wraps(chord_error_from_stack)
    def wrapper(self: Backend, callback: Any, exc: BaseException | None = None) -> Any:
        exc = sys.exc_info()[1] if exc is None else exc
        info = None
        try:
            info = chord_error_from_stack(self, callback, exc)
            return info
        finally:
            publish_chord_failure(callback, exc, getattr(info, "traceback", None))

    wrapper.celery_live = True  # type: ignore[attr-defined]
    return wrapper


if not getattr(Backend.chord_error_from_stack, "celery_live", False):
    Backend.chord_error_from_stack = _publishing_chord_errors(Backend.chord_error_from_stack)


def publish_attempt(
    type: EventType, request: Any, task_id: str | None, name: str | None, **data: Any
) -> None:
    """An event of the attempt `request` describes, from the worker running it (without
    waiting for Redis: the task must not wait for its monitor)."""
    publish(
        type,
        wait=False,
        task_id=task_id,
        name=name,
        worker=getattr(request, "hostname", None),
        data={**data, "attempt": _attempt(request)},
    )


@signals.task_received.connect(dispatch_uid="celery_live.received")
def on_task_received(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    delivery = getattr(request, "delivery_info", None) or {}
    publish_attempt(
        EventType.TASK_RECEIVED,
        request,
        request.id,
        request.name,
        args=list(getattr(request, "args", []) or []),
        kwargs=dict(getattr(request, "kwargs", {}) or {}),
        queue=delivery.get("routing_key"),
        redelivered=bool(delivery.get("redelivered")),
        # Which process of this worker holds the task: a restart under the same hostname
        # must not pass for it (log/workers.py).
        instance=current_instance(),
    )


@signals.task_prerun.connect(dispatch_uid="celery_live.started")
def on_task_prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    publish_attempt(EventType.TASK_STARTED, _task_request(task), task_id, getattr(task, "name", None))


@signals.task_success.connect(dispatch_uid="celery_live.succeeded")
def on_task_success(
    sender: Any = None, result: Any = None, runtime: float | None = None, **kwargs: Any
) -> None:
    request = _task_request(sender)
    publish_attempt(
        EventType.TASK_SUCCEEDED, request, request.id, sender.name, result=result, runtime=runtime
    )


@signals.task_failure.connect(dispatch_uid="celery_live.failed")
def on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    traceback: Any = None,
    einfo: Any = None,
    **kwargs: Any,
) -> None:
    # In the pool child `sender.request` is this task's request; in the parent (child
    # lost, hard time limit) it is not, so the worker name comes from the task's app.
    request = _task_request(sender)
    same_request = getattr(request, "id", None) == task_id
    if einfo is not None and getattr(einfo, "traceback", None):
        tb_text = einfo.traceback
    elif traceback is not None:
        tb_text = "".join(traceback_module.format_tb(traceback))
    else:
        tb_text = None
    publish(
        EventType.TASK_FAILED,
        wait=False,
        task_id=task_id,
        name=getattr(sender, "name", None),
        worker=getattr(request, "hostname", None) if same_request else None,
        data={
            "exception": f"{type(exception).__name__}: {exception}" if exception else None,
            "exc_type": type(exception).__name__ if exception else None,
            "traceback": tb_text,
            "attempt": _attempt(request) if same_request else None,
        },
    )


@signals.task_retry.connect(dispatch_uid="celery_live.retried")
def on_task_retry(sender: Any = None, request: Any = None, reason: Any = None, **kwargs: Any) -> None:
    publish_attempt(
        EventType.TASK_RETRIED, request, request.id, getattr(sender, "name", None), reason=str(reason)
    )


@signals.task_revoked.connect(dispatch_uid="celery_live.revoked")
def on_task_revoked(
    sender: Any = None,
    request: Any = None,
    terminated: bool = False,
    signum: Any = None,
    expired: bool = False,
    **kwargs: Any,
) -> None:
    publish(
        EventType.TASK_REVOKED,
        task_id=request.id,
        name=getattr(request, "task", None) or getattr(sender, "name", None),
        worker=getattr(request, "hostname", None),
        data={
            "terminated": bool(terminated),
            "signum": str(signum) if signum is not None else None,
            "expired": bool(expired),
        },
    )


@signals.task_rejected.connect(dispatch_uid="celery_live.rejected")
def on_task_rejected(sender: Any = None, message: Any = None, exc: Any = None, **kwargs: Any) -> None:
    headers = getattr(message, "headers", None) or {}
    if not headers.get("id"):
        return
    publish(
        EventType.TASK_REJECTED,
        task_id=headers["id"],
        name=headers.get("task"),
        worker=getattr(sender, "hostname", None),
        data={"reason": str(exc) if exc else "rejected by the worker"},
    )


@signals.task_unknown.connect(dispatch_uid="celery_live.unknown")
def on_task_unknown(
    sender: Any = None,
    message: Any = None,
    exc: Any = None,
    name: str | None = None,
    id: str | None = None,
    **kwargs: Any,
) -> None:
    if not id:
        return
    publish(
        EventType.TASK_REJECTED,
        task_id=id,
        name=name,
        worker=getattr(sender, "hostname", None),
        data={"reason": f"unknown task {name!r}: not registered on this worker"},
    )


@signals.worker_ready.connect(dispatch_uid="celery_live.worker_online")
def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    publish(
        EventType.WORKER_ONLINE,
        worker=getattr(sender, "hostname", None),
        data={"instance": current_instance()},
    )


@signals.worker_shutdown.connect(dispatch_uid="celery_live.worker_offline")
def on_worker_shutdown(sender: Any = None, **kwargs: Any) -> None:
    publish_offline(getattr(sender, "hostname", None), current_instance())


@signals.worker_process_shutdown.connect(dispatch_uid="celery_live.flush")
def on_worker_process_shutdown(**kwargs: Any) -> None:
    # A pool child leaves with os._exit (no atexit): publish what it still buffers first
    # (Redis was away), or say how many events are lost.
    get_publisher().close()
