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

A chain's later steps travel in its first step's message (the `chain` option): that
message announces them (`task.waiting`, each with its parent, the step before it). A
step that fails or is revoked ends the steps after it, which Celery never sends:
`task.revoked` with "never_sent" from the process that saw the end (the run's request
holds the rest of its chain). A hard time limit (or a lost pool child) fails the task
from the worker's main process, without the request: that process keeps the rest of the
chain of each chain step it receives (bounded), for that.

Every event says which kind of process published it (`data["process"]`, log/events.py):
`worker_init` makes the worker's main process "worker", `worker_process_init` a prefork
child "pool"; Beat (worker/beat.py) and the recorder say theirs.
"""

from __future__ import annotations

import functools
import logging
import numbers
import os
import sys
import threading
import time
import traceback as traceback_module
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from celery import current_app, group, signals
from celery._state import get_current_task
from celery.backends.base import Backend
from celery.canvas import Signature, maybe_signature

from celery_live.log.events import RERUN_HEADER, epoch, set_process_role
from celery_live.log.publishing import get_publisher, publish
from celery_live.log.store import sent_dedupe_key
from celery_live.log.vocabulary import EventType, ProcessRole
from celery_live.log.workers import current_instance, publish_offline
from celery_live.worker import beat, logs

logger = logging.getLogger(__name__)

#: Runs this process has announced (`task.waiting`: chord callbacks, chain steps), newest
#: last: a chord's header tasks are usually all sent by one process, one after another.
_announced: OrderedDict[str, None] = OrderedDict()
_ANNOUNCED_MAX = 1000

#: The rest of the chain of each chain step this worker received, newest last: the main
#: process fails a task itself at its hard time limit, without the task's request.
_chains: OrderedDict[str, list] = OrderedDict()

#: The next attempt's message this thread sent last, (task id, eta): Celery sends it before
#: it signals the retry, whose `retry_at` is that message's ETA (`on_task_retry`).
_resent = threading.local()

#: The pid of the worker's main process (`worker_init`): a pool process with another pid
#: is a prefork child; the solo pool runs tasks in the main process itself.
_worker_pid: int | None = None


def _remember(known: OrderedDict, key: str, value: Any) -> None:
    """Keep `value` under `key` in `known`, forgetting the oldest beyond `_ANNOUNCED_MAX`."""
    known[key] = value
    if len(known) > _ANNOUNCED_MAX:
        known.popitem(last=False)


def _first_announcement(task_id: str) -> bool:
    """Whether this process has not announced run `task_id` yet (and now has)."""
    if task_id in _announced:
        return False
    _remember(_announced, task_id, None)
    return True


def _short(task_id: str) -> str:
    return task_id[:8]


@signals.worker_init.connect(dispatch_uid="celery_live.role_worker")
def on_worker_init(sender: Any = None, **kwargs: Any) -> None:
    """The worker's main process says "worker" in its events.

    `celery worker` (celery.apps.worker.Worker) owns its process. A worker embedded in
    another process (the tests' in-thread worker) is a worker only in the thread that runs
    it: the rest of that process keeps its role.
    """
    from celery.apps.worker import Worker  # here: web processes need not import it

    global _worker_pid
    _worker_pid = os.getpid()
    if isinstance(sender, Worker):
        set_process_role(ProcessRole.WORKER)
    elif sender is not None:
        sender.start = _as_worker_thread(sender.start)


def _as_worker_thread(start: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(start)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        set_process_role(ProcessRole.WORKER, thread_only=True)
        return start(*args, **kwargs)

    return wrapper


@signals.worker_process_init.connect(dispatch_uid="celery_live.role_pool")
def on_worker_process_init(**kwargs: Any) -> None:
    """A pool process starts (a prefork child, or the solo pool in the worker itself):
    tag a child's events "pool", and turn its tasks' log lines into `task.log` events.

    Here, not at `worker_init`: Celery sets up the worker's logging after that signal, and
    a logger that already has a handler would not get Celery's own (logs.install)."""
    if os.getpid() != _worker_pid:
        set_process_role(ProcessRole.POOL)
    logs.install()


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
    beat.note_sent(task_id)
    if headers.get("retries"):
        _resent.message = (task_id, headers.get("eta"))
    if embed.get("chord") and not headers.get("retries"):
        announce_chord_callback(embed["chord"], headers)
    if embed.get("chain") and not headers.get("retries") and not _continues_chain(headers):
        announce_chain_steps(embed["chain"], headers)
    publish(
        EventType.TASK_SENT,
        # Celery's `task-sent` for the same message, bridged, is then dropped (bridge/).
        dedupe=sent_dedupe_key(task_id, int(headers.get("retries") or 0)),
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


def _readable(signatures: Iterator[Signature], what: str, of: str | None) -> list[Signature]:
    """All of `signatures`, or none (logged) when this process cannot read the `what` of
    task `of`: a canvas it cannot read must not stop a send, nor end a task."""
    try:
        return list(signatures)
    except Exception:
        logger.exception("celery-live: could not read the %s%s", what, f" of {of}" if of else "")
        return []


def _announce_waiting(signature: Signature, waiting_for: str, **links: str | None) -> None:
    """Publish `task.waiting` (once per process) for a task Celery sends only later, with
    its `links` (root_id, parent_id, group_id) as far as they are known now."""
    if not _first_announcement(signature.id):
        return
    publish(
        EventType.TASK_WAITING,
        wait=False,  # the `task.sent` of the message announcing it, right after, waits for all
        task_id=signature.id,
        name=signature.task,
        data={
            "args": list(signature.args or ()),
            "kwargs": dict(signature.kwargs or {}),
            "queue": signature.options.get("queue"),
            **links,
            "waiting_for": waiting_for,
        },
    )


def announce_chord_callback(callback: Any, headers: dict) -> None:
    """Publish `task.waiting` for a chord's callback (once per process), from a header
    task's message: Celery sends the callback only when the whole header has succeeded."""
    group_id, root_id = headers.get("group"), headers.get("root_id")
    for task in _readable(_callback_tasks(callback), "chord callback", headers.get("id")):
        _announce_waiting(
            task,
            f"its chord header (group {group_id})" if group_id else "its chord header",
            # A header task sent by no task is its own root (Celery's default): then the
            # callback's root is not known until Celery sends it.
            root_id=root_id if root_id != headers.get("id") else None,
            group_id=task.options.get("group_id") or group_id,
        )


def _chain_steps(chain: list) -> Iterator[Signature]:
    """The tasks of a message's `chain` (Celery keeps it reversed) in the order they run, up
    to the first step that is no single task (a group, a chord: announced when sent)."""
    for step in reversed(chain):
        signature = maybe_signature(step, app=current_app)
        if signature is None or signature.subtask_type or not signature.id:
            return
        yield signature


def _continues_chain(headers: dict) -> bool:
    """Whether this message is the next step of the chain the running task belongs to (its
    remaining steps were announced with the chain's first step, numbered from it)."""
    request = getattr(get_current_task(), "request", None)
    remaining = getattr(request, "chain", None)
    if not remaining or request.id != headers.get("parent_id"):
        return False
    # Celery sends the running task's chain[-1] with chain[:-1] (app/trace.py).
    next_step = maybe_signature(remaining[-1], app=current_app)
    return next_step is not None and next_step.id == headers.get("id")


def announce_chain_steps(chain: list, headers: dict) -> None:
    """Publish `task.waiting` for each later step of a chain (once per process), from its
    first step's message: each is sent only when the step before it has succeeded."""
    previous = headers["id"]
    root_id = headers.get("root_id") or previous
    for number, step in enumerate(_readable(_chain_steps(chain), "chain", headers.get("id")), start=2):
        _announce_waiting(
            step,
            f"step {number - 1} of the chain ({_short(previous)})",
            root_id=root_id,
            parent_id=previous,
            group_id=step.options.get("group_id"),
        )
        previous = step.id


def message_chain(request: Any) -> list | None:
    """The rest of the chain a worker's request carries. Its message's embed is merged into
    `request_dict` only when the task runs; until then it is in the decoded body, which
    Celery's own Request reads for its `chord` and `errbacks` the same way."""
    chain = (getattr(request, "request_dict", None) or {}).get("chain")
    payload = getattr(request, "_payload", None)
    if chain is None and isinstance(payload, (list, tuple)) and len(payload) >= 3:
        embed = payload[2]
        chain = embed.get("chain") if isinstance(embed, dict) else None
    return chain


def publish_chain_never_sent(chain: list, ended_id: str, how: str = "failed") -> None:
    """End the later steps of a chain whose step `ended_id` failed (or was revoked): Celery
    never sends them, and an announced step must not look pending forever (REVOKED, "never
    sent")."""
    for step in _readable(_chain_steps(chain), "chain", ended_id):
        publish(
            EventType.TASK_REVOKED,
            wait=False,
            task_id=step.id,
            name=step.task,
            data={"never_sent": True, "reason": f"never sent: step {_short(ended_id)} of its chain {how}"},
        )


def publish_chord_failure(callback: Any, exc: BaseException | None, traceback: str | None) -> None:
    """Publish `task.failed` for each run of a chord callback Celery has failed."""
    for task in _readable(_callback_tasks(callback), "failed chord callback", None):
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
    chain = message_chain(request)
    if chain:
        _remember(_chains, request.id, chain)
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


def max_retries(task: Any) -> int | None:
    """How many retries `task` allows, as far as its declaration says (an autoretry's
    `retry_kwargs`, else `max_retries`); None: no limit, or not known."""
    retry_kwargs = getattr(task, "retry_kwargs", None) or {}
    value = retry_kwargs.get("max_retries", getattr(task, "max_retries", None))
    return value if isinstance(value, int) else None


def retry_at(task_id: str, retry: Any) -> float | None:
    """When a retry's next attempt is due (epoch): the ETA of the message this thread has
    just sent for it, else from Celery's `Retry.when` (a countdown in seconds or a datetime)."""
    task_id_sent, eta = getattr(_resent, "message", (None, None))
    if task_id_sent == task_id and eta:
        return epoch(eta)
    when = getattr(retry, "when", None)
    if isinstance(when, numbers.Number):
        return time.time() + float(when)
    if isinstance(when, (datetime, str)):
        return epoch(when)
    return None


@signals.task_prerun.connect(dispatch_uid="celery_live.started")
def on_task_prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    publish_attempt(
        EventType.TASK_STARTED,
        _task_request(task),
        task_id,
        getattr(task, "name", None),
        max_retries=max_retries(task),
    )


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
    same_request = task_id is not None and getattr(request, "id", None) == task_id
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
    remembered = _chains.pop(task_id, None) if task_id else None
    chain = getattr(request, "chain", None) if same_request else remembered
    if chain and task_id:
        publish_chain_never_sent(chain, task_id)


@signals.task_retry.connect(dispatch_uid="celery_live.retried")
def on_task_retry(sender: Any = None, request: Any = None, reason: Any = None, **kwargs: Any) -> None:
    # Celery has sent the next attempt's message already (`task.sent`, attempt n + 1).
    exc = getattr(reason, "exc", None)
    publish_attempt(
        EventType.TASK_RETRIED,
        request,
        request.id,
        getattr(sender, "name", None),
        reason=str(reason),
        exception=f"{type(exc).__name__}: {exc}" if exc is not None else None,
        retry_at=retry_at(request.id, reason),
        max_retries=max_retries(sender),
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
    remembered = _chains.pop(request.id, None)
    chain = message_chain(request) or remembered
    if chain:
        publish_chain_never_sent(chain, request.id, "was revoked")


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
    # A threads or gevent pool runs tasks in this process and sends no worker_process_init.
    logs.install()
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
