"""The JSON API's endpoints: launch, validate at the edge, read runs (real worker, real broker)."""

import pytest

from celery_live.log import publishing, store
from celery_live.runs import history
from tests.celery_live.api.calls import broker_queue_length, errors, post_json
from tests.helpers import final_run, record_a_finished_run, record_all, unreachable_redis

pytestmark = pytest.mark.django_db

EXAMPLE_TASK = "apps.assets.tasks.example_async_task"


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
    assert run["name"] == EXAMPLE_TASK
    assert run["kwargs"] == {"name": "Bob", "count": 3, "delay": 0.01}
    assert run["progress"] == {"current": 3, "total": 3}
    assert run["results"] == ["Bob - iteration 1", "Bob - iteration 2", "Bob - iteration 3"]
    assert run["result"] == {"name": "Bob", "count": 3, "results": run["results"], "status": "completed"}
    assert next(e["type"] for e in run["events"]) == "task.sent"
    assert run["worker"]


def test_test_task_kind_runs_test_task(client, celery_worker):
    body = post_json(client, "/api/tasks/", {"kind": "test", "message": "Hi", "delay": 0}).json()
    assert final_run(body["task_id"]).result == "Processed: Hi"


def test_a_kind_without_a_form_launches_with_its_signatures_fields(client, celery_worker):
    body = post_json(client, "/api/tasks/", {"kind": "add", "x": 40}).json()
    run = final_run(body["task_id"])
    assert (run.kwargs, run.result) == ({"x": 40}, 42)  # y left to the task's default
    queued = broker_queue_length()
    refused = post_json(client, "/api/tasks/", {"kind": "add", "x": "4o", "z": 1, "count": None})
    assert refused.status_code == 400
    assert errors(refused) == {
        "x": ["Enter a whole number."],
        "z": ["Add two numbers (add) does not take this field; it takes: x, y."],
    }
    assert broker_queue_length() == queued


def test_the_kind_defaults_to_the_first_declared(client, celery_worker):
    body = post_json(client, "/api/tasks/", {"message": "Default", "count": 1, "delay": 0}).json()
    assert final_run(body["task_id"]).name == EXAMPLE_TASK


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
        ({"kind": ["example"], "message": "ok"}, "kind"),
        # Text no event can carry: a NUL (Django's CharField refuses it), a lone surrogate.
        ({"message": "nul \u0000 inside", "count": 2}, "message"),
        ({"kind": "ex\u0000ample", "message": "ok"}, "kind"),
        ({"message": "half \ud800 a pair", "count": 2}, "message"),
        ({"kind": "\udfff", "message": "ok"}, "kind"),
    ],
)
def test_bad_input_is_refused_with_the_field_named_and_nothing_is_sent(client, body, field):
    queued, runs = broker_queue_length(), history.recent_task_ids()
    response = post_json(client, "/api/tasks/", body)
    assert response.status_code == 400
    assert field in errors(response)
    assert broker_queue_length() == queued
    assert history.recent_task_ids() == runs  # no run (the worker's heartbeats may be logged)


def test_an_unknown_task_is_404_in_the_one_error_shape(client):
    response = client.get("/api/tasks/nope/")
    assert response.status_code == 404
    assert errors(response) == {"__all__": ["unknown task id 'nope'"]}
    assert client.get("/api/tasks/a%00b/").status_code == 404  # a NUL names no run


def publish_runs(*end_types: str) -> None:
    """Runs r0, r1, … one second apart, each ended by its event type; recorded."""
    for i, end_type in enumerate(end_types):
        publishing.publish(
            "task.sent",
            task_id=f"r{i}",
            name=EXAMPLE_TASK,
            data={"args": [], "kwargs": {"name": f"needle{i}"}},
            ts=1000.0 + i,
        )
        publishing.publish(end_type, task_id=f"r{i}", name=EXAMPLE_TASK)
    record_all()


def ids(response) -> list[str]:
    return [run["task_id"] for run in response.json()["results"]]


def test_the_list_is_newest_first_and_filters(client):
    publish_runs("task.succeeded", "task.failed", "task.succeeded")
    assert ids(client.get("/api/tasks/")) == ["r2", "r1", "r0"]
    assert ids(client.get("/api/tasks/?state=failure")) == ["r1"]
    assert ids(client.get("/api/tasks/?q=needle2")) == ["r2"]
    assert ids(client.get("/api/tasks/?limit=1&before=1002")) == ["r1"]
    refused = client.get("/api/tasks/?limit=0&state=nope&q=a%00b")
    assert refused.status_code == 400
    assert set(errors(refused)) == {"limit", "state", "q"}


def test_the_list_counts_its_page_and_says_where_the_next_one_begins(client):
    publish_runs("task.succeeded", "task.succeeded", "task.succeeded")
    first = client.get("/api/tasks/?limit=2").json()
    assert (first["count"], first["next_before"]) == (2, 1001.0)
    older = client.get(f"/api/tasks/?limit=2&before={first['next_before']}").json()
    assert ([run["task_id"] for run in older["results"]], older["count"], older["next_before"]) == (
        ["r0"],
        1,
        None,
    )


def test_a_run_is_read_from_the_database_while_redis_is_unreachable(client, monkeypatch):
    record_a_finished_run("kept")
    monkeypatch.setattr(store, "client", lambda: unreachable_redis())
    response = client.get("/api/tasks/kept/")
    assert response.status_code == 200
    assert response.json()["state"] == "SUCCESS"


def test_a_rerun_records_who_asked(client, celery_worker, make_user, token_for):
    first = post_json(client, "/api/tasks/", {"message": "Again", "count": 1, "delay": 0}).json()
    final_run(first["task_id"])
    headers = token_for(make_user("ann", "operators"))
    again = post_json(client, f"/api/tasks/{first['task_id']}/rerun", **headers)
    assert again.status_code == 201
    assert again.json()["rerun_of"] == first["task_id"]
    note = history.get_run(first["task_id"]).events[-1]
    assert (note["data"]["control"], note["data"]["by"]) == ("rerun", "ann")
    assert note["data"]["message"].endswith(" by ann")
