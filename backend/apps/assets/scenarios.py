"""The demo's tour: small tasks that each show one thing Celery does, and the scenarios
(`celery_live.scenarios.Scenario`) that send them, listed in settings (`CELERY_LIVE_SCENARIOS`).

How long each takes comes from settings read from the environment (`CELERY_LIVE_TOUR_*`,
see config/settings.py and the README), so the tests run the whole tour in seconds. The
worker imports this module through `CELERY_IMPORTS` (autodiscovery looks only at `tasks`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from celery import chain, chord, current_app, group, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from django.conf import settings

from celery_live.log import store
from celery_live.log.workers import read_workers
from celery_live.scenarios import Scenario

logger = get_task_logger(__name__)

#: The Beat entry of the `beat` scenario (config/settings.py's CELERY_BEAT_SCHEDULE).
BEAT_ENTRY = "celery-live-tour"
#: Attempts of the retry scenario: the first run and this many retries.
MAX_RETRIES = 3
#: How many times each of the retry scenario's two runs fails before it would succeed:
#: the first recovers at attempt 3 of 4, the second fails every attempt and ends FAILURE.
RETRY_FAILURES = {"recovers": 2, "gives up": MAX_RETRIES + 1}
#: Runs of the rate-limit scenario, and of each side of the priority scenario.
RATE_LIMITED_RUNS = 10
HIGH_PRIORITY_RUNS = 3


class FlakyServiceError(ConnectionError):
    """The retry scenario's failing call (a retryable error, as a timeout would be)."""


class PaymentDeclined(RuntimeError):
    """The failure scenario's exception."""


def _step_delay() -> float:
    return settings.CELERY_LIVE_TOUR_STEP_DELAY


# --- the tasks ------------------------------------------------------------------------------


@shared_task
def tour_step(
    previous: list[str] | None = None, label: str = "step", delay: float | None = None
) -> list[str]:
    """Sleep a moment, then return the labels so far with this one (a chain passes them on)."""
    time.sleep(_step_delay() if delay is None else delay)
    return [*(previous or []), label]


@shared_task
def tour_total(parts: list[list[str]]) -> str:
    """A chord's callback: one line from every header task's result."""
    return f"{len(parts)} parts done: " + ", ".join(label for part in parts for label in part)


@shared_task(
    bind=True,
    autoretry_for=(FlakyServiceError,),
    retry_backoff=True,  # 1 s, 2 s, 4 s: Celery's factor is at least 1 s
    retry_jitter=False,  # the countdown shown is the one Celery waits
    max_retries=MAX_RETRIES,
)
def tour_flaky(self, label: str, failures: int) -> str:
    """Fail the first `failures` attempts, then succeed; autoretry sends each retry. `label`
    names the run on its card."""
    attempt = self.request.retries + 1
    if attempt <= failures:
        raise FlakyServiceError(f"attempt {attempt}: the inventory service answered 503")
    return f"succeeded at attempt {attempt}"


@shared_task(rate_limit=settings.CELERY_LIVE_TOUR_RATE_LIMIT)
def tour_rate_limited(number: int) -> int:
    """A quick task whose worker starts at most `CELERY_LIVE_TOUR_RATE_LIMIT` of them."""
    return number


@shared_task(soft_time_limit=settings.CELERY_LIVE_TOUR_TIME_LIMIT)
def tour_soft_limited() -> str:
    """Work longer than the soft limit, catch SoftTimeLimitExceeded and clean up."""
    try:
        time.sleep(settings.CELERY_LIVE_TOUR_TIME_LIMIT * 3)
    except SoftTimeLimitExceeded:
        logger.warning("soft time limit reached: cleaning up the half-written file")
        return "stopped at the soft limit, cleaned up"
    return "finished before the soft limit"


@shared_task(time_limit=settings.CELERY_LIVE_TOUR_TIME_LIMIT)
def tour_hard_limited() -> str:
    """Work longer than the hard limit: the worker kills the pool process running it."""
    time.sleep(settings.CELERY_LIVE_TOUR_TIME_LIMIT * 3)
    return "never returned"


