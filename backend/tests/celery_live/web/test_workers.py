"""The workers page and its buttons, and the run card's "no worker knows this task"."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from celery_live.access import DENIED, Action
from celery_live.log import publishing
from celery_live.log.workers import WorkerRecord, mark_offline, record_worker
from celery_live.runs import history
from celery_live.stream import workers
from celery_live.stream.workers import dom_id
from config.celery import app
from tests.celery_live.control.test_workers import own_record

pytestmark = pytest.mark.django_db

INSTANCE = "41-1764090000123"
ACK = "worker-41-1764090000123-ack"
TASK = "apps.assets.tasks.test_task"


@pytest.fixture(autouse=True)
def fresh_board(monkeypatch):
    """This process's board of workers starts empty: what a test records is read afresh."""
    monkeypatch.setattr(workers, "board", workers.WorkerBoard())


def beat(hostname="w@h", **data):
    base = {"instance": INSTANCE, "pool": "prefork", "concurrency": 2, "queues": ["celery"]}
    return WorkerRecord.from_beat(hostname, time.time(), {**base, **data})


def press(client, hostname, action, body=None, **headers):
    """A button of the workers page, as htmx posts it."""
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": ACK, **headers}
    return client.post(f"/workers/{hostname}/{action}", body or {}, **headers)


def test_the_page_shows_every_instance_and_its_controls_only_to_who_may_use_them(
    client, login_mode, make_user, redis_client
):
    record_worker(redis_client, beat(), [TASK])
    record_worker(redis_client, beat("old@h", instance="7-1764000000000"))
    mark_offline(redis_client, "7-1764000000000", "no heartbeat for 11 s")
    client.force_login(make_user("vera", "viewers"))
    page = client.get("/workers/").content.decode()
    assert 'ws-connect="/ws/page/?view=workers"' in page
    assert page.count('data-testid="worker"') == 2
    assert f"<code>{TASK}</code>" in page
    assert "no heartbeat for 11 s" in page
    assert 'class="can-control"' not in page  # the cards' controls are hidden for her
    client.force_login(make_user("otto", "operators"))
    assert 'class="can-control"' in client.get("/workers/").content.decode()


def test_a_button_sends_its_command_and_is_answered_with_the_workers_reply(client, celery_worker):
    hostname = celery_worker.hostname
    ack = f"{dom_id(own_record(hostname).instance)}-ack"
    try:
        response = press(client, hostname, "rate_limit", {"task": TASK, "rate": "5/s"}, HTTP_HX_TARGET=ack)
    finally:
        app.tasks[TASK].rate_limit = None  # the in-thread worker shares this process's tasks
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="{ack}"' in html
    assert f"rate_limit sent → acknowledged by {hostname}" in html


@pytest.mark.parametrize(
    ("hostname", "action", "body", "status", "says"),
    [
        ("w@h", "pool_grow", {"n": "many"}, 422, "pool_grow not sent: n: Enter a whole number."),
        ("nobody@h", "pool_grow", {"n": 1}, 404, "pool_grow not sent: unknown worker &#x27;nobody@h&#x27;"),
        ("w@h", "explode", {}, 404, "explode not sent: unknown action &#x27;explode&#x27;"),
    ],
)
def test_a_button_that_cannot_send_says_why_on_the_card(
    client, redis_client, hostname, action, body, status, says
):
    record_worker(redis_client, beat())
    response = press(client, hostname, action, body)
    assert response.status_code == status
    assert says in response.content.decode()


def test_a_viewer_is_refused_and_nothing_is_sent(client, login_mode, make_user, redis_client):
    record_worker(redis_client, beat())
    client.force_login(make_user("vera", "viewers"))
    before = history.last_event_id()
    response = press(client, "w@h", "shutdown")
    assert response.status_code == 403
    assert DENIED[Action.CONTROL] in response.content.decode()
    assert history.last_event_id() == before


def test_a_button_needs_the_csrf_token(redis_client):
    record_worker(redis_client, beat())
    assert press(Client(enforce_csrf_checks=True), "w@h", "shutdown").status_code == 403


def card(client, task_id):
    return client.get(f"/tasks/{task_id}/").content.decode()


def test_a_queued_run_of_a_task_no_online_worker_registers_is_flagged_on_its_card(client, redis_client):
    record_worker(redis_client, beat(), [TASK])
    publishing.publish("task.sent", task_id="lost-cause", name="app.nobody.knows", data={"args": []})
    publishing.publish("task.sent", task_id="fine", name=TASK, data={"args": []})
    assert 'data-testid="unknown-task"' in card(client, "lost-cause")
    assert "No worker knows this task: it will wait." in card(client, "lost-cause")
    assert 'data-testid="unknown-task"' not in card(client, "fine")


def test_a_bridged_workers_card_says_its_pool_and_queues_are_unknown(client, redis_client):
    """A worker seen through Celery's events (bridge/) has no pool or queues to show: its card
    says so rather than "? x ?" and "none"."""
    record_worker(redis_client, beat("plain@h", pool=None, concurrency=None, queues=[], bridged=True))
    record_worker(redis_client, beat("ours@h", instance="42-1764090000123"))
    page = client.get("/workers/").content.decode()
    assert page.count("? (via Celery's events)") == 1
    assert "prefork" in page
