"""The page and the JSON API: launch, validate at the edge, read runs."""

import json

import pytest
import redis
from django.test import Client

from celery_live.log import publishing, store
from celery_live.runs import history
from config.celery import app
from tests.helpers import final_run, record_all

pytestmark = pytest.mark.django_db


def post_json(client, url, body, **extra):
    return client.post(url, data=json.dumps(body), content_type="application/json", **extra)


def broker_queue_length() -> int:
    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen("celery")


def test_launching_through_the_api_returns_201_and_the_run_ends_as_the_seed_says(client, celery_worker):
    response = post_json(
        client, "/api/tasks/", {"kind": "example", "message": "Bob", "count": 3, "delay": 0.01}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["url"] == f"/tasks/{body['task_id']}/"
    final_run(body["task_id"])
    run = client.get(f"/api/tasks/{body['task_id']}/").json()
    assert run["state"] == "SUCCESS"
    assert run["name"] == "apps.assets.tasks.example_async_task"
    assert run["kwargs"] == {"name": "Bob", "count": 3, "delay": 0.01}
    assert run["progress"] == {"current": 3, "total": 3}
    assert run["results"] == ["Bob - iteration 1", "Bob - iteration 2", "Bob - iteration 3"]
    assert run["result"] == {"name": "Bob", "count": 3, "results": run["results"], "status": "completed"}
    assert next(e["type"] for e in run["events"]) == "task.sent"
    assert run["worker"]


def test_test_task_kind_runs_test_task(client, celery_worker):
    body = post_json(client, "/api/tasks/", {"kind": "test", "message": "Hi", "delay": 0}).json()
    assert final_run(body["task_id"]).result == "Processed: Hi"


def test_the_kind_defaults_to_the_first_declared(client, celery_worker):
    body = post_json(client, "/api/tasks/", {"message": "Default", "count": 1, "delay": 0}).json()
    assert final_run(body["task_id"]).name == "apps.assets.tasks.example_async_task"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "", "count": 3}, "message"),
        ({"message": "x" * 501, "count": 3}, "message"),
        ({"message": "   ", "count": 3}, "message"),
        ({"message": "ok", "count": 0}, "count"),
        ({"message": "ok", "count": 1001}, "count"),
        ({"message": "ok", "count": "many"}, "count"),
        ({"message": "ok", "count": 3, "delay": 11}, "delay"),
        ({"message": "ok", "count": 3, "delay": -1}, "delay"),
        ({"message": "ok", "count": 3, "fail_at": 4}, "fail_at"),
        ({"message": "ok", "count": 3, "fail_at": 0}, "fail_at"),
        ({"kind": "rm -rf", "message": "ok"}, "kind"),
        ({"kind": "test", "message": "ok", "fail_at": 1}, "fail_at"),
        # Types JSON can send where a form wants one value: never str()-ed into a message.
        ({"message": ["a", "b"], "count": 2}, "message"),
        ({"message": {"a": 1}, "count": 2}, "message"),
        ({"message": 42, "count": 2}, "message"),
        ({"message": True, "count": 2}, "message"),
        ({"message": "ok", "count": [3]}, "count"),
        ({"message": "ok", "count": True}, "count"),
        ({"message": "ok", "count": 2.5}, "count"),
        ({"message": "nul \u0000 inside", "count": 2}, "message"),
        ({"kind": ["example"], "message": "ok"}, "kind"),
    ],
)
def test_bad_input_is_refused_with_the_field_named_and_nothing_is_sent(client, body, field):
    queued = broker_queue_length()
    response = post_json(client, "/api/tasks/", body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert broker_queue_length() == queued
    assert history.last_event_id() == "0-0"


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ("message=hi", "application/x-www-form-urlencoded", 415),
    ],
)
def test_the_api_wants_a_json_object(client, data, content_type, status):
    response = client.post("/api/tasks/", data=data, content_type=content_type)
    assert response.status_code == status
    assert response.json()["errors"]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ("[" * 100_000 + "]" * 100_000, 400),  # nested past Python's recursion limit
        ('{"message": "' + "x" * (10 * 1024 * 1024) + '"}', 413),  # 10 MB
    ],
    ids=["deeply-nested", "ten-megabytes"],
)
def test_hostile_bodies_get_a_json_error_and_send_nothing(client, data, status):
    queued = broker_queue_length()
    response = client.post("/api/tasks/", data=data, content_type="application/json")
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"]["__all__"]
    assert broker_queue_length() == queued


def test_an_unknown_task_is_404(client):
    response = client.get("/api/tasks/nope/")
    assert response.status_code == 404
    assert "unknown task id" in response.json()["error"]


