"""Worker *instances*: which process of a worker is alive, and whether a run's is gone.

A hostname is not a process. `make run`, systemd or Kubernetes restart a killed worker
within seconds under the same name (`celery@host`); judged by name, the new process
looks like the old one and the old one's runs stay "running" forever. So every worker
main process is an instance, `<pid>-<start time in ms>`: its heartbeats (heartbeat.py)
carry it, each `task.received` records it on the run, and a run whose instance is not
the one beating for its hostname (a newer one is) lost its process.

The registry is three Redis hashes (their keys are in store.py):

- hostname -> JSON `{"ts", "instance"}`, the last beat of the newest instance of that
  hostname: what the reaper and the health check judge liveness by;
- instance -> what that instance's last beat said (`WorkerRecord`: pool, concurrency,
  queues, counts, load; when and why it went offline), for the workers page and API;
- instance -> the task names it registers, written only when they change (a beat carries
  them only then too: a few hundred bytes per beat, 2 s apart, on every worker, add up).

An instance is remembered for `FORGET_AFTER` s after its last beat (the reaper forgets it).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import redis

from celery_live.conf import conf
from celery_live.log.publishing import publish
from celery_live.log.store import (
    bridge_watch_key,
    mark_instrumented,
    worker_instances_key,
    worker_registered_key,
    workers_key,
)
from celery_live.log.vocabulary import EventType, ProcessRole

#: This process's instance id, once it has started beating as a worker (set_instance).
_instance: str | None = None

#: Seconds the registry keeps an instance after its last beat: the workers page and API
#: list every instance seen within that time, offline ones included.
FORGET_AFTER = 3600.0
#: Why an instance that said goodbye (a worker shut down) is offline.
SHUT_DOWN = "shut down"


def publish_offline(hostname: str | None, instance: str | None, reason: str = SHUT_DOWN) -> None:
    """Say that a worker instance is gone (`worker.offline`), and why."""
    publish(EventType.WORKER_OFFLINE, worker=hostname, data={"instance": instance, "reason": reason})


def set_instance(started: float | None = None) -> str:
    """Make this process a worker instance (called by the heartbeat step on start)."""
    global _instance
    started = time.time() if started is None else started
    _instance = f"{os.getpid()}-{int(started * 1000)}"
    return _instance


def current_instance() -> str | None:
    """The instance id of this worker process (pool children inherit their parent's)."""
    return _instance


def instance_started(instance: str | None) -> float | None:
    """When an instance started (epoch seconds), read from its id; None if not an id."""
    _, _, ms = (instance or "").partition("-")
    return int(ms) / 1000 if ms.isdigit() else None


def instance_pid(instance: str | None) -> str:
    return (instance or "").partition("-")[0] or "?"


@dataclass(frozen=True)
class Beat:
    """A hostname's last heartbeat: when, and from which instance."""

    ts: float
    instance: str | None = None
    #: Written by the bridge from Celery's own events (bridge/), not by our heartbeat step.
    bridged: bool = False

    @classmethod
    def parse(cls, raw: str) -> Beat:
        """A hash value: JSON, or a bare timestamp (written before instances existed)."""
        try:
            value: Any = json.loads(raw)
        except ValueError:
            return cls(ts=0.0)
        if isinstance(value, (int, float)):
            return cls(ts=float(value))
        bridged = value.get("bridged") is True
        return cls(ts=float(value.get("ts") or 0), instance=value.get("instance"), bridged=bridged)

    def encode(self) -> str:
        bridged = {"bridged": True} if self.bridged else {}
        return json.dumps({"ts": self.ts, "instance": self.instance, **bridged})

    def is_silent(self, now: float) -> bool:
        return now - self.ts > conf.WORKER_TIMEOUT


def record_beat(client: redis.Redis, hostname: str, instance: str | None, now: float | None = None) -> None:
    """Note that `instance` of `hostname` is alive now."""
    beat = Beat(ts=time.time() if now is None else now, instance=instance)
    client.hset(workers_key(), hostname, beat.encode())


def forget_instance(client: redis.Redis, hostname: str, instance: str | None) -> None:
    """A worker's goodbye: drop its entry, unless a newer instance of its name took it over."""
    raw = client.hget(workers_key(), hostname)
    if raw is not None and Beat.parse(raw).instance == instance:
        client.hdel(workers_key(), hostname)


def read_beats(client: redis.Redis) -> dict[str, Beat]:
    """Every hostname's last heartbeat."""
    return {name: Beat.parse(raw) for name, raw in client.hgetall(workers_key()).items()}


def live_worker_count(beats: dict[str, Beat], now: float) -> int:
    """How many hostnames beat within the timeout."""
    return sum(1 for beat in beats.values() if not beat.is_silent(now))


@dataclass(frozen=True)
class Gone:
    """Why the process running a run is gone; `restarted`: a newer instance of its
    hostname beats, so the old process is certainly dead (no need to wait for silence)."""

    reason: str
    restarted: bool = False


def why_gone(worker: str, instance: str | None, beats: dict[str, Beat], now: float) -> Gone | None:
    """Whether the process running a run (on `worker`, received by `instance`) is gone.

    Gone when a newer instance of the same hostname beats (restarted: it cannot know the
    old one's runs), when the hostname is silent past the timeout, or when it never beat.
    """
    beat = beats.get(worker)
    if beat is None:
        return Gone(f"worker {worker} is gone")
    if instance and beat.instance and beat.instance != instance:
        new_start, old_start = instance_started(beat.instance), instance_started(instance)
        if new_start is not None and old_start is not None and new_start > old_start:
            return Gone(
                f"worker {worker} restarted (pid {instance_pid(instance)} → "
                f"{instance_pid(beat.instance)}): the process running this task is gone",
                restarted=True,
            )
    if beat.is_silent(now):
        return Gone(f"worker {worker} stopped responding: no heartbeat for {now - beat.ts:.0f} s")
    return None


# --- what each instance said --------------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _count(value: Any) -> int:
    return max(0, _int(value) or 0)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(item for item in _list(value) if isinstance(item, str))


@dataclass(frozen=True)
class WorkerRecord:
    """A worker instance as its last heartbeat described it (worker/heartbeat.py).

    `active` holds the ids of the tasks it was running; `processed` counts the tasks it has
    started since it started (Celery's own count, `inspect stats`' total) and `failed` those
    that failed; `concurrency` is its pool's size at that beat (pool_grow and pool_shrink
    change it). `registered` is None where it was not read.
    """

    hostname: str
    instance: str
    ts: float
    pool: str | None = None
    concurrency: int | None = None
    queues: tuple[str, ...] = ()
    active: tuple[str, ...] = ()
    reserved: int = 0
    processed: int = 0
    failed: int = 0
    load: tuple[float, ...] = ()
    offline_at: float | None = None
    offline_reason: str | None = None
    registered: tuple[str, ...] | None = None
    #: Described by the bridge from Celery's events (it has no pool, queues or failures).
    bridged: bool = False

    #: The fields a heartbeat's `data` carries (besides `instance`).
    BEAT_FIELDS = ("pool", "concurrency", "queues", "active", "reserved", "processed", "failed", "load")

    @classmethod
    def from_beat(cls, hostname: str, ts: float, data: dict[str, Any]) -> WorkerRecord:
        """The record a heartbeat event describes (its `worker`, `ts` and `data`); what a
        foreign or older process sent in the wrong type is left out."""
        registered = data.get("registered")
        return cls(
            hostname=hostname,
            instance=_text(data.get("instance")) or hostname,
            ts=ts,
            pool=_text(data.get("pool")),
            concurrency=_int(data.get("concurrency")),
            queues=_texts(data.get("queues")),
            active=_texts(data.get("active")),
            reserved=_count(data.get("reserved")),
            processed=_count(data.get("processed")),
            failed=_count(data.get("failed")),
            load=tuple(n for n in map(_number, _list(data.get("load"))) if n is not None),
            offline_at=_number(data.get("offline_at")),
            offline_reason=_text(data.get("offline_reason")),
            registered=_texts(registered) if isinstance(registered, list) else None,
            bridged=data.get("bridged") is True or data.get("process") == ProcessRole.BRIDGE,
        )

    @classmethod
    def parse(cls, raw: str, registered: str | None = None) -> WorkerRecord | None:
        """A registry entry (and its registered names, if read); None if it is not one."""
        try:
            value = json.loads(raw)
            names = json.loads(registered) if registered is not None else None
        except ValueError:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("hostname"), str):
            return None
        return cls.from_beat(
            value["hostname"],
            _number(value.get("ts")) or 0.0,
            {**value, "registered": names if isinstance(names, list) else None},
        )

    def beat_data(self) -> dict[str, Any]:
        """What a heartbeat event carries in its `data` (registered names aside)."""
        data: dict[str, Any] = {"instance": self.instance}
        for name in self.BEAT_FIELDS:
            value = getattr(self, name)
            data[name] = list(value) if isinstance(value, tuple) else value
        return data

    def same_figures(self, other: WorkerRecord | None) -> bool:
        """Whether `other` (an earlier beat) shows what this one shows, but for the machine's
        load, which moves at every beat."""
        return other is not None and all(
            getattr(self, name) == getattr(other, name) for name in self.BEAT_FIELDS if name != "load"
        )

    def encode(self) -> str:
        """The registry's entry (its registered names are kept apart)."""
        return json.dumps(
            {
                "hostname": self.hostname,
                "ts": self.ts,
                **self.beat_data(),
                "offline_at": self.offline_at,
                "offline_reason": self.offline_reason,
                "bridged": self.bridged,
            }
        )

    @property
    def pid(self) -> int | None:
        pid = instance_pid(self.instance)
        return int(pid) if pid.isdigit() else None

    @property
    def started(self) -> float | None:
        return instance_started(self.instance)

    def is_online(self, now: float) -> bool:
        """Beating within the timeout, and not gone offline since."""
        return self.offline_at is None and now - self.ts <= conf.WORKER_TIMEOUT

    @property
    def said_at(self) -> float:
        """When the instance last said something: its last beat, or its going offline."""
        return max(self.ts, self.offline_at or 0.0)

    def is_forgotten(self, now: float) -> bool:
        return now - self.said_at > FORGET_AFTER

    def gone_offline(self, reason: str, now: float) -> WorkerRecord:
        return replace(self, offline_at=now, offline_reason=reason)

    def as_dict(self, now: float) -> dict[str, Any]:
        """The instance as `GET /api/workers/` answers it (one silent past the timeout is
        offline, and says why, before the reaper has announced it)."""
        online = self.is_online(now)
        silent = None if online or self.offline_reason else f"no heartbeat for {now - self.ts:.0f} s"
        return {
            "hostname": self.hostname,
            "instance": self.instance,
            "pid": self.pid,
            "online": online,
            "pool": self.pool,
            "concurrency": self.concurrency,
            "queues": list(self.queues),
            "active": len(self.active),
            "active_tasks": list(self.active),
            "reserved": self.reserved,
            "processed": self.processed,
            "failed": self.failed,
            "load": list(self.load),
            "last_heartbeat": self.ts,
            "started": self.started,
            "offline_at": self.offline_at,
            "offline_reason": self.offline_reason or silent,
            "registered": list(self.registered or ()),
            "bridged": self.bridged,
        }