@shared_task
def tour_logs(lines: int = 5) -> int:
    """Write `lines` log lines with Celery's task logger, a step apart."""
    logger.info("starting the import of %d batches", lines)
    for batch in range(1, lines + 1):
        time.sleep(_step_delay() / 2)
        if batch == lines - 1:
            logger.warning("batch %d: 2 rows skipped (no price)", batch)
        else:
            logger.info("batch %d of %d imported", batch, lines)
    logger.info("import finished")
    return lines


@shared_task
def tour_beat_tick() -> str:
    """What Beat sends on schedule: says when it ran."""
    now = datetime.now(UTC).strftime("%H:%M:%S")
    logger.info("periodic check ran at %s UTC", now)
    return f"ran at {now} UTC"


def _charge(order: int) -> None:
    raise PaymentDeclined(f"card declined for order {order}: insufficient funds")


@shared_task
def tour_failure(order: int = 42) -> None:
    """Raise an exception a few frames deep, for its traceback."""
    time.sleep(_step_delay() / 2)
    _charge(order)


# --- what each scenario sends ---------------------------------------------------------------


def send_retry() -> list[str]:
    return [tour_flaky.delay(label, failures=failures).id for label, failures in RETRY_FAILURES.items()]


def send_rate_limit() -> list[str]:
    return [tour_rate_limited.delay(number).id for number in range(1, RATE_LIMITED_RUNS + 1)]


def priorities() -> tuple[int, int]:
    """(high, low) on this broker: Redis serves priority 0 first (kombu's priority steps),
    RabbitMQ the highest number (on a queue declared with `x-max-priority`)."""
    if current_app.connection_for_write().transport.driver_type == "redis":
        return 0, 9
    return 9, 0


def backlog_size() -> int:
    """Low-priority runs enough that some wait in the broker after the workers took what they
    may hold (each process one running plus `worker_prefetch_multiplier` reserved): only
    those can be overtaken."""
    held = (current_app.conf.worker_prefetch_multiplier + 1) * max(_online_concurrency(), 1)
    return max(settings.CELERY_LIVE_TOUR_BACKLOG, held + 4)


def _online_concurrency() -> int:
    """Worker processes online, as the workers' heartbeats say (0 before the first)."""
    now = time.time()
    return sum(
        record.concurrency or 1 for record in read_workers(store.client(), now) if record.is_online(now)
    )


def send_priority() -> list[str]:
    """The backlog's first runs are long: while they keep the worker processes busy, the rest
    of the backlog is sent and waits, and so do the urgent runs, however slowly they are sent."""
    high, low = priorities()
    delay = _step_delay() / 2
    long_runs = max(1, _online_concurrency())
    backlog = [
        tour_step.apply_async(
            kwargs={"label": f"low {n}", "delay": delay * (6 if n <= long_runs else 1)}, priority=low
        ).id
        for n in range(1, backlog_size() + 1)
    ]
    urgent = [
        tour_step.apply_async(kwargs={"label": f"high {n}", "delay": delay}, priority=high).id
        for n in range(1, HIGH_PRIORITY_RUNS + 1)
    ]
    return urgent + backlog


def send_time_limit() -> list[str]:
    return [tour_soft_limited.delay().id, tour_hard_limited.delay().id]


def send_chain() -> list[str]:
    last = chain(
        tour_step.s(label="download"), tour_step.s(label="resize"), tour_step.s(label="upload")
    ).apply_async()
    ids = []
    node = last
    while node is not None:  # a chain's result is its last step's, each step's parent the one before
        ids.append(node.id)
        node = node.parent
    return ids[::-1]


def send_group() -> list[str]:
    result = group(tour_step.s(label=f"page {n}") for n in range(1, 5)).apply_async()
    return [child.id for child in result.results]


def send_chord() -> list[str]:
    workflow = chord((tour_step.s(label=f"shard {n}") for n in range(1, 4)), tour_total.s())
    callback = workflow.freeze()  # the ids, before sending: the callback's parent is the header
    workflow.apply_async()
    return [child.id for child in callback.parent.results] + [callback.id]


