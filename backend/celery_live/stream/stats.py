"""The charts' numbers: throughput, failures, queue wait and run time per task name over the
last 15 minutes, folded from runs' events (live) or rows (the database). Pure: no server.

- Time is cut into `STEP`-second buckets; the `WINDOW` keeps the last 15 minutes of them.
  Each bucket of each task name (and of every name together, `ALL`) counts the runs that
  started and that finished in it, the failed among those (FAILURE), and keeps two
  histograms: the queue wait (sent to started) of the runs that started in it, the run
  time (started to the end) of the runs that finished in it.
- Histograms count seconds in log-scale bins, `BINS_PER_DECADE` a decade from 1 ms up:
  they add up and subtract (a name's totals over the window are kept as buckets come and
  go, not summed again), and a percentile is the middle of the bin that holds it, within
  6 % of the value (a bin spans 12 %).
- A run is counted once however it is seen: the `Aggregator` remembers, per run, whether
  its start and its end are counted (a live event and the database's row of the same
  run, seeding, count once), and when it was sent and started, for the times.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from celery_live.log.vocabulary import FINAL_STATES, EventType, State

#: Seconds per bucket: the charts' resolution.
STEP = 5
#: Seconds the charts show.
WINDOW = 15 * 60
#: The scope of every task name together.
ALL = ""
#: The name of a run none of whose events named its task.
UNKNOWN = "unknown"
#: Bins per tenfold of seconds, and the first bin's lower edge: 1 ms and under share it.
BINS_PER_DECADE = 20
LOWEST_BIN = -3 * BINS_PER_DECADE
#: The percentiles of a bucket (`Tally.row`) and of a name's whole window (`Window.summary`).
ROW_PERCENTILES = (0.5, 0.95)
SUMMARY_PERCENTILES = (0.5, 0.95, 0.99)
#: Runs whose start and end the aggregator remembers (the oldest are forgotten first).
MAX_RUNS = 50_000
#: How long before the window a run may have been first seen (sent) and still be read from
#: the database: the query's bound on its indexed `first_seen`, as neither `started_at` nor
#: `finished_at` is indexed. A run that waited longer is missed by the page load only.
LOOKBACK = 3600

Histogram = dict[int, int]


def bin_of(seconds: float) -> int:
    """The bin that counts `seconds`."""
    if seconds <= 10 ** (LOWEST_BIN / BINS_PER_DECADE):
        return LOWEST_BIN
    return max(LOWEST_BIN, math.floor(math.log10(seconds) * BINS_PER_DECADE))


def bin_edges(index: int) -> tuple[float, float]:
    """The seconds bin `index` counts: from its lower edge, up to (not including) its upper."""
    return 10 ** (index / BINS_PER_DECADE), 10 ** ((index + 1) / BINS_PER_DECADE)


def rounded(seconds: float) -> float:
    """Four significant digits: more than the bins hold, and short JSON."""
    return float(f"{seconds:.4g}")


def percentile(histogram: Histogram, q: float) -> float | None:
    """The `q` quantile (0..1) of what `histogram` counts: the middle (geometric) of the bin
    holding the value of rank ceil(q * n); None when it counts nothing."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank, seen = max(1, math.ceil(q * total)), 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return rounded(10 ** ((index + 0.5) / BINS_PER_DECADE))
    return None  # unreachable: the bins hold `total`


def merge(into: Histogram, other: Histogram, sign: int = 1) -> None:
    """Add (`sign` 1) or take away (-1) `other`'s counts, dropping bins that empty."""
    for index, count in other.items():
        left = into.get(index, 0) + sign * count
        if left:
            into[index] = left
        else:
            into.pop(index, None)


@dataclass
class Tally:
    """What one bucket (or a whole window) of one name counts."""

    started: int = 0
    finished: int = 0
    failed: int = 0
    wait: Histogram = field(default_factory=dict)
    run: Histogram = field(default_factory=dict)

    def add(self, other: Tally, sign: int = 1) -> None:
        self.started += sign * other.started
        self.finished += sign * other.finished
        self.failed += sign * other.failed
        merge(self.wait, other.wait, sign)
        merge(self.run, other.run, sign)

    @property
    def empty(self) -> bool:
        return not (self.started or self.finished)

    def row(self) -> list[Any]:
        """`[started, finished, failed, wait p50, wait p95, run p50, run p95]`."""
        return [
            self.started,
            self.finished,
            self.failed,
            *(percentile(self.wait, q) for q in ROW_PERCENTILES),
            *(percentile(self.run, q) for q in ROW_PERCENTILES),
        ]


