"""One error shape for every error the API answers, with the headers that go with it."""

from unittest import mock

import pytest
import redis
from celery.app.task import Task
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from kombu.exceptions import OperationalError
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIRequestFactory

from celery_live.api.exceptions import handle
from celery_live.api.views import TaskView
from celery_live.log import publishing, store
from celery_live.runs import history
from celery_live.web.middleware import MESSAGE
from tests.celery_live.api.calls import broker_queue_length, errors, post_json
from tests.helpers import record_all, unreachable_redis

pytestmark = pytest.mark.django_db


def handled(exc: Exception):
    request = APIRequestFactory().get("/api/tasks/x/")
    return handle(exc, {"view": TaskView(), "request": request, "args": (), "kwargs": {}})


@pytest.mark.parametrize(
    ("exc", "status", "body"),
    [
        (
            ValidationError({"count": ["Too many."], "__all__": ["No."]}),
            400,
            {"count": ["Too many."], "__all__": ["No."]},
        ),
        (ValidationError(["One.", "Two."]), 400, {"__all__": ["One.", "Two."]}),
        (Http404("unknown task id 'x'"), 404, {"__all__": ["unknown task id 'x'"]}),
        (PermissionDenied("No."), 403, {"__all__": ["No."]}),
        (RequestDataTooBig(), 413, {"__all__": ["The body is over 2621440 bytes."]}),
        (OperationalError("refused"), 503, {"__all__": ["Could not reach the broker: refused"]}),
        (redis.ConnectionError("away"), 503, {"__all__": [store.UNREACHABLE]}),
    ],
)
def test_the_handler_answers_every_error_in_the_one_shape(exc, status, body):
    response = handled(exc)
    assert (response.status_code, response.data) == (status, {"errors": body})


def test_the_handler_leaves_other_errors_to_django():
    assert handled(ValueError("a bug")) is None


def test_redis_away_is_503_with_retry_after_without_the_hosts_middleware(client, settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("RedisUnavailableMiddleware")]
    publishing.publish("task.sent", task_id="queued", name="apps.assets.tasks.test_task")
    record_all()
    dead = unreachable_redis()
    with mock.patch.object(store, "client", return_value=dead):
        response = post_json(client, "/api/tasks/queued/revoke")
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert errors(response) == {"__all__": [store.UNREACHABLE]}


def test_a_method_an_endpoint_has_not_is_405_with_allow_before_any_permission_check(client):
    for method, url, allow in [
        ("put", "/api/tasks/", "GET, HEAD, POST"),
        ("delete", "/api/tasks/x/", "GET, HEAD"),
        ("get", "/api/tasks/x/revoke", "POST"),
        ("options", "/api/tasks/x/rerun", "POST"),  # no CORS preflight is ever granted
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 405, (method, url)
        assert response["Allow"] == allow
        assert errors(response)["__all__"]


def test_a_broker_away_is_503_and_the_launch_is_closed_as_rejected(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("Connection refused")

    monkeypatch.setattr(Task, "apply_async", refuse)
    response = post_json(client, "/api/tasks/", {"message": "hi", "count": 1})
    assert response.status_code == 503
    assert errors(response) == {"__all__": ["Could not reach the broker: Connection refused"]}
    [task_id] = history.recent_task_ids()
    assert history.get_run(task_id).state == "REJECTED"


def test_redis_away_during_a_control_request_is_503_json_with_retry_after(client, monkeypatch):
    publishing.publish("task.sent", task_id="queued", name="apps.assets.tasks.test_task")
    record_all()
    queued = broker_queue_length()
    # Refused at once: without retries (redis-py backs off between its three).
    dead = unreachable_redis()
    monkeypatch.setattr(store, "client", lambda: dead)
    response = post_json(client, "/api/tasks/queued/revoke")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert errors(response) == {"__all__": [MESSAGE]}
    monkeypatch.undo()
    assert broker_queue_length() == queued
