"""A worker bootstep that says "alive" every few seconds, with what the worker is doing.

Celery's own heartbeats exist only with task events on (`-E`: 42-47 % fewer no-op tasks a
second in `make bench`'s worker-overhead runs); this one costs one registry write and one
small publish per interval. It beats from its own thread, not the worker's timer: with the
solo pool the timer waits while a task runs, and a busy worker must not look dead. Each
beat names this worker *instance* (log/workers.py): the reaper reads the registry of last
heartbeats to tell a dead or restarted worker's runs from running ones.

A beat describes the instance for the workers page and API (`WorkerRecord`): its pool and
current size, the queues it consumes, its running and reserved tasks, what it has processed
and failed since it started, the machine's load, and whether any of it but the load changed
since its last beat (`changed`: the workers page then only moves its clock). The task names
it registers ride on a beat only when they change (its first beat included) and stay in the
registry meanwhile: a beat is ~0.5 kB in the log, and sending the names each time would add
~40 bytes per name (a 30-task worker's first beat: 1.5 kB; scripts/bench/monitor_cost.py).

`failed` is counted where failures are known: a task's exception in the pool child that
ran it, a lost child or a hard time limit in this process. The count lives in shared memory
made before the pool forks, so every child adds to the number this process reads.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from typing import Any

from celery import bootsteps, signals
from celery.concurrency import ALIASES

from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.publishing import publish
from celery_live.log.queues import remember_queues
from celery_live.log.vocabulary import EventType
from celery_live.log.workers import (
    SHUT_DOWN,
    WorkerRecord,
    forget_instance,
    mark_offline,
    publish_offline,
    record_worker,
    set_instance,
)

logger = logging.getLogger(__name__)

#: `-P` names by pool class path ("celery.concurrency.prefork:TaskPool" -> "prefork").
POOL_NAMES = {path: name for name, path in ALIASES.items() if name != "processes"}
#: Seconds a pool child waits for the failure count's lock: one killed while holding it
#: must not hang every later failure.
LOCK_WAIT = 0.1


class SharedCount:
    """A count the worker's main process reads and its pool children add to.

    Made before the pool forks, so the children share its memory; its lock keeps two
    children's additions apart (a count read without it is one aligned 8-byte word).
    """

    def __init__(self) -> None:
        self._value = multiprocessing.Value("q", 0)

    def add(self) -> None:
        lock = self._value.get_lock()
        locked = lock.acquire(timeout=LOCK_WAIT)
        try:
            self._value.get_obj().value += 1
        finally:
            if locked:
                lock.release()

    @property
    def value(self) -> int:
        return self._value.get_obj().value


#: This worker's failures, once its heartbeat step exists (None in any other process).
failures: SharedCount | None = None


@signals.task_failure.connect(dispatch_uid="celery_live.count_failures")
def count_failure(**kwargs: Any) -> None:
    if failures is not None:
        failures.add()


def pool_name(pool_class: type) -> str:
    """A pool's `-P` name (prefork, threads, solo, …), or its class path for another."""
    path = f"{pool_class.__module__}:{pool_class.__name__}"
    return POOL_NAMES.get(path, path)


def registered_tasks(app: Any) -> list[str]:
    """The task names the worker's app registers, Celery's own (`celery.*`) left out."""
    return sorted(name for name in list(app.tasks) if not name.startswith("celery."))


def describe(worker: Any, instance: str, now: float) -> WorkerRecord:
    """What this worker instance is doing now, as its heartbeat says it."""
    from celery.worker import state

    pool = worker.pool
    try:
        concurrency = pool.num_processes  # the pool's size now: pool_grow/shrink change it
    except AttributeError:  # prefork before its pool has started
        concurrency = worker.concurrency
    task_consumer = getattr(getattr(worker, "consumer", None), "task_consumer", None)
    queues = sorted({queue.name for queue in task_consumer.queues}) if task_consumer else []
    return WorkerRecord(
        hostname=worker.hostname,
        instance=instance,
        ts=now,
        pool=pool_name(type(pool)),
        concurrency=concurrency,
        queues=tuple(queues),
        active=tuple(sorted(request.id for request in list(state.active_requests))),
        reserved=len(state.reserved_requests),
        processed=state.all_total_count[0],
        failed=failures.value if failures is not None else 0,
        load=tuple(round(n, 2) for n in os.getloadavg()),
    )


