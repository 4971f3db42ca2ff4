"""What `/metrics` says of the runs, computed from the database when it is asked.

Nothing is counted in memory: every scrape aggregates the `Run` table (three grouped
queries), so any web process answers the same numbers, and a restart loses none. A counter
must never go down, though, and `prune_history` deletes old runs: what it deletes is first
aggregated the same way and added to a tally in Redis (`note_pruned`), which every scrape
adds back. So `celery_live_runs_total` and the histograms only grow, across restarts and
prunes, as long as Redis keeps its data (were it lost, Prometheus would see one counter reset).

- runs by task name and final state: a counter (a run is counted once it has ended);
- runs by name and state still under way (PENDING … RETRY): a gauge;
- run time (started -> ended) and queue wait (sent -> started) by name: histograms, with
  the upper bounds of `BUCKETS`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import redis
from django.db.models import Count, F, FloatField, Q, QuerySet, Sum, Value
from django.db.models.functions import Greatest

from celery_live.log.store import pruned_runs_key
from celery_live.log.vocabulary import FINAL_STATES
from celery_live.runs.models import Run

#: Upper bounds (seconds) of the histograms' buckets, +Inf aside: from a no-op task to an hour.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass
class Histogram:
    """Observations of one task name: how many fell at or under each of `BUCKETS`
    (cumulative, as Prometheus has it), how many in all, and their sum."""

    le: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    count: int = 0
    total: float = 0.0

    def add(self, other: Histogram) -> None:
        self.le = [a + b for a, b in zip(self.le, other.le, strict=True)]
        self.count += other.count
        self.total += other.total


#: The two histograms: name -> (the start column, the end column).
SPANS = {"run_seconds": ("started_at", "finished_at"), "queue_wait_seconds": ("sent_at", "started_at")}


@dataclass
class RunStats:
    #: (task name, final state) -> runs.
    ended: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (task name, state) -> runs not ended yet (not kept for pruned runs).
    in_flight: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: histogram (a key of SPANS) -> task name -> its observations.
    histograms: dict[str, dict[str, Histogram]] = field(default_factory=lambda: {k: {} for k in SPANS})

    def add(self, other: RunStats) -> RunStats:
        """Add `other`'s ended runs and histograms (not its runs in flight) to these."""
        self.ended.update(other.ended)
        for kind, by_name in other.histograms.items():
            for name, histogram in by_name.items():
                self.histograms[kind].setdefault(name, Histogram()).add(histogram)
        return self


def _histograms(runs: QuerySet, start: str, end: str) -> dict[str, Histogram]:
    """One grouped query: for each task name, its runs with both times, bucketed by
    `end - start` (a clock that went back between two machines counts as 0)."""
    span = Greatest(F(end) - F(start), Value(0.0), output_field=FloatField())
    buckets = {
        f"le_{i}": Count("pk", filter=Q(**{f"{end}__lte": F(start) + bound}))
        for i, bound in enumerate(BUCKETS)
    }
    rows = (
        runs.filter(**{f"{start}__isnull": False, f"{end}__isnull": False})
        .order_by()
        .values("name")
        .annotate(n=Count("pk"), total=Sum(span), **buckets)
    )
    return {
        row["name"]: Histogram([row[f"le_{i}"] for i in range(len(BUCKETS))], row["n"], row["total"] or 0.0)
        for row in rows
    }


def run_stats(runs: QuerySet | None = None) -> RunStats:
    """What `runs` (by default every run kept) add up to, in three queries."""
    runs = Run.objects.all() if runs is None else runs
    stats = RunStats()
    for row in runs.order_by().values("name", "state").annotate(n=Count("pk")):
        key = (row["name"], row["state"])
        (stats.ended if row["state"] in FINAL_STATES else stats.in_flight)[key] += row["n"]
    for kind, (start, end) in SPANS.items():
        stats.histograms[kind] = _histograms(runs, start, end)
    return stats


# --- what was pruned: a Redis hash, field = JSON [what, name, state or bound] --------------


def note_pruned(client: redis.Redis, stats: RunStats) -> None:
    """Add what `prune_history` is deleting to the tally (one round trip)."""
    pipe = client.pipeline(transaction=True)
    key = pruned_runs_key()
    for (name, state), n in stats.ended.items():
        pipe.hincrby(key, json.dumps(["ended", name, state]), n)
    for kind, by_name in stats.histograms.items():
        for name, histogram in by_name.items():
            for bound, n in zip(BUCKETS, histogram.le, strict=True):
                pipe.hincrby(key, json.dumps([kind, name, bound]), n)
            pipe.hincrby(key, json.dumps([kind, name, "count"]), histogram.count)
            pipe.hincrbyfloat(key, json.dumps([kind, name, "sum"]), histogram.total)
    pipe.execute()


def pruned_stats(client: redis.Redis) -> RunStats:
    """The tally of every run pruned so far (fields this version cannot read are left out)."""
    stats = RunStats()
    for raw, value in client.hgetall(pruned_runs_key()).items():
        try:
            what, name, detail = json.loads(raw)
            if what == "ended":
                stats.ended[(name, detail)] += int(value)
                continue
            histogram = stats.histograms[what].setdefault(name, Histogram())
            if detail == "count":
                histogram.count += int(value)
            elif detail == "sum":
                histogram.total += float(value)
            else:  # a bucket, by its bound (one BUCKETS no longer has is left out)
                histogram.le[BUCKETS.index(float(detail))] += int(value)
        except (ValueError, TypeError, KeyError, IndexError):
            continue
    return stats
