"""`GET /api/failures/`: the inbox's groups as JSON."""

import pytest

from celery_live.log import publishing
from celery_live.runs.history import newest_recorded_id
from tests.helpers import record_all

pytestmark = pytest.mark.django_db


def test_the_failures_are_grouped_with_their_runs_url(client):
    for task_id, exception in [("a", "E: at 1"), ("b", "E: at 22"), ("c", "F: other")]:
        publishing.publish("task.sent", task_id=task_id, name="t")
        publishing.publish("task.failed", task_id=task_id, name="t", data={"exception": exception})
    record_all()
    body = client.get("/api/failures/").json()
    assert body["count"] == 2
    assert body["last_event_id"] == newest_recorded_id()
    group = next(g for g in body["results"] if g["key"] == "E: at <n>")
    assert set(group) == {
        "key",
        "exc_type",
        "message",
        "example",
        "count",
        "first_seen",
        "last_seen",
        "names",
        "runs_url",
    }
    assert (group["count"], group["names"], group["exc_type"]) == (2, ["t"], "E")
    runs = client.get(group["runs_url"]).json()
    assert sorted(run["task_id"] for run in runs["results"]) == ["a", "b"]


def test_no_failure_is_an_empty_list(client):
    assert client.get("/api/failures/").json() == {"results": [], "count": 0, "last_event_id": None}


@pytest.mark.usefixtures("login_mode")
def test_it_needs_the_view_permission(client):
    assert client.get("/api/failures/").status_code == 401
