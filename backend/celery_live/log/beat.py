"""Beat's schedule, as the Beat process last wrote it to Redis (one hash, by entry name).

Beat writes every entry when it starts (`write_schedule`: the schedule it runs replaces
whatever an earlier Beat wrote) and one entry each time it sends it (`write_entry`); the
pages read it (`read_schedule`) for the rows they draw first, and follow `beat.sent`
events from then on (stream/beat.py). worker/beat.py is the Beat side.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import redis
from django.utils.text import slugify

from celery_live.log.events import jsonable
from celery_live.log.store import beat_schedule_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BeatEntry:
    """One entry of Beat's schedule. Times are epoch seconds."""

    name: str
    task: str
    #: How often, in words ("every 30 s", a crontab's fields).
    schedule: str
    last_run_at: float | None = None
    next_at: float | None = None
    total_run_count: int = 0
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    #: The run Beat sent last (None: none since this Beat started).
    last_task_id: str | None = None

    @property
    def slug(self) -> str:
        """A name for the entry's HTML id: readable, and unique though slugs may collide."""
        digest = hashlib.sha1(self.name.encode(), usedforsecurity=False).hexdigest()[:8]
        return f"{slugify(self.name)[:40]}-{digest}"

    @property
    def next_at_iso(self) -> str:
        """`next_at` in ISO 8601 (UTC), for an HTML `<time datetime>`; "" if not known."""
        return "" if self.next_at is None else datetime.fromtimestamp(self.next_at, UTC).isoformat()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BeatEntry:
        """The entry `data` describes (keys this version does not know are left out)."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def as_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def write_schedule(client: redis.Redis, entries: Iterable[BeatEntry]) -> None:
    """Replace the registry with `entries` (one transaction: readers never see it half done)."""
    pipe = client.pipeline()
    pipe.delete(beat_schedule_key())
    mapping = {entry.name: json.dumps(entry.as_dict()) for entry in entries}
    if mapping:
        pipe.hset(beat_schedule_key(), mapping=mapping)
    pipe.execute()


def write_entry(client: redis.Redis, entry: BeatEntry) -> None:
    """Store one entry as it is now (after Beat sent it)."""
    client.hset(beat_schedule_key(), entry.name, json.dumps(entry.as_dict()))


def read_schedule(client: redis.Redis) -> list[BeatEntry]:
    """Every entry of the registry, by name; an entry that does not read is left out (logged)."""
    entries = []
    for name, raw in sorted(client.hgetall(beat_schedule_key()).items()):
        try:
            entries.append(BeatEntry.from_dict(json.loads(raw)))
        except (TypeError, ValueError):
            logger.warning("celery-live: skipping unreadable Beat entry %r", name)
    return entries
