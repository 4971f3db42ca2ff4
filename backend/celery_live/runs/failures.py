"""Failures grouped: runs that ended FAILURE, by exception type and message.

A message that carries numbers or ids ("Failed at iteration 2 of 3", "order
8f14e45f-ceea-467f-a0e6-2c1d2c5ae2a1 not found") would make a group of its own per run, so
a group's *key* is the exception with those replaced: a UUID by `<uuid>`, a `0x…` number
or a run of 16 or more hex digits by `<id>`, every other run of digits by `<n>`
("ValueError: Failed at iteration <n> of <n>"). Words, quoted ones included, are kept:
`KeyError: 'user'` and `KeyError: 'email'` are usually two bugs. Only the first
`KEY_CHARS` characters of an exception count (a longer one's key ends with "…").

A key is also a filter of the runs list (`/runs/?exception=<key>`, `runs/filters.py`):
`pattern(key)` is a regular expression, for the database (Django's `__regex`: only escaped
characters, classes and bounds, which SQLite's Python `re` and PostgreSQL's engine read
alike) and for live runs, matching the exceptions whose key it is. Only a key the grouping
can make is accepted (`is_key`): in one, a placeholder is never followed by a character it
could have taken, so its expression matches in one way only and cannot backtrack (a made-up
`<id>a<id>a…` against a long run of hex digits would).

LOST runs (a worker died) are not failures here: they carry the reaper's reason, not an
exception, and the list's `state=LOST` finds them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max, Min

from celery_live.log.vocabulary import State

#: Characters of an exception that make its key.
KEY_CHARS = 300
TRUNCATED = "…"
_HEX = "[0-9a-fA-F]"
#: Placeholder -> the expression of what it replaces (tried in this order at each place),
#: and an example of it (`is_key`).
PLACEHOLDERS = {
    "<uuid>": (
        f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
        "00000000-0000-0000-0000-000000000000",
    ),
    "<id>": (f"0[xX]{_HEX}+|{_HEX}{{16,}}", "0x0"),
    "<n>": ("[0-9]+", "1"),
}
#: The longest key: every character a one-digit number, and the mark of a longer exception.
KEY_MAX_LENGTH = KEY_CHARS * len("<n>") + len(TRUNCATED)
_TOKENS = re.compile("|".join(f"({regex})" for regex, _ in PLACEHOLDERS.values()))
_SPLIT = re.compile("(" + "|".join(map(re.escape, PLACEHOLDERS)) + ")")
_BY_GROUP = list(PLACEHOLDERS)


def _normalised(text: str) -> str:
    return _TOKENS.sub(lambda m: _BY_GROUP[m.lastindex - 1], text)


def group_key(exception: str | None) -> str:
    """The group of an exception ("Type: message", as a run keeps it): numbers and ids replaced."""
    text = exception or ""
    key = _normalised(text[:KEY_CHARS])
    return key + TRUNCATED if len(text) > KEY_CHARS else key


def is_key(key: str) -> bool:
    """Whether `key` is one `group_key` makes (its placeholders filled in and grouped again,
    it comes back unchanged)."""
    body = key.removesuffix(TRUNCATED)
    example = "".join(PLACEHOLDERS[part][1] if part in PLACEHOLDERS else part for part in _SPLIT.split(body))
    return len(key) <= KEY_MAX_LENGTH and _normalised(example) == body


@lru_cache(maxsize=256)
def pattern(key: str) -> str:
    """A regular expression matching the exceptions whose `group_key` is `key` (a key
    `is_key` accepts)."""
    truncated = key.endswith(TRUNCATED)
    parts = _SPLIT.split(key.removesuffix(TRUNCATED))
    regex = "".join(
        f"({PLACEHOLDERS[part][0]})" if part in PLACEHOLDERS else re.escape(part) for part in parts
    )
    return "^" + regex + ("" if truncated else "$")


def matches(key: str, exception: str | None) -> bool:
    """Whether `exception` is in the group `key` (as the database filter decides)."""
    return exception is not None and re.search(pattern(key), exception) is not None


def split_key(key: str) -> tuple[str, str]:
    """A key's exception type and message ("" for a type when it names none)."""
    exc_type, sep, message = key.partition(": ")
    if sep and exc_type and " " not in exc_type:
        return exc_type, message
    return "", key


def dom_id(key: str) -> str:
    """A short id for the group in the page (its key can hold any character)."""
    return "failure-" + hashlib.blake2s(key.encode(), digest_size=6).hexdigest()


@dataclass
class FailureGroup:
    """One group of the inbox: how many runs, when, of which tasks."""

    key: str
    count: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    names: set[str] = field(default_factory=set)
    #: The newest exception as it was raised (its numbers and ids), for an example.
    example: str = ""

    @property
    def exc_type(self) -> str:
        return split_key(self.key)[0]

    @property
    def message(self) -> str:
        return split_key(self.key)[1]

    @property
    def dom_id(self) -> str:
        return dom_id(self.key)

    @property
    def sorted_names(self) -> list[str]:
        return sorted(self.names)

    def add(
        self, exception: str, name: str | None, count: int, first: float | None, last: float | None
    ) -> None:
        """Fold in `count` runs of one exception (and task name) seen from `first` to `last`."""
        self.count += count
        if first is not None and (self.first_seen is None or first < self.first_seen):
            self.first_seen = first
        if last is not None and (self.last_seen is None or last >= self.last_seen):
            self.last_seen, self.example = last, exception
        elif not self.example:
            self.example = exception
        if name:
            self.names.add(name)

    def as_dict(self) -> dict[str, Any]:
        """The group as `GET /api/failures/` shows it."""
        return {
            "key": self.key,
            "exc_type": self.exc_type,
            "message": self.message,
            "example": self.example,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "names": self.sorted_names,
        }


def group(rows: list[tuple[str, str, int, float | None, float | None]]) -> list[FailureGroup]:
    """Groups from (exception, name, count, first, last) rows, the most recent first."""
    groups: dict[str, FailureGroup] = {}
    for exception, name, count, first, last in rows:
        key = group_key(exception)
        groups.setdefault(key, FailureGroup(key)).add(exception, name, count, first, last)
    return sorted(groups.values(), key=lambda g: (g.last_seen or 0.0, g.key), reverse=True)


def failure_groups() -> tuple[list[FailureGroup], str | None]:
    """Every recorded failure, grouped, and the id of the newest recorded event: what the
    groups count up to, so a page's socket replays exactly the failures after them.

    One aggregate query (by exception and task name; the keys are made here, as SQL cannot
    normalise portably) and the cursor's, both in one snapshot of the database: a failure
    the recorder writes in between is in both or in neither. SQLite's read transaction is
    one; PostgreSQL needs REPEATABLE READ for it, which can be asked only at a transaction's
    start (inside a caller's transaction it is READ COMMITTED: a window of a few ms).
    """
    from celery_live.runs.history import newest_recorded_id
    from celery_live.runs.models import Run

    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor_id = newest_recorded_id()
        rows = (
            Run.objects.filter(state=State.FAILURE)
            .values_list("exception", "name")
            .annotate(count=Count("id"), first=Min("finished_at"), last=Max("finished_at"))
            .order_by()
        )
        return group(list(rows)), cursor_id
