"""Queues: which exist, how many messages wait in each, and which workers consume them.

Two Redis structures (keys in store.py), written by the queue sampler (runs/queues.py),
read by the API, the page and `/metrics` without touching the broker:

- the known queues, a set (`remember_queues`): those the online workers consume (the
  queues their heartbeats list, in the worker registry of log/workers.py), the host's
  configured ones, and those runs were sent to;
- the last sample of each queue, a hash: name -> `QueueSample` as JSON.

Depth is read from the broker (`BrokerQueues`). A Redis broker keeps a queue as lists:
kombu's Redis transport pushes a message with priority p to the list of the highest of its
`priority_steps` (default 0, 3, 6, 9) not above p, named `<queue>` for step 0 and
`<queue>\\x06\\x16<step>` for the others (`sep`), and serves step 0 first (kombu's
`Channel._q_for_pri`/`_size`); the depth is the sum of those lists' LLENs, each kept as the
count of its priority. RabbitMQ says a queue's messages ready and its consumers to a passive
`queue_declare`, which creates nothing. Messages a worker holds unacknowledged (prefetched
or running) are in neither count: they left the queue.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from kombu import Connection

from celery_live.log.store import queue_depths_key, queue_sampled_at_key, queues_key, worker_instances_key
from celery_live.log.workers import parse_registry

#: The one broker whose queues have per-priority counts (kombu's `driver_type`).
REDIS_DRIVER = "redis"
#: Seconds a broker connection may take to answer; the sampler tries again next time.
BROKER_TIMEOUT = 2.0


def remember_queues(client: redis.Redis, names: Iterable[str]) -> None:
    """Note that queues `names` exist (a queue once known stays known)."""
    names = sorted({name for name in names if name})
    if names:
        client.sadd(queues_key(), *names)


def known_queues(client: redis.Redis) -> set[str]:
    return set(client.smembers(queues_key()))


def consumers_by_queue(client: redis.Redis, now: float | None = None) -> dict[str, list[str]]:
    """Queue -> the hostnames of the online workers consuming it, from the queues their last
    heartbeats listed (the worker registry, log/workers.py): a cancelled consumer is gone
    from its worker's next beat, a dead worker once it is offline."""
    now = time.time() if now is None else now
    records = parse_registry(client.hgetall(worker_instances_key()), None, now)
    found: dict[str, set[str]] = {}
    for record in records:
        if record.is_online(now):
            for name in record.queues:
                found.setdefault(name, set()).add(record.hostname)
    return {name: sorted(hostnames) for name, hostnames in found.items()}


@dataclass(frozen=True)
class QueueSample:
    """A queue as the sampler last saw it."""

    name: str
    #: Messages waiting (all priorities).
    depth: int
    #: Messages waiting by priority step ("0", "3", ...), where the broker has them
    #: (Redis); None elsewhere.
    priorities: dict[str, int] | None = None
    #: Consumers: RabbitMQ's count, else the workers that say they consume it.
    consumers: int = 0
    #: Hostnames of the workers that say they consume it (their heartbeats).
    workers: list[str] = field(default_factory=list)
    #: When the queue was last seen to change (epoch seconds); not part of what it says.
    changed_at: float = field(default=0.0, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> QueueSample:
        priorities = value.get("priorities")
        return cls(
            name=str(value["name"]),
            depth=int(value.get("depth") or 0),
            priorities={str(k): int(v) for k, v in priorities.items()} if priorities else None,
            consumers=int(value.get("consumers") or 0),
            workers=[str(w) for w in value.get("workers") or []],
            changed_at=float(value.get("changed_at") or 0),
        )

    def same_as(self, other: QueueSample | None) -> bool:
        """Whether `other` says the same of the queue (when it changed aside)."""
        return self == other


def read_samples(client: redis.Redis) -> dict[str, QueueSample]:
    """Every queue's last sample, by name (an entry this version cannot read is left out)."""
    samples = {}
    for name, raw in client.hgetall(queue_depths_key()).items():
        try:
            samples[name] = QueueSample.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return samples


def write_samples(client: redis.Redis, changed: list[QueueSample], now: float) -> None:
    """Keep the queues that changed, and the time of this look at the broker."""
    pipe = client.pipeline(transaction=False)
    if changed:
        pipe.hset(queue_depths_key(), mapping={s.name: json.dumps(s.as_dict()) for s in changed})
    pipe.set(queue_sampled_at_key(), repr(now))
    pipe.execute()


def sampled_at(client: redis.Redis) -> float | None:
    """When the sampler last looked at the broker, or None if it never did."""
    raw = client.get(queue_sampled_at_key())
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Depth:
    """What the broker says of one queue."""

    depth: int
    priorities: dict[str, int] | None = None
    #: The broker's own count of consumers (RabbitMQ); None where it has none (Redis).
    consumers: int | None = None


class BrokerQueues:
    """Reads queue depths from the broker of a Celery app, over one connection kept open.

    Not thread-safe: one sampler owns it. A broken connection is dropped, and opened again
    at the next `measure`.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.connection: Connection | None = None
        self._channel: Any = None

    @property
    def broker(self) -> str:
        """The transport's kind: "redis", "amqp", … (opening the connection if needed)."""
        return self._connect().transport.driver_type

    def _connect(self) -> Connection:
        if self.connection is None:
            connection = self.app.connection_for_read(connect_timeout=BROKER_TIMEOUT)
            options = connection.transport_options
            if connection.transport.driver_type == REDIS_DRIVER and "socket_timeout" not in options:
                # kombu's default is to wait forever on a broker that stopped answering.
                options["socket_timeout"] = BROKER_TIMEOUT
            self.connection = connection
        return self.connection

    def measure(self, names: Iterable[str]) -> dict[str, Depth]:
        """The depth of each queue named (0 for one the broker does not have)."""
        names = sorted(set(names))
        try:
            connection = self._connect()
            connection.ensure_connection(max_retries=1)
            if connection.transport.driver_type == REDIS_DRIVER:
                return self._redis_depths(connection.default_channel, names)
            return self._declared_depths(connection, names)
        except Exception:
            self.close()
            raise

    def _redis_depths(self, channel: Any, names: list[str]) -> dict[str, Depth]:
        # The channel's client prefixes keys with the transport's `global_keyprefix` itself.
        steps = sorted(set(channel.priority_steps))
        with channel.client.pipeline(transaction=False) as pipe:
            for name in names:
                for step in steps:
                    pipe.llen(f"{name}{channel.sep}{step}" if step else name)
            lengths = pipe.execute()
        depths = {}
        for i, name in enumerate(names):
            counts = lengths[i * len(steps) : (i + 1) * len(steps)]
            by_step = {str(step): int(count) for step, count in zip(steps, counts, strict=True)}
            depths[name] = Depth(sum(by_step.values()), by_step)
        return depths

    def _declared_depths(self, connection: Connection, names: list[str]) -> dict[str, Depth]:
        """A passive `queue_declare` per queue: creates nothing; a queue the broker does not
        have closes the channel (AMQP's 404), so the next queue gets a new one."""
        depths = {}
        for name in names:
            if self._channel is None:
                self._channel = connection.channel()
            try:
                _, count, consumers = self._channel.queue_declare(queue=name, passive=True)
            except connection.channel_errors:
                self._channel = None
                depths[name] = Depth(0, None, 0)
                continue
            depths[name] = Depth(int(count), None, int(consumers))
        return depths

    def close(self) -> None:
        connection, self.connection, self._channel = self.connection, None, None
        if connection is not None:
            # Closing a broken connection may fail as well; it is gone either way.
            with contextlib.suppress(Exception):
                connection.release()
