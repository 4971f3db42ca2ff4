"""`/metrics`: parsed with prometheus-client's own parser, its counts are the runs made (by
the in-thread worker), pruned runs stay counted, and login mode wants a viewer or a token."""

from __future__ import annotations

import json
import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from apps.assets import tasks
from celery_live.log import publishing, store
from celery_live.log.queues import remember_queues
from celery_live.log.workers import read_beats, record_beat
from celery_live.runs.queues import QueueSampler
from celery_live.tasks import prune_history
from tests.helpers import final_run, record_all
from tests.paths import ROOT_DIR

pytestmark = pytest.mark.django_db

SUCCEEDS = "apps.assets.tasks.test_task"
FAILS = "apps.assets.tasks.example_async_task"


def scrape(client, **headers) -> dict[str, list]:
    """Metric family name -> its samples, from a 200 answer."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    families = text_string_to_metric_families(response.content.decode())
    return {family.name: family.samples for family in families}


def value(samples: list, metric: str, **labels: str) -> float | None:
    found = [s.value for s in samples if s.name == metric and s.labels == labels]
    return found[0] if found else None


def test_its_counts_and_histograms_are_the_runs_made(client, celery_worker):
    made = [tasks.test_task.delay("ok", delay=0) for _ in range(3)]
    made += [tasks.example_async_task.delay("bad", count=1, delay=0, fail_at=1) for _ in range(2)]
    assert [final_run(r.id).state for r in made] == ["SUCCESS"] * 3 + ["FAILURE"] * 2
    record_all()

    metrics = scrape(client)
    runs = metrics["celery_live_runs"]
    assert value(runs, "celery_live_runs_total", name=SUCCEEDS, state="SUCCESS") == 3
    assert value(runs, "celery_live_runs_total", name=FAILS, state="FAILURE") == 2
    assert sum(s.value for s in runs if s.name == "celery_live_runs_total") == 5
    for family in ("celery_live_run_seconds", "celery_live_queue_wait_seconds"):
        samples = metrics[family]
        assert value(samples, f"{family}_count", name=SUCCEEDS) == 3
        assert value(samples, f"{family}_count", name=FAILS) == 2
        buckets = [s.value for s in samples if s.name == f"{family}_bucket" and s.labels["name"] == SUCCEEDS]
        assert buckets == sorted(buckets)  # cumulative
        assert buckets[-1] == 3  # +Inf holds every run
        assert value(samples, f"{family}_sum", name=SUCCEEDS) >= 0


def test_a_run_under_way_is_in_flight_not_yet_counted(client):
    publishing.publish("task.sent", task_id="waiting", name="n", data={"queue": "celery"})
    record_all()
    metrics = scrape(client)
    assert (
        value(metrics["celery_live_runs_in_flight"], "celery_live_runs_in_flight", name="n", state="PENDING")
        == 1
    )
    assert value(metrics["celery_live_runs"], "celery_live_runs_total", name="n", state="PENDING") is None


def finished_run(task_id: str, ts: float, state_event: str = "task.succeeded") -> None:
    name = "old.task"
    publishing.publish("task.sent", task_id=task_id, name=name, ts=ts, data={"queue": "celery"})
    publishing.publish("task.started", task_id=task_id, name=name, ts=ts + 1, worker="w@host")
    publishing.publish(state_event, task_id=task_id, name=name, ts=ts + 3, worker="w@host")


def test_pruned_runs_stay_counted(client):
    long_ago = time.time() - 30 * 86400
    finished_run("old-1", long_ago)
    finished_run("old-2", long_ago, "task.failed")
    finished_run("recent", time.time())
    record_all()
    before = scrape(client)
    assert prune_history(days=7)["runs"] == 2
    after = scrape(client)
    for family in ("celery_live_runs", "celery_live_run_seconds", "celery_live_queue_wait_seconds"):
        assert after[family] == before[family], family
    assert value(after["celery_live_run_seconds"], "celery_live_run_seconds_sum", name="old.task") == 6.0
    # Pruned again: nothing more is added.
    prune_history(days=7)
    assert scrape(client)["celery_live_runs"] == before["celery_live_runs"]


def test_workers_online_and_queue_depths_come_from_redis(client):
    client_ = store.client()
    now = time.time()
    record_beat(client_, "alive@host", "1-1", now)
    record_beat(client_, "silent@host", "2-2", now - 60)
    remember_queues(client_, ["metrics-queue"])
    QueueSampler(owner="metrics").sample()
    metrics = scrape(client)
    # The in-thread worker of this module's other test may be beating too.
    others = [n for n, b in read_beats(client_).items() if "@host" not in n and not b.is_silent(now)]
    assert value(metrics["celery_live_workers_online"], "celery_live_workers_online") == 1 + len(others)
    assert value(metrics["celery_live_queue_depth"], "celery_live_queue_depth", queue="metrics-queue") == 0
    assert (
        value(metrics["celery_live_queue_consumers"], "celery_live_queue_consumers", queue="metrics-queue")
        == 0
    )


def test_in_login_mode_it_wants_a_viewer_by_session_or_token(client, login_mode, make_user):
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == "Token"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token not-a-key").status_code == 401
    nobody = make_user("nobody")
    assert (
        client.get(
            "/metrics", HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=nobody).key}"
        ).status_code
        == 403
    )
    viewer = make_user("viewer", "viewers")
    assert "celery_live_runs" in scrape(
        client, HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=viewer).key}"
    )
    client.force_login(viewer)
    assert "celery_live_workers_online" in scrape(client)


#: The sample names of a family, by its type.
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def test_the_grafana_dashboard_asks_only_for_metrics_the_endpoint_has(client):
    dashboard = json.loads((ROOT_DIR / "docs" / "grafana" / "celery-live.json").read_text())
    families = text_string_to_metric_families(client.get("/metrics").content.decode())
    exposed = {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}
    asked = {
        word
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", target["expr"])
        if word.startswith("celery_live_")
    }
    assert len(asked) >= 6
    assert asked <= exposed, asked - exposed
