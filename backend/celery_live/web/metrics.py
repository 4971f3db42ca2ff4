"""`GET /metrics`: Prometheus' text format, every metric named `celery_live_…`
(docs/metrics.md).

Computed when scraped, by a collector of its own (no global counters): the runs from the
database (runs/metrics.py: three grouped queries, plus the tally of pruned runs), the
workers online from the worker registry, the queues from their last samples (both Redis).
So every web process answers the same, and a restart changes nothing.

Who may scrape: anyone with login mode off; in login mode a user who may view, by session
or, for Prometheus, by `Authorization: Token <key>` (DRF's token of that user). With Redis
or the database away the answer is 503: counters served without the pruned tally would
look like a reset to Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import redis
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from celery_live.access import DENIED, Action, allows
from celery_live.log import store
from celery_live.log.queues import read_samples
from celery_live.log.workers import live_worker_count, read_beats
from celery_live.runs.metrics import BUCKETS, pruned_stats, run_stats

#: What each histogram measures, by its key in `runs.metrics.SPANS`.
HISTOGRAM_HELP = {
    "run_seconds": "Run time (started to ended) of the runs kept, and of those pruned, by task name.",
    "queue_wait_seconds": "Queue wait (sent to started) of the runs kept, and of those pruned, by task name.",
}


class DashboardCollector(Collector):
    """Reads everything at each `collect`: one scrape, three queries and three Redis reads."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        stats = run_stats().add(pruned_stats(self.client))
        ended = CounterMetricFamily(
            "celery_live_runs",
            "Runs that ended, by task name and final state: those in the database, and those "
            "pruned since (a run counts once it has ended).",
            labels=["name", "state"],
        )
        for (name, state), n in sorted(stats.ended.items()):
            ended.add_metric([name, state], n)
        yield ended
        in_flight = GaugeMetricFamily(
            "celery_live_runs_in_flight",
            "Runs not ended yet, by task name and state (PENDING is queued).",
            labels=["name", "state"],
        )
        for (name, state), n in sorted(stats.in_flight.items()):
            in_flight.add_metric([name, state], n)
        yield in_flight
        for kind, by_name in stats.histograms.items():
            family = HistogramMetricFamily(f"celery_live_{kind}", HISTOGRAM_HELP[kind], labels=["name"])
            for name, histogram in sorted(by_name.items()):
                buckets = [(repr(bound), n) for bound, n in zip(BUCKETS, histogram.le, strict=True)]
                family.add_metric([name], [*buckets, ("+Inf", histogram.count)], histogram.total)
            yield family
        yield GaugeMetricFamily(
            "celery_live_workers_online",
            "Worker hostnames whose heartbeat came within CELERY_LIVE_WORKER_TIMEOUT.",
            value=live_worker_count(read_beats(self.client), now),
        )
        samples = read_samples(self.client)
        depth = GaugeMetricFamily(
            "celery_live_queue_depth",
            "Messages waiting in each queue (all priorities), as last sampled.",
            labels=["queue"],
        )
        consumers = GaugeMetricFamily(
            "celery_live_queue_consumers", "Consumers of each queue, as last sampled.", labels=["queue"]
        )
        for name, sample in sorted(samples.items()):
            depth.add_metric([name], sample.depth)
            consumers.add_metric([name], sample.consumers)
        yield depth
        yield consumers


def scraper(request: HttpRequest) -> object | None:
    """The user asking: the session's, else the owner of an `Authorization: Token` key
    (None when a key is given but unknown)."""
    if request.user.is_authenticated or not request.headers.get("Authorization"):
        return request.user
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0] if found else request.user


def text(body: str, status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(body + "\n", status=status, content_type="text/plain; charset=utf-8", headers=headers)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    user = scraper(request)
    if not allows(user, Action.VIEW):
        if user is not None and user.is_authenticated:
            return text(DENIED[Action.VIEW], 403)
        return text(DENIED[Action.VIEW], 401, {"WWW-Authenticate": "Token"})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DashboardCollector(store.client()))
    try:
        body = generate_latest(registry)
    except redis.RedisError:
        return text(store.UNREACHABLE, 503, {"Retry-After": str(store.RETRY_AFTER)})
    except DatabaseError:
        return text("The database is unreachable right now; try again in a moment.", 503)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
