"""The queue sampler: one process per stack looks at the broker's queues and says what changed.

Every `CELERY_LIVE_QUEUE_SAMPLE_INTERVAL` s (0.5) it reads the depth of every known queue
(log/queues.py: one pipelined round trip of LLENs on Redis, a passive declare per queue on
RabbitMQ), compares each with its last sample in Redis, keeps the ones that changed and
publishes them together as one `queue.depth` event:

    {"type": "queue.depth", "data": {"broker": "redis", "sampler": "<host>-<pid>-…", "queues": [
        {"name": "celery", "depth": 3, "priorities": {"0": 1, "3": 2, "6": 0, "9": 0},
         "consumers": 1, "workers": ["celery@a"], "changed_at": 1764090000.5}]}}

So the log gets at most one such event an interval (2 a second), and none while nothing
changes, however many queues and viewers there are; the page, the API and `/metrics` read
the last samples from Redis. A queue seen for the first time counts as a change.

It runs beside the reaper: `Recorder.run_forever` starts it in a thread of every recorder
(each Daphne process's, or `manage.py record_events`). A Redis key with a TTL elects the
one that samples: the holder renews it at each sample, another takes over within
`lock_ttl` of its holder's death, at once after a clean stop (`release`).

Known queues come from the worker registry (what each online worker consumes, as its
heartbeat says), the host's Celery configuration (`task_default_queue`, `task_queues`,
`task_routes` given as a mapping), and the queues runs waiting in the database (PENDING)
were sent to, looked up every `NAMES_EVERY` s (one indexed query).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any

import redis
from celery import current_app
from django.db import close_old_connections
from django.urls import reverse
from django.utils.http import urlencode

from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.publishing import publish
from celery_live.log.queues import (
    BrokerQueues,
    Depth,
    QueueSample,
    consumers_by_queue,
    known_queues,
    read_samples,
    remember_queues,
    write_samples,
)
from celery_live.log.store import queue_sampler_key
from celery_live.log.vocabulary import EventType, State
from celery_live.runs.models import Run

logger = logging.getLogger(__name__)

#: Seconds between two looks for queues in the configuration and on waiting runs.
NAMES_EVERY = 2.0

#: Take the lock if free, or renew it if this owner holds it; 1 if this owner holds it now.
LEAD_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
#: Drop the lock if this owner holds it (a clean stop hands over at once).
RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def configured_queues(app: Any) -> set[str]:
    """The queues the Celery app names: its default and declared queues, and the queues of
    routes given as a mapping (`{"pattern": "queue"}` or `{"pattern": {"queue": ...}}`;
    routing functions cannot be read without a task to route)."""
    names = {app.conf.task_default_queue, *app.amqp.queues.keys()}
    routes = app.conf.task_routes or ()
    for route in routes if isinstance(routes, (list, tuple)) else (routes,):
        if not isinstance(route, dict):
            continue
        for target in route.values():
            queue = target.get("queue") if isinstance(target, dict) else target
            names.add(queue if isinstance(queue, str) else getattr(queue, "name", None))
    return {name for name in names if isinstance(name, str) and name}


def waiting_run_queues(app: Any) -> set[str]:
    """The queues runs still waiting (PENDING) were sent to. A run records the message's
    routing key, which is its queue's name unless a declared queue binds another key."""
    by_key = {queue.routing_key: name for name, queue in app.amqp.queues.items() if queue.routing_key}
    keys = Run.objects.filter(state=State.PENDING).exclude(queue="").values_list("queue", flat=True)
    return {by_key.get(key, key) for key in keys.distinct()}


def waiting_runs_url(queue: str) -> str:
    """The list of the runs waiting in `queue` (queued: sent, not yet received)."""
    return f"{reverse('celery_live:runs')}?{urlencode({'state': State.PENDING, 'queue': queue})}"


class QueueSampler:
    """Samples the broker's queues when it holds the lock; `run` does so every interval."""

    def __init__(
        self,
        client: redis.Redis | None = None,
        app: Any = None,
        owner: str | None = None,
        interval: float | None = None,
    ) -> None:
        self.client = client or store.client()
        self.app = app or current_app
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self.interval = conf.QUEUE_SAMPLE_INTERVAL if interval is None else interval
        #: Another sampler takes over this long after this one's last sample.
        self.lock_ttl = max(2.0, 3 * self.interval)
        self.broker = BrokerQueues(self.app)
        self._lead = self.client.register_script(LEAD_SCRIPT)
        self._release = self.client.register_script(RELEASE_SCRIPT)
        self._next_names = 0.0

    def leads(self) -> bool:
        """Whether this sampler is the one that samples (taking or renewing the lock)."""
        return bool(self._lead(keys=[queue_sampler_key()], args=[self.owner, int(self.lock_ttl * 1000)]))

    def release(self) -> None:
        self._release(keys=[queue_sampler_key()], args=[self.owner])

    def queue_names(self, now: float, consumed: set[str]) -> set[str]:
        """Every known queue, after adding those consumed now, and the configured ones and
        those of waiting runs (every `NAMES_EVERY` s)."""
        known = known_queues(self.client)
        found = consumed - known
        if now >= self._next_names:
            self._next_names = now + NAMES_EVERY
            close_old_connections()  # this thread's connection may have been closed under it
            found |= (configured_queues(self.app) | waiting_run_queues(self.app)) - known
        remember_queues(self.client, found)
        return known | found

    def sample(self, now: float | None = None) -> dict[str, Any] | None:
        """Look at the broker once, if this sampler leads; the `queue.depth` event published
        (None: not leading, or no queue changed)."""
        now = time.time() if now is None else now
        if not self.leads():
            return None
        consumers = consumers_by_queue(self.client, now)
        names = self.queue_names(now, set(consumers))
        depths = self.broker.measure(names)
        previous = read_samples(self.client)
        changed = []
        for name in sorted(names):
            depth = depths.get(name, Depth(0))
            workers = consumers.get(name, [])
            sample = QueueSample(
                name=name,
                depth=depth.depth,
                priorities=depth.priorities,
                consumers=len(workers) if depth.consumers is None else depth.consumers,
                workers=workers,
                changed_at=now,
            )
            if not sample.same_as(previous.get(name)):
                changed.append(sample)
        write_samples(self.client, changed, now)
        if not changed:
            return None
        return publish(
            EventType.QUEUE_DEPTH,
            ts=now,
            data={
                "broker": self.broker.broker,
                "queues": [sample.as_dict() for sample in changed],
                "sampler": self.owner,
            },
        )

    def run(self, stop: threading.Event) -> None:
        """Sample every interval until `stop` is set; errors are logged (once while they
        last) and retried at the next interval."""
        failing = False
        try:
            while not stop.is_set():
                try:
                    self.sample()
                    if failing:
                        failing = False
                        logger.warning("celery-live queue sampler: sampling again")
                except Exception as exc:  # the broker, Redis or the database away
                    if not failing:
                        failing = True
                        logger.warning("celery-live queue sampler: %s; retrying each interval", exc)
                # A full interval after each sample, however long it took: two events are
                # never closer than the interval.
                stop.wait(self.interval)
        finally:
            self.broker.close()
            with contextlib.suppress(redis.RedisError):  # else the lock expires by itself
                self.release()


def start_sampler(stop: threading.Event) -> threading.Thread:
    """Run a queue sampler in a daemon thread of this process until `stop` is set."""
    thread = threading.Thread(target=QueueSampler().run, args=(stop,), name="celery-live-queues", daemon=True)
    thread.start()
    return thread