class Window:
    """The buckets of the last `WINDOW` seconds, per task name and for `ALL`, with each
    name's totals over them, and what changed since `take_changes` was last called."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[int, Tally]] = {}
        self.totals: dict[str, Tally] = {}
        #: Bucket -> the names that have it, so eviction touches only what it drops.
        self._names_at: dict[int, set[str]] = {}
        #: The oldest bucket kept; older times are not counted.
        self.oldest: int | None = None
        #: Name -> the buckets that changed (an empty set: only its totals did).
        self.changed: dict[str, set[int]] = {}

    def _count(
        self, name: str, ts: float, started: int, finished: int, failed: int, seconds: float | None
    ) -> None:
        """Add to the bucket of `ts` and to the totals, of `name` and of `ALL`: `started`,
        `finished`, `failed` runs, and `seconds` to the wait histogram (a start) or the run
        time one (an end). Called once per run and transition: kept to plain dict updates."""
        index = math.floor(ts / STEP)
        if self.oldest is not None and index < self.oldest:
            return
        timed = None if seconds is None else bin_of(max(0.0, seconds))
        for key in (name, ALL):
            buckets = self.buckets.get(key)
            if buckets is None:
                buckets = self.buckets[key] = {}
                self.totals[key] = Tally()
            bucket = buckets.get(index)
            if bucket is None:
                bucket = buckets[index] = Tally()
                self._names_at.setdefault(index, set()).add(key)
            for tally in (bucket, self.totals[key]):
                tally.started += started
                tally.finished += finished
                tally.failed += failed
                if timed is not None:
                    histogram = tally.wait if started else tally.run
                    histogram[timed] = histogram.get(timed, 0) + 1
            changed = self.changed.get(key)
            if changed is None:
                changed = self.changed[key] = set()
            changed.add(index)

    def count_start(self, name: str, ts: float, wait: float | None) -> None:
        """A run of `name` started at `ts` after waiting `wait` seconds (None: unknown)."""
        self._count(name, ts, 1, 0, 0, wait)

    def count_end(self, name: str, ts: float, failed: bool, run_time: float | None) -> None:
        """A run of `name` ended at `ts` (`failed`: FAILURE) after running `run_time` s."""
        self._count(name, ts, 0, 1, int(failed), run_time)

    def evict(self, now: float) -> None:
        """Drop the buckets that left the window by `now`, and their counts from the totals."""
        oldest = math.floor((now - WINDOW) / STEP)
        for index in [i for i in self._names_at if i < oldest]:
            for key in self._names_at.pop(index):
                tally = self.buckets[key].pop(index)
                total = self.totals[key]
                total.add(tally, -1)
                self.changed.setdefault(key, set())
                if not self.buckets[key]:
                    del self.buckets[key], self.totals[key]
        self.oldest = oldest if self.oldest is None else max(self.oldest, oldest)

    def take_changes(self) -> dict[str, set[int]]:
        """What changed since the last call (name -> buckets), and start afresh."""
        changed, self.changed = self.changed, {}
        return changed

    def points(self, name: str, indices: Iterable[int] | None = None) -> list[list[Any]]:
        """`[bucket start (epoch s), *Tally.row()]` of `name`'s buckets (all, or `indices`;
        a bucket evicted since reads as empty), oldest first."""
        buckets = self.buckets.get(name, {})
        wanted = sorted(buckets if indices is None else indices)
        return [[index * STEP, *buckets.get(index, Tally()).row()] for index in wanted]

    def names(self) -> list[str]:
        """The task names with runs in the window, in order."""
        return sorted(name for name in self.totals if name != ALL)

    def summary(self, name: str) -> dict[str, Any]:
        """`name`'s whole window: counts, failure rate, percentiles of wait and run time."""
        total = self.totals.get(name, Tally())
        return {
            "started": total.started,
            "finished": total.finished,
            "failed": total.failed,
            "failure_rate": (total.failed / total.finished) if total.finished else None,
            "wait": {f"p{round(q * 100)}": percentile(total.wait, q) for q in SUMMARY_PERCENTILES},
            "run": {f"p{round(q * 100)}": percentile(total.run, q) for q in SUMMARY_PERCENTILES},
        }

    def histogram(self, name: str) -> list[list[float]]:
        """`name`'s run times over the window: `[lower edge, upper edge, count]` of every bin
        from the first to the last that counts any (empty ones between included)."""
        counts = self.totals.get(name, Tally()).run
        if not counts:
            return []
        return [
            [rounded(low), rounded(high), counts.get(index, 0)]
            for index in range(min(counts), max(counts) + 1)
            for low, high in [bin_edges(index)]
        ]