def send_countdown() -> list[str]:
    step = settings.CELERY_LIVE_TOUR_COUNTDOWN
    return [
        tour_step.apply_async(kwargs={"label": f"in {n * step:g} s"}, countdown=n * step).id
        for n in (1, 2, 3)
    ]


def send_beat() -> list[str]:
    """ "Run now": send the Beat entry's task at once, as Beat sends it."""
    entry = settings.CELERY_BEAT_SCHEDULE[BEAT_ENTRY]
    task = current_app.signature(
        entry["task"], args=entry.get("args", ()), kwargs=entry.get("kwargs", {}), **entry.get("options", {})
    )
    return [task.apply_async().id]


def send_logs() -> list[str]:
    return [tour_logs.delay().id]


def send_failure() -> list[str]:
    return [tour_failure.delay().id]


# --- the scenarios, in the tour's order ----------------------------------------------------

RETRY = Scenario(
    name="retry",
    title="Retry with exponential backoff",
    description="Two runs call a flaky service; autoretry_for catches the error and sends the same "
    "task again with a countdown that doubles (1 s, 2 s, 4 s). The first recovers at attempt 3 of 4, "
    "the second runs out of retries and ends FAILURE.",
    send=send_retry,
)
RATE_LIMIT = Scenario(
    name="rate-limit",
    title="Rate limit",
    description=f"Ten runs of a task declared with rate_limit={settings.CELERY_LIVE_TOUR_RATE_LIMIT!r} "
    "reach the worker at once. The worker holds them, taking up its prefetch slots meanwhile, and starts "
    "them at that pace: the limit is per worker, enforced where the task runs, not in the broker.",
    send=send_rate_limit,
)
PRIORITY = Scenario(
    name="priority",
    title="Priority",
    description="A backlog of low-priority runs is sent, its first ones long enough to keep every worker "
    "process busy, then three high-priority runs. On Redis, kombu keeps one list per priority and the "
    "worker reads the highest first, so the urgent runs overtake the backlog still waiting in the broker "
    "(not the runs the worker already prefetched).",
    send=send_priority,
)
TIME_LIMIT = Scenario(
    name="time-limit",
    title="Time limits",
    description="Two runs work past their limit. At the soft limit Celery raises SoftTimeLimitExceeded "
    "inside the task, which catches it and cleans up; at the hard limit the worker kills the pool "
    "process and the run ends FAILURE with TimeLimitExceeded.",
    send=send_time_limit,
)
CHAIN = Scenario(
    name="chain",
    title="Chain",
    description="Three steps run one after another, each receiving the previous one's result. Only the "
    "first is sent at once; each later step is sent by the worker when the step before succeeds.",
    send=send_chain,
)
GROUP = Scenario(
    name="group",
    title="Group",
    description="Four tasks are sent together under one group id and run in parallel on whatever "
    "worker processes are free. Each finishes on its own; the group is done when all are.",
    send=send_group,
)
CHORD = Scenario(
    name="chord",
    title="Chord",
    description="A group of three shards, then a callback that gets all their results. The callback "
    "waits in the result backend, which counts the finished shards; the last one to finish sends it.",
    send=send_chord,
)
COUNTDOWN = Scenario(
    name="countdown",
    title="Countdown and ETA",
    description="Three runs are sent now to start later. The worker receives them at once and keeps "
    "them in memory until their ETA, so they wait as RECEIVED with their start time.",
    send=send_countdown,
)
BEAT = Scenario(
    name="beat",
    title="Periodic task (Beat)",
    description="Celery Beat, a process of its own, sends a task on a schedule from CELERY_BEAT_SCHEDULE; "
    "workers run it like any other. Run now sends the same task at once, without waiting for Beat.",
    send=send_beat,
)
LOGS = Scenario(
    name="logs",
    title="Task logging",
    description="A task writes lines with get_task_logger as it works. Each line is a task.log event, "
    "streamed into the run's timeline as it is written, with the task's id and level.",
    send=send_logs,
)
FAILURE = Scenario(
    name="failure",
    title="Failure",
    description="A task raises an exception a few calls deep. The worker catches it, stores it and its "
    "traceback in the result backend, and the run ends FAILURE with the traceback on its page.",
    send=send_failure,
)
