"""`GET /api/queues/`: the queues' last samples from Redis, by name."""

from __future__ import annotations

import uuid

import pytest

from celery_live.log import store
from celery_live.log.queues import remember_queues
from celery_live.runs.queues import QueueSampler
from config.celery import app

pytestmark = pytest.mark.django_db


def test_before_any_sample_there_is_no_queue_and_it_says_so(client):
    answer = client.get("/api/queues/").json()
    assert answer == {"results": [], "sampled_at": None, "interval": 0.5}


def test_each_queue_comes_with_its_depth_by_priority_and_its_waiting_runs(client):
    busy, idle = (f"cl-api-{uuid.uuid4().hex[:6]}-{n}" for n in ("a", "b"))
    remember_queues(store.client(), [busy, idle])
    for priority in (0, 6, 6):
        app.send_task("apps.assets.tasks.noop", queue=busy, priority=priority)
    try:
        QueueSampler(owner="api").sample()
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(busy)
    answer = client.get("/api/queues/").json()
    by_name = {queue["name"]: queue for queue in answer["results"]}
    assert [q["name"] for q in answer["results"]] == sorted(by_name)
    assert by_name[busy]["depth"] == 3
    assert by_name[busy]["priorities"] == {"0": 1, "3": 0, "6": 2, "9": 0}
    assert by_name[busy]["consumers"] == 0
    assert by_name[busy]["runs_url"] == f"/runs/?state=PENDING&queue={busy}"
    assert by_name[idle]["depth"] == 0
    assert answer["sampled_at"] > 0


def test_in_login_mode_it_wants_a_viewer(client, login_mode, make_user, token_for):
    assert client.get("/api/queues/").status_code == 401
    assert client.get("/api/queues/", **token_for(make_user("viewer", "viewers"))).status_code == 200
