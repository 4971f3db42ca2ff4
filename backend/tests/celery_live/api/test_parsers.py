"""Request bodies: one JSON object, within Django's size limit; hostile ones are 4xx, never 500."""

import pytest

from celery_live.runs import history
from tests.celery_live.api.calls import JSON, broker_queue_length, errors

pytestmark = pytest.mark.django_db

TEN_MEGABYTES = 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", JSON, 400),
        ("[1, 2]", JSON, 400),
        ('"a string"', JSON, 400),
        ('{"message": NaN}', JSON, 400),  # not JSON, whatever Python's json accepts
        (b'{"message": "\xff"}', JSON, 400),  # not UTF-8
        ("message=hi", "application/x-www-form-urlencoded", 415),
        ('{"message": "hi"}', "text/plain", 415),
        ('{"message": "hi"}', "application/json-patch+json", 415),
    ],
)
def test_a_body_must_be_a_json_object(client, data, content_type, status):
    response = client.post("/api/tasks/", data=data, content_type=content_type)
    assert response.status_code == status
    assert errors(response)["__all__"]


def test_a_body_without_a_content_type_is_415_not_ignored(client):
    # The test client passes every CSRF check: this is what a token's request would get.
    response = client.generic("POST", "/api/tasks/any/revoke", b'{"terminate": true}', content_type="")
    assert response.status_code == 415


def test_a_launch_without_a_json_content_type_is_415_even_when_empty(client):
    assert client.post("/api/tasks/").status_code == 415
    assert client.post("/api/tasks/", content_type=JSON).status_code == 400  # `{}`: no message


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ("[" * 100_000 + "]" * 100_000, 400),  # nested past Python's recursion limit
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, 400),
        ('{"message": "' + "x" * TEN_MEGABYTES + '"}', 413),
    ],
    ids=["deeply-nested-lists", "deeply-nested-objects", "ten-megabytes"],
)
@pytest.mark.parametrize("url", ["/api/tasks/", "/api/tasks/any/revoke", "/api/tasks/any/rerun"])
def test_hostile_bodies_get_a_json_error_and_send_nothing(client, url, data, status):
    queued = broker_queue_length()
    response = client.post(url, data=data, content_type=JSON)
    assert response.status_code == status
    assert errors(response)["__all__"]
    assert broker_queue_length() == queued
    assert history.last_event_id() == "0-0"


def test_revoke_takes_a_boolean_terminate_only(client):
    response = client.post("/api/tasks/any/revoke", data='{"terminate": "yes"}', content_type=JSON)
    assert response.status_code == 400
    assert errors(response) == {"terminate": ["Must be true or false."]}