def record_worker(client: redis.Redis, record: WorkerRecord, registered: list[str] | None = None) -> bool:
    """A heartbeat in the registry, in one round trip: the hostname's last beat, the
    instance's record, its registered names when they changed (`registered` given), and,
    for a beat of our own heartbeat step (not `bridged`), the hostname's instrumented mark
    (`store.mark_instrumented`: the bridge leaves its Celery events alone).

    Whether the registry holds its registered names now: False after Redis lost its data,
    and the worker sends them again."""
    pipe = client.pipeline(transaction=False)
    beat = Beat(ts=record.ts, instance=record.instance, bridged=record.bridged)
    pipe.hset(workers_key(), record.hostname, beat.encode())
    pipe.hset(worker_instances_key(), record.instance, record.encode())
    if registered is not None:
        pipe.hset(worker_registered_key(), record.instance, json.dumps(registered))
    if not record.bridged:
        mark_instrumented(pipe, record.hostname)  # queued in the pipeline (one is a Redis)
    pipe.hexists(worker_registered_key(), record.instance)
    return bool(pipe.execute()[-1])


def parse_registry(
    records: dict[str, str], registered: dict[str, str] | None, now: float
) -> list[WorkerRecord]:
    """The instances of the registry's hashes (as HGETALL gives them) not yet forgotten,
    by hostname, the newest instance of each first."""
    parsed = (
        WorkerRecord.parse(raw, registered.get(instance) if registered is not None else None)
        for instance, raw in records.items()
    )
    found = [record for record in parsed if record is not None and not record.is_forgotten(now)]
    return sorted(found, key=lambda r: (r.hostname, -(r.started or 0.0)))


