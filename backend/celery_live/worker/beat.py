"""Beat -> `beat.sent` events and the schedule registry (log/beat.py).

`beat_init` (the Beat process starting) writes every entry of the schedule with its next
run time, and makes the process's events say "beat". Beat sends an entry through
`Scheduler.apply_entry`, which is wrapped once at import (like the chord wrap in
worker/signals.py), so any Scheduler subclass that keeps it (Celery's own, a database
scheduler) publishes `beat.sent` {"entry", "task", "task_id", "schedule", "next_at",
"last_run_at", "total_run_count", "args", "kwargs"} and updates the registry. The id of
the task Beat sent is caught from `before_task_publish` while `apply_entry` runs
(apply_entry returns nothing: `note_sent`). Nothing here may stop Beat: with Redis away the event is
buffered by the publisher and a registry write is logged and skipped.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import signals
from celery.beat import ScheduleEntry, Scheduler
from celery.schedules import crontab, schedule

from celery_live.log import store
from celery_live.log.beat import BeatEntry, write_entry, write_schedule
from celery_live.log.events import set_process_role
from celery_live.log.publishing import publish
from celery_live.log.vocabulary import EventType, ProcessRole

logger = logging.getLogger(__name__)

#: The ids of the tasks published while this thread is in `apply_entry` (else None).
_sending = threading.local()


def describe_schedule(when: Any) -> str:
    """How often an entry runs, in words: "every 30 s", "every 5 min", a crontab's fields."""
    if isinstance(when, crontab):
        return repr(when).strip("<>")  # "crontab: */5 * * * * (m/h/dM/MY/d)"
    if isinstance(when, schedule):
        seconds = when.run_every.total_seconds()
        for unit, size in (("h", 3600), ("min", 60)):
            if seconds >= size and seconds % size == 0:
                return f"every {seconds / size:g} {unit}"
        return f"every {seconds:g} s"
    return str(when)


def next_at(entry: ScheduleEntry, last_run_at: datetime | None = None) -> float | None:
    """When `entry` runs next (epoch; not before now), counting from `last_run_at` (default:
    its own); None if its schedule cannot say."""
    try:
        remaining = entry.schedule.remaining_estimate(last_run_at or entry.last_run_at)
        return time.time() + max(0.0, remaining.total_seconds())
    except Exception:  # a custom schedule: the entry is shown without its next run
        logger.debug("celery-live: no next run time for Beat entry %s", entry.name, exc_info=True)
        return None


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def describe_entry(entry: ScheduleEntry, **changes: Any) -> BeatEntry:
    """The registry's record of `entry` (with `changes`: after a send)."""
    fields = {
        "name": entry.name,
        "task": entry.task,
        "schedule": describe_schedule(entry.schedule),
        "last_run_at": _epoch(entry.last_run_at),
        "next_at": next_at(entry),
        "total_run_count": entry.total_run_count,
        "args": list(entry.args or ()),
        "kwargs": dict(entry.kwargs or {}),
    }
    return BeatEntry(**{**fields, **changes})


@signals.beat_init.connect(dispatch_uid="celery_live.beat_init")
def on_beat_init(sender: Any = None, **kwargs: Any) -> None:
    """Beat starts: its events say "beat", and the registry gets its whole schedule."""
    set_process_role(ProcessRole.BEAT)
    try:
        entries = list(sender.scheduler.schedule.values())
        write_schedule(store.client(), [describe_entry(entry) for entry in entries])
    except Exception:
        logger.warning("celery-live: could not write Beat's schedule to Redis", exc_info=True)


def note_sent(task_id: str) -> None:
    """A task message is being sent (worker/signals.py `before_task_publish`): if Beat is
    sending an entry in this thread, that entry's run is this one."""
    sent = getattr(_sending, "ids", None)
    if sent is not None:
        sent.append(task_id)


def publish_beat_sent(entry: ScheduleEntry, task_id: str | None) -> None:
    """`beat.sent` for `entry` (just sent, as `task_id`), and the registry's record of it.

    `apply_entry` gets the entry as it was before this send (Scheduler.tick advances the
    schedule's copy first): this one's run count and last run are the next entry's."""
    now = datetime.now(UTC)
    record = describe_entry(
        entry,
        last_run_at=now.timestamp(),
        next_at=next_at(entry, now),
        total_run_count=entry.total_run_count + 1,
        last_task_id=task_id,
    )
    data = record.as_dict()
    del data["name"], data["last_task_id"]
    publish(
        EventType.BEAT_SENT,
        wait=False,  # Beat's next send must not wait for its monitor
        name=entry.task,
        data={"entry": record.name, "task_id": task_id, **data},
    )
    try:
        write_entry(store.client(), record)
    except Exception:
        logger.warning("celery-live: could not update Beat entry %s in Redis", entry.name, exc_info=True)


def _publishing_sends(apply_entry: Callable[..., Any]) -> Callable[..., Any]:
    """`Scheduler.apply_entry`, then `beat.sent` (whatever it did: it logs its own errors)."""

    @functools.wraps(apply_entry)
    def wrapper(self: Scheduler, entry: ScheduleEntry, producer: Any = None) -> Any:
        _sending.ids = []
        try:
            return apply_entry(self, entry, producer=producer)
        finally:
            sent, _sending.ids = _sending.ids, None
            try:
                publish_beat_sent(entry, sent[0] if sent else None)
            except Exception:
                logger.exception("celery-live: could not publish beat.sent for %s", entry.name)

    wrapper.celery_live = True  # type: ignore[attr-defined]
    return wrapper


if not getattr(Scheduler.apply_entry, "celery_live", False):
    Scheduler.apply_entry = _publishing_sends(Scheduler.apply_entry)
