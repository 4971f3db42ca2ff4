"""The launch rate (CELERY_LIVE_LAUNCH_RATE): launches and re-runs, through the API and the
page, per user or per address; over it, 429 with Retry-After and nothing sent."""

import json

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from rest_framework.authtoken.models import Token

from celery_live.runs import history

pytestmark = pytest.mark.django_db

JSON = "application/json"


@pytest.fixture(autouse=True)
def two_a_minute(settings):
    """The limit on (the tests' settings turn it off), counted from zero."""
    settings.CELERY_LIVE_LAUNCH_RATE = "2/minute"
    cache.clear()


def launch(client, **extra):
    """A launch the form refuses (no message): it counts, and sends nothing."""
    return client.post("/api/tasks/", data=json.dumps({"count": 1}), content_type=JSON, **extra)


def refused(response) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    [message] = response.json()["errors"]["__all__"]
    assert message.startswith("Too many launches: CELERY_LIVE_LAUNCH_RATE allows 2/minute.")


def test_launches_over_the_rate_get_429_with_retry_after_and_nothing_is_sent(client):
    assert [launch(client).status_code for _ in range(2)] == [400, 400]
    refused(launch(client))
    assert history.last_event_id() == "0-0"


def test_re_runs_count_as_launches_and_reads_do_not(client):
    for _ in range(5):
        assert client.get("/api/tasks/").status_code == 200
    rerun = "/api/tasks/nope/rerun"
    assert [client.post(rerun, "{}", JSON).status_code for _ in range(2)] == [404, 404]
    refused(client.post(rerun, "{}", JSON))
    refused(launch(client))


def test_each_user_and_each_address_has_its_own_count(client, django_user_model):
    operators = Group.objects.get(name="operators")
    tokens = {}
    for name in ("ann", "bob"):
        user = django_user_model.objects.create_user(name)
        user.groups.add(operators)
        tokens[name] = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}
    for _ in range(2):
        launch(client, **tokens["ann"])
    refused(launch(client, **tokens["ann"]))
    assert launch(client, **tokens["bob"]).status_code == 400
    # Anonymous: by REMOTE_ADDR; X-Forwarded-For, which anyone may send, changes nothing.
    for _ in range(2):
        launch(client, REMOTE_ADDR="10.0.0.1")
    refused(launch(client, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.9"))
    assert launch(client, REMOTE_ADDR="10.0.0.2").status_code == 400


def test_off_means_no_limit(client, settings):
    settings.CELERY_LIVE_LAUNCH_RATE = "off"
    assert {launch(client).status_code for _ in range(10)} == {400}


def test_the_page_form_and_its_rerun_button_share_the_rate(client):
    form = {"message": "", "count": 1}
    assert [client.post("/launch/", form).status_code for _ in range(2)] == [422, 422]
    page = client.post("/launch/", form, HTTP_HX_REQUEST="true")
    assert page.status_code == 429
    assert 1 <= int(page["Retry-After"]) <= 60
    assert "Too many launches" in page.content.decode()
    button = client.post("/tasks/nope/rerun")
    assert button.status_code == 429
    assert button["Retry-After"]
    refused(launch(client))  # the API counts the page's launches too
