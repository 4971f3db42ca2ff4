"""Revoke, terminate and re-run (as it was, or with changes), through the API (real worker, real broker)."""

import json

import pytest

from apps.assets import tasks
from apps.assets.tasks import add, example_async_task, noop
from celery_live.runs import history
from tests.helpers import final_run, wait_for

pytestmark = pytest.mark.django_db


def post(client, url, body=None):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def test_revoking_a_queued_task_records_the_request_and_the_revocation(client, celery_worker):
    result = example_async_task.apply_async(("Later", 1), {"delay": 0}, countdown=2)
    wait_for(lambda: history.get_run(result.id), message="run logged")
    response = post(client, f"/api/tasks/{result.id}/revoke")
    assert response.status_code == 202
    run = final_run(result.id)
    assert run.state == "REVOKED"
    notes = [e for e in run.events if e["type"] == "task.log"]
    assert notes[0]["data"]["control"] == "revoke"


def test_rerun_sends_the_same_task_with_the_same_arguments_linked_to_the_old_one(client, celery_worker):
    first = example_async_task.delay("Again", 2, delay=0)
    final_run(first.id)
    response = post(client, f"/api/tasks/{first.id}/rerun")
    assert response.status_code == 201
    body = response.json()
    assert body["rerun_of"] == first.id
    again = final_run(body["task_id"])
    assert again.args == ["Again", 2]
    assert again.kwargs == {"delay": 0}
    assert again.rerun_of == first.id
    assert again.result == final_run(first.id).result
    assert history.get_run(first.id).events[-1]["data"]["rerun_id"] == body["task_id"]


def test_only_a_declared_task_can_be_re_run(client, celery_worker, settings):
    other = noop.delay()
    final_run(other.id)
    refused = post(client, f"/api/tasks/{other.id}/rerun")
    assert refused.status_code == 400
    assert "not a launchable task" in refused.json()["errors"]["__all__"][0]
    settings.CELERY_LIVE_LAUNCHABLE_TASKS = []  # a host declaring nothing re-runs nothing
    done = example_async_task.delay("Done", 1, delay=0)
    final_run(done.id)
    assert post(client, f"/api/tasks/{done.id}/rerun").status_code == 400
    assert sorted(history.recent_task_ids()) == sorted([other.id, done.id])  # nothing sent


def test_control_errors_are_clear(client, celery_worker):
    done = example_async_task.delay("Done", 1, delay=0)
    final_run(done.id)
    assert post(client, "/api/tasks/nope/revoke").status_code == 404
    assert post(client, "/api/tasks/nope/rerun").status_code == 404
    finished = post(client, f"/api/tasks/{done.id}/revoke")
    assert finished.status_code == 409
    assert "already ended (SUCCESS)" in finished.json()["errors"]["__all__"][0]
    bad = post(client, f"/api/tasks/{done.id}/revoke", {"terminate": "yes"})
    assert bad.status_code == 400
    assert "terminate" in bad.json()["errors"]


def test_a_rerun_with_changes_keeps_the_other_arguments_and_is_linked(client, celery_worker):
    first = example_async_task.delay("Edit me", 2, delay=0)  # positional, as a host's code sends
    final_run(first.id)
    response = post(client, f"/api/tasks/{first.id}/rerun", {"count": 3, "message": "Edited"})
    assert response.status_code == 201, response.json()
    again = final_run(response.json()["task_id"])
    assert (again.args, again.kwargs) == ([], {"name": "Edited", "count": 3, "delay": 0})
    assert again.results == [f"Edited - iteration {i}" for i in (1, 2, 3)]
    assert again.rerun_of == first.id
    note = history.get_run(first.id).events[-1]["data"]
    assert (note["control"], note["rerun_id"]) == ("rerun", again.task_id)
    assert note["message"].startswith("re-run with changes as ")


def test_a_rerun_of_a_signature_form_task_changes_its_parameters_directly(client, celery_worker):
    first = add.delay(1, 2)
    assert final_run(first.id).result == 3
    response = post(client, f"/api/tasks/{first.id}/rerun", {"y": 40})
    again = final_run(response.json()["task_id"])
    assert (again.kwargs, again.result) == ({"x": 1, "y": 40}, 41)


def test_a_rerun_with_bad_changes_is_refused_by_field_and_sends_nothing(client, celery_worker):
    first = tasks.test_task.delay("Once", delay=0)
    final_run(first.id)
    for changes, errors in [
        (
            {"count": 3},
            {"count": ["Single step (test_task) does not take this field; it takes: message, delay."]},
        ),
        ({"delay": 11}, {"delay": ["Ensure this value is less than or equal to 10."]}),
        ({"message": ["a"]}, {"message": ["Must be a single value, not a list or an object."]}),
        ({"kind": "example"}, {"kind": ["A re-run keeps its task: test."]}),
    ]:
        refused = post(client, f"/api/tasks/{first.id}/rerun", changes)
        assert (refused.status_code, refused.json()) == (400, {"errors": errors})
    assert post(client, "/api/tasks/nope/rerun", {"count": 1}).status_code == 404
    # Nothing sent: no re-run noted on the run, no other run of its task (an earlier test's
    # revoked run may still log its end here, so not "no new run at all").
    assert [
        e["data"].get("control") for e in history.get_run(first.id).events if e["type"] == "task.log"
    ] == []
    assert [t for t in history.recent_task_ids() if history.get_run(t).name == tasks.test_task.name] == [
        first.id
    ]
