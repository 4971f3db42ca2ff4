"""A worker bootstep that says "alive" every few seconds, with the tasks it is running.

Celery's own heartbeats exist only with task events on (`-E`: 42-47 % fewer no-op tasks a
second in `make bench`'s worker-overhead runs); this one costs one small publish per
interval. It beats from its own thread, not the worker's timer: with the solo pool the
timer waits while a task runs, and a busy worker must not look dead. Each beat names this
worker *instance* (log/workers.py): the reaper reads the registry of last heartbeats to
tell a dead or restarted worker's runs from running ones.
"""

from __future__ import annotations

import contextlib
import threading

from celery import bootsteps

from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.publishing import publish
from celery_live.log.vocabulary import EventType
from celery_live.log.workers import forget_instance, record_beat, set_instance


class LiveHeartbeat(bootsteps.StartStopStep):
    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.instance: str | None = None

    def start(self, worker) -> None:
        if not conf.INSTRUMENT:
            return
        self.instance = set_instance()
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
        from celery.worker import state

        try:
            record_beat(store.client(), worker.hostname, self.instance)
            active = sorted(request.id for request in list(state.active_requests))
        except Exception:  # a missed beat is what the reaper is for; never break the worker
            return
        publish(
            EventType.WORKER_HEARTBEAT,
            worker=worker.hostname,
            data={
                "active": active,
                "reserved": len(state.reserved_requests),
                "interval": conf.HEARTBEAT_INTERVAL,
                "instance": self.instance,
            },
        )

    def stop(self, worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def terminate(self, worker) -> None:
        # A cold shutdown (and the tests' in-thread worker) terminates steps instead of
        # stopping them; StartStopStep's own terminate would leave this thread beating.
        self.stop(worker)

    def shutdown(self, worker) -> None:
        self.stop(worker)
        with contextlib.suppress(Exception):  # the reaper copes with a missing goodbye
            forget_instance(store.client(), worker.hostname, self.instance)