def read_workers(client: redis.Redis, now: float | None = None) -> list[WorkerRecord]:
    """Every worker instance the registry remembers, with its registered names."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(worker_instances_key())
    pipe.hgetall(worker_registered_key())
    records, registered = pipe.execute()
    return parse_registry(records, registered, time.time() if now is None else now)


def mark_offline(client: redis.Redis, instance: str | None, reason: str, now: float | None = None) -> bool:
    """Record that `instance` went offline, and why; False if it is unknown or already was."""
    raw = client.hget(worker_instances_key(), instance) if instance else None
    record = WorkerRecord.parse(raw) if raw is not None else None
    if record is None or record.offline_at is not None:
        return False
    gone = record.gone_offline(reason, time.time() if now is None else now)
    client.hset(worker_instances_key(), record.instance, gone.encode())
    return True


def forget_stale(client: redis.Redis, now: float) -> list[str]:
    """Drop the instances forgotten by now, or unreadable, and their registered names;
    their ids."""
    records = client.hgetall(worker_instances_key())
    stale = []
    for instance, raw in records.items():
        record = WorkerRecord.parse(raw)
        if record is None or record.is_forgotten(now):
            stale.append(instance)
    gone = set(stale)
    orphans = [i for i in client.hkeys(worker_registered_key()) if i not in records or i in gone]
    if stale:
        client.hdel(worker_instances_key(), *stale)
    if orphans:
        client.hdel(worker_registered_key(), *orphans)
    return stale


#: Seconds a bridge's watching mark lasts unless renewed (the bridge renews it every
#: `BRIDGE_RENEW` s while it listens).
BRIDGE_WATCH_TTL = 6
BRIDGE_RENEW = 2.0


def note_bridge_watching(client: redis.Redis, now: float | None = None) -> None:
    """A bridge listens now: keep (or start) the time since which one has without a break."""
    pipe = client.pipeline(transaction=False)
    pipe.set(bridge_watch_key(), time.time() if now is None else now, nx=True, ex=BRIDGE_WATCH_TTL)
    pipe.expire(bridge_watch_key(), BRIDGE_WATCH_TTL)
    pipe.execute()


def bridge_watching_for(client: redis.Redis, now: float) -> float:
    """Seconds a bridge has listened without a break (0: none listens)."""
    since = client.get(bridge_watch_key())
    try:
        return max(0.0, now - float(since)) if since is not None else 0.0
    except ValueError:
        return 0.0


def bridge_watched(client: redis.Redis, now: float) -> bool:
    """Whether a bridged worker's silence means it is dead: a bridge has listened for the
    whole timeout. With every bridge down, or one just back that has not heard the
    heartbeats yet (Celery's come every 2 s), a silent bridged worker is not known to be
    dead, and its runs must not become LOST."""
    return bridge_watching_for(client, now) > conf.WORKER_TIMEOUT


def judged_beats(beats: dict[str, Beat], watched: bool, now: float) -> dict[str, Beat]:
    """The beats the reaper judges by: unless a bridge watched (`bridge_watched`), bridged
    workers count as beating now."""
    if watched:
        return beats
    return {name: replace(beat, ts=now) if beat.bridged else beat for name, beat in beats.items()}
