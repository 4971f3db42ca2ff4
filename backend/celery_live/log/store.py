"""Where the log lives: every Redis key it uses, and this process's client for it.

All keys start with `CELERY_LIVE_STREAM_KEY` ("celery-live:events"), so one prefix finds
(or removes) all of the dashboard's data in a Redis shared with others.
"""

from __future__ import annotations

import redis

from celery_live.conf import conf

#: The recorder's consumer group on the stream: each event is recorded by one recorder.
RECORDER_GROUP = "celery-live-recorder"

#: How every synchronous client of the log connects: a dead Redis is noticed within
#: seconds, and an idle connection is checked before it is used again.
CLIENT_OPTIONS = {
    "decode_responses": True,
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    "health_check_interval": 30,
}


def stream_key() -> str:
    """The stream of every event, in log order (what `?since=` reads)."""
    return conf.STREAM_KEY


def task_key(task_id: str) -> str:
    """One run's events, in log order (`GET /api/tasks/<id>/`)."""
    return f"{conf.STREAM_KEY}:task:{task_id}"


def runs_key() -> str:
    """Runs by the time of their first event (the list of runs, newest first)."""
    return f"{conf.STREAM_KEY}:runs"


def workers_key() -> str:
    """Worker hostname -> its last heartbeat (`celery_live.log.workers.Beat`)."""
    return f"{conf.STREAM_KEY}:workers"


def worker_instances_key() -> str:
    """Worker instance -> what its last heartbeat said (`celery_live.log.workers.WorkerRecord`)."""
    return f"{conf.STREAM_KEY}:worker-instances"


def worker_registered_key() -> str:
    """Worker instance -> the task names it registers (written when they change)."""
    return f"{conf.STREAM_KEY}:worker-registered"


def reaper_lock_key() -> str:
    """Held for a moment by the one reaper that acts (any number of recorders run one)."""
    return f"{conf.STREAM_KEY}:reaper-lock"


def reaper_mark_key(what: str, task_id: str) -> str:
    """Set once the reaper did `what` for a run, so no other reaper does it again."""
    return f"{conf.STREAM_KEY}:{what}:{task_id}"


def queues_key() -> str:
    """The names of every queue known (configured, consumed by a worker, or seen on a run)."""
    return f"{conf.STREAM_KEY}:queues"


def queue_depths_key() -> str:
    """Queue name -> its last sample (`celery_live.log.queues.QueueSample`)."""
    return f"{conf.STREAM_KEY}:queue-depths"


def queue_sampled_at_key() -> str:
    """When the queue sampler last looked at the broker (epoch seconds)."""
    return f"{conf.STREAM_KEY}:queue-sampled-at"


def queue_sampler_key() -> str:
    """Held (with a TTL) by the one process that samples queues (any number of recorders
    run a sampler)."""
    return f"{conf.STREAM_KEY}:queue-sampler"


def pruned_runs_key() -> str:
    """What `prune_history` deleted, counted for `/metrics` (runs/metrics.py)."""
    return f"{conf.STREAM_KEY}:pruned-runs"


def beat_schedule_key() -> str:
    """Beat's schedule as its process last wrote it, a hash by entry name (log/beat.py)."""
    return f"{conf.STREAM_KEY}:beat-schedule"


def dedupe_key(identity: str) -> str:
    """Taken by the first event published with this identity (`publish(dedupe=...)`): the
    same transition published again (a second bridge; Celery's `task-sent` after our
    signal's) is dropped."""
    return f"{conf.STREAM_KEY}:dedupe:{identity}"


def sent_dedupe_key(task_id: str, retries: int) -> str:
    """The dedupe key of a message's `task.sent`, whichever path publishes it first: the
    sender's `before_task_publish` (worker/signals.py) or Celery's `task-sent` (bridge/)."""
    return dedupe_key(f"sent:{task_id}:{retries}")


def bridge_watch_key() -> str:
    """Since when (epoch seconds) a bridge has read Celery's events without a break; it
    expires when no bridge renews it (`celery_live.log.workers.note_bridge_watching`)."""
    return f"{conf.STREAM_KEY}:bridge-watching"


def instrumented_key(hostname: str) -> str:
    """Set while a worker of this hostname runs celery-live's worker side (its heartbeat
    step): the bridge leaves that worker's Celery events alone, its signals say more."""
    return f"{conf.STREAM_KEY}:instrumented:{hostname}"


#: Seconds an instrumented worker's mark outlives its last heartbeat (2 s apart): a worker
#: killed without a goodbye stops being skipped by the bridge this long after.
INSTRUMENTED_TTL = 30


def mark_instrumented(client: redis.Redis, hostname: str) -> None:
    """Mark `hostname` as an instrumented worker for `INSTRUMENTED_TTL` s (the heartbeat
    step, before the worker's consumer starts; each beat's `record_worker` renews it)."""
    client.set(instrumented_key(hostname), "1", ex=INSTRUMENTED_TTL)


_client: redis.Redis | None = None


#: What a request that finds Redis away is told, and when to retry (seconds): the pages'
#: middleware and the API answer 503 with them.
UNREACHABLE = "Redis is unreachable right now; try again in a moment."
RETRY_AFTER = 5


def client() -> redis.Redis:
    """This process's client for the log (redis-py's pool opens new connections after a
    fork, so prefork children may share the object)."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(conf.redis_url, **CLIENT_OPTIONS)
    return _client
