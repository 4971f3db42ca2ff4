"""Worker *instances*: which process of a worker is alive, and whether a run's is gone.

A hostname is not a process. `make run`, systemd or Kubernetes restart a killed worker
within seconds under the same name (`celery@host`); judged by name, the new process
looks like the old one and the old one's runs stay "running" forever. So every worker
main process is an instance, `<pid>-<start time in ms>`: its heartbeats (heartbeat.py)
carry it, each `task.received` records it on the run, and a run whose instance is not
the one beating for its hostname (a newer one is) lost its process.

The registry is one Redis hash, hostname -> JSON `{"ts", "instance"}` (the last beat of
the newest instance of that hostname).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import redis

from celery_live.conf import conf
from celery_live.log.store import workers_key

#: This process's instance id, once it has started beating as a worker (set_instance).
_instance: str | None = None


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

    @classmethod
    def parse(cls, raw: str) -> Beat:
        """A hash value: JSON, or a bare timestamp (written before instances existed)."""
        try:
            value: Any = json.loads(raw)
        except ValueError:
            return cls(ts=0.0)
        if isinstance(value, (int, float)):
            return cls(ts=float(value))
        return cls(ts=float(value.get("ts") or 0), instance=value.get("instance"))

    def encode(self) -> str:
        return json.dumps({"ts": self.ts, "instance": self.instance})

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