def test_the_list_is_newest_first_and_filters(client):
    for i, state_type in enumerate(["task.succeeded", "task.failed", "task.succeeded"]):
        publishing.publish(
            "task.sent",
            task_id=f"r{i}",
            name="apps.assets.tasks.example_async_task",
            data={"args": [], "kwargs": {"name": f"needle{i}"}},
            ts=1000.0 + i,
        )
        publishing.publish(state_type, task_id=f"r{i}", name="apps.assets.tasks.example_async_task")
    record_all()
    runs = client.get("/api/tasks/").json()["results"]
    assert [r["task_id"] for r in runs] == ["r2", "r1", "r0"]
    assert [r["task_id"] for r in client.get("/api/tasks/?state=failure").json()["results"]] == ["r1"]
    assert [r["task_id"] for r in client.get("/api/tasks/?q=needle2").json()["results"]] == ["r2"]
    assert [r["task_id"] for r in client.get("/api/tasks/?limit=1&before=1002").json()["results"]] == ["r1"]
    assert client.get("/api/tasks/?limit=0").status_code == 400


def test_the_page_renders_the_form_and_escapes_user_text(client):
    publishing.publish(
        "task.sent",
        task_id="x1",
        name="apps.assets.tasks.example_async_task",
        data={"args": [], "kwargs": {"name": "<script>alert(1)</script>", "count": 2}},
    )
    html = client.get("/").content.decode()
    for text in (
        '<label for="id_kind">Task</label>',
        '<option value="example"',
        '<option value="test"',
        '<label for="id_message">Message</label>',
        '<label for="id_count">Iterations</label>',
        '<label for="id_delay">Delay (s)</label>',
        '<label for="id_fail_at">Fail at #</label>',
        "Run task",
        'ws-connect="/ws/page/"',
        "csrfmiddlewaretoken",
    ):
        assert text in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'id="run-x1"' in html


def test_after_a_launch_the_form_keeps_the_values_but_not_the_failure_asked_for(client, celery_worker):
    response = client.post(
        "/launch/",
        {"kind": "example", "message": "Once", "count": 2, "delay": 0, "fail_at": 2},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="message" value="Once"' in html
    assert 'name="count" value="2"' in html
    assert 'name="fail_at" value=' not in html
    [task_id] = history.recent_task_ids()
    assert final_run(task_id).state == "FAILURE"


def test_the_form_needs_a_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/launch/", {"message": "hi", "count": 2})
    assert response.status_code == 403


def test_the_form_shows_errors_inline_and_sends_nothing(client):
    response = client.post("/launch/", {"message": "", "count": 5000}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    html = response.content.decode()
    assert "This field is required." in html
    assert "Ensure this value is less than or equal to 1000." in html
    assert history.last_event_id() == "0-0"


def test_the_form_launches_and_returns_a_fresh_form(client, celery_worker):
    response = client.post(
        "/launch/", {"kind": "example", "message": "Form", "count": 2, "delay": 0}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    [task_id] = history.recent_task_ids()
    assert f"/tasks/{task_id}/" in response.content.decode()
    assert final_run(task_id).results == ["Form - iteration 1", "Form - iteration 2"]


def test_the_task_page_shows_one_run_live(client):
    publishing.publish(
        "task.sent",
        task_id="one",
        name="apps.assets.tasks.test_task",
        data={"args": [], "kwargs": {"message": "hello"}},
    )
    html = client.get("/tasks/one/").content.decode()
    assert 'ws-connect="/ws/page/?view=detail&amp;task=one"' in html
    assert "hello" in html
    assert client.get("/tasks/none/").status_code == 404


def test_pages_and_the_api_show_recorded_runs_while_redis_is_unreachable(client, monkeypatch):
    from celery_live.processes.redis_server import free_port

    publishing.publish("task.sent", task_id="kept", name="apps.assets.tasks.test_task", data={"args": ["x"]})
    publishing.publish(
        "task.succeeded", task_id="kept", name="apps.assets.tasks.test_task", data={"result": 1}
    )
    record_all()
    dead = redis.Redis(port=free_port(), socket_connect_timeout=1, decode_responses=True)
    monkeypatch.setattr(store, "client", lambda: dead)
    response = client.get("/api/tasks/kept/")
    assert response.status_code == 200
    assert response.json()["state"] == "SUCCESS"
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="run-kept"' in page.content.decode()


def test_the_page_shows_recorded_runs_beside_the_few_runs_redis_still_holds(client):
    # Redis lost its log, then one run started: the page's snapshot must not shrink to it.
    publishing.publish("task.sent", task_id="kept", name="apps.assets.tasks.test_task", data={"args": ["x"]})
    publishing.publish(
        "task.succeeded", task_id="kept", name="apps.assets.tasks.test_task", data={"result": 1}
    )
    record_all()
    redis_client = store.client()
    redis_client.delete(*redis_client.keys(f"{store.stream_key()}*"))
    publishing.publish("task.sent", task_id="after", name="apps.assets.tasks.test_task", data={"args": ["y"]})
    html = client.get("/").content.decode()
    assert 'id="run-kept"' in html
    assert html.index('id="run-after"') < html.index('id="run-kept"')  # newest first