class _Seen:
    """What the aggregator remembers of one run."""

    __slots__ = ("ended", "name", "sent", "started")

    def __init__(self) -> None:
        self.name: str | None = None
        self.sent: float | None = None
        self.started: float | None = None
        self.ended = False


class Aggregator:
    """Folds runs into a `Window`, from their events (`fold`) or database rows (`fold_row`),
    counting each run's start and end once."""

    def __init__(self, max_runs: int = MAX_RUNS) -> None:
        self.window = Window()
        self.max_runs = max_runs
        self._runs: OrderedDict[str, _Seen] = OrderedDict()

    def _seen(self, task_id: str) -> _Seen:
        seen = self._runs.get(task_id)
        if seen is None:
            seen = self._runs[task_id] = _Seen()
            if len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)
        return seen

    def _start(self, seen: _Seen, name: str | None, ts: float) -> None:
        started = seen.started is not None
        seen.started = ts if seen.started is None else min(seen.started, ts)
        if not started:
            wait = ts - seen.sent if seen.sent is not None else None
            self.window.count_start(name or UNKNOWN, ts, wait)

    def _end(self, seen: _Seen, name: str | None, ts: float, state: str, run_time: float | None) -> None:
        if seen.ended:
            return
        seen.ended = True
        if seen.started is not None:
            run_time = ts - seen.started
        self.window.count_end(name or UNKNOWN, ts, state == State.FAILURE, run_time)

    def fold(self, event: dict[str, Any]) -> None:
        """One event of the log (any type; those of no run are ignored)."""
        task_id, ts = event.get("task_id"), event.get("ts")
        if not task_id or not isinstance(ts, (int, float)):
            return
        seen = self._seen(task_id)
        seen.name = seen.name or event.get("name")
        etype, state = event.get("type"), event.get("state")
        if etype == EventType.TASK_SENT:
            seen.sent = ts if seen.sent is None else min(seen.sent, ts)
        elif etype == EventType.TASK_STARTED:
            self._start(seen, seen.name, ts)
        elif state in FINAL_STATES:
            # A run whose start was not seen: the worker's own count of its run time.
            runtime = (event.get("data") or {}).get("runtime")
            self._end(seen, seen.name, ts, state, runtime if isinstance(runtime, (int, float)) else None)

    def fold_row(self, row: tuple) -> None:
        """A run as the database keeps it: `RUN_COLUMNS`."""
        task_id, name, state, sent_at, started_at, finished_at = row
        seen = self._seen(task_id)
        seen.name = seen.name or name or None
        if sent_at is not None:
            seen.sent = sent_at if seen.sent is None else min(seen.sent, sent_at)
        if started_at is not None:
            self._start(seen, seen.name, started_at)
        if finished_at is not None and state in FINAL_STATES:
            self._end(seen, seen.name, finished_at, state, None)


#: The columns `Aggregator.fold_row` takes.
RUN_COLUMNS = ("task_id", "name", "state", "sent_at", "started_at", "finished_at")


def recent_rows(now: float, name: str | None = None) -> list[tuple]:
    """The database's runs that started or ended in the window before `now` (of task
    `name` only, if given): one query."""
    from celery_live.runs.models import Run

    start = now - WINDOW
    runs = Run.objects.filter(first_seen__gte=start - LOOKBACK).filter(
        Q(started_at__gte=start) | Q(finished_at__gte=start)
    )
    if name is not None:
        runs = runs.filter(name=name)
    return list(runs.order_by().values_list(*RUN_COLUMNS))


def chart_payload(window: Window, name: str, now: float, indices: Iterable[int] | None = None) -> dict:
    """What a chart page draws (charts.js): `name`'s buckets (all: `full`, the page replaces
    what it has; else the changed ones), and for one task name its run-time histogram."""
    payload: dict[str, Any] = {
        "step": STEP,
        "window": WINDOW,
        "now": round(now, 3),
        "full": indices is None,
        "points": window.points(name, indices),
    }
    if name != ALL:
        payload["histogram"] = window.histogram(name)
    return payload
