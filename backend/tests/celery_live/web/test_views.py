"""The pages: launch, validate at the edge, read runs (the JSON API: tests/celery_live/api/)."""

import pytest
from django.test import Client

from celery_live.log import publishing, store
from celery_live.runs import history
from tests.helpers import final_run, record_a_finished_run, record_all, unreachable_redis

pytestmark = pytest.mark.django_db


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


def test_pages_show_recorded_runs_while_redis_is_unreachable(client, monkeypatch):
    record_a_finished_run("kept")
    monkeypatch.setattr(store, "client", lambda: unreachable_redis())
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


def test_a_runs_page_that_cannot_be_live_says_why_and_has_no_socket(client):
    live = client.get("/runs/?name=demo").content.decode()
    assert 'ws-connect="/ws/page/?name=demo&amp;view=list"' in live
    bad = client.get("/runs/?time_from=notadate&name=demo").content.decode()
    assert "ws-connect" not in bad
    assert "Not live: fix the filter" in bad
    older = client.get("/runs/?name=demo&before=1700000000.5").content.decode()
    assert "ws-connect" not in older
    assert 'Older page · not live · <a href="/runs/?name=demo">live page</a>' in older