class LiveHeartbeat(bootsteps.StartStopStep):
    def __init__(self, worker, **kwargs):
        global failures
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.instance: str | None = None
        #: The registered names the log last heard from this instance (None: not yet).
        self._registered_sent: list[str] | None = None
        #: The queues it last told the queue registry it consumes.
        self._queues_told: tuple[str, ...] | None = None
        #: What its last beat said.
        self._last: WorkerRecord | None = None
        # Now, before the consumer starts and Celery (with -E) sends worker-online: a bridge
        # (bridge/) must know this worker's Celery events are ours before the first arrives.
        if conf.INSTRUMENT:
            with contextlib.suppress(Exception):  # Redis away: the first beat marks it
                store.mark_instrumented(store.client(), worker.hostname)
        # Before the pool forks its children (the steps start later), so they share it.
        if failures is None:
            try:
                failures = SharedCount()
            except OSError:  # no shared memory here (a locked-down container)
                logger.warning("celery-live: cannot count this worker's failures (no shared memory)")

    def start(self, worker) -> None:
        if not conf.INSTRUMENT:
            return
        self.instance = set_instance()
        self._registered_sent = self._queues_told = self._last = None
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(worker,), name="celery-live-heartbeat", daemon=True
        )
        self._thread.start()

    def _run(self, worker) -> None:
        interval = conf.HEARTBEAT_INTERVAL
        while True:
            self.beat(worker)
            if self._stop.wait(interval):
                return

    def beat(self, worker) -> None:
        try:
            record = describe(worker, self.instance, time.time())
            registered = registered_tasks(worker.app)
            new_names = registered if registered != self._registered_sent else None
            client = store.client()
            kept = record_worker(client, record, new_names)  # and renews the instrumented mark
            if record.queues != self._queues_told:  # the queues page lists every queue consumed
                remember_queues(client, record.queues)
                self._queues_told = record.queues
        except Exception:  # a missed beat is what the reaper is for; never break the worker
            return
        # Most beats of an idle worker say what the last one said: the pages then only
        # move its clock (a beat long after the last may follow an offline: never "same").
        same = record.same_figures(self._last) and record.ts - self._last.ts < conf.WORKER_TIMEOUT
        self._last = record
        data = {**record.beat_data(), "interval": conf.HEARTBEAT_INTERVAL, "changed": not same}
        if new_names is not None:
            data["registered"] = new_names
        publish(EventType.WORKER_HEARTBEAT, worker=worker.hostname, data=data)
        self._registered_sent = registered if kept else None  # lost: send them next time

    def stop(self, worker) -> None:
        """A warm shutdown: stop beating and say goodbye (the `worker_shutdown` signal then
        publishes `worker.offline`, worker/signals.py). Steps stop in reverse order, so this
        comes after the pool has finished its tasks."""
        self._goodbye(worker, announce=False)

    def terminate(self, worker) -> None:
        """A cold shutdown (and the tests' in-thread worker) terminates steps instead of
        stopping them, and sends no `worker_shutdown`: the goodbye says it is offline."""
        self._goodbye(worker, announce=True)

    def _goodbye(self, worker, announce: bool) -> None:
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join(5)
        self._thread = None
        with contextlib.suppress(Exception):  # the reaper copes with a missing goodbye
            client = store.client()
            mark_offline(client, self.instance, SHUT_DOWN)
            forget_instance(client, worker.hostname, self.instance)
        if announce:
            publish_offline(worker.hostname, self.instance)
