"""Login mode: viewing, launching and control each need their permission; without
credentials the answer is 401 (`WWW-Authenticate: Token`), without the permission 403."""

import pytest

from celery_live.access import DENIED, Action
from celery_live.runs import history
from tests.celery_live.api.calls import broker_queue_length, errors, post_json

pytestmark = pytest.mark.django_db

LAUNCH = "/api/tasks/"
WRITES = {
    LAUNCH: Action.LAUNCH,
    "/api/tasks/any/revoke": Action.CONTROL,
    "/api/tasks/any/rerun": Action.CONTROL,
}
READS = ["/api/tasks/", "/api/tasks/any/", "/api/schema/"]


def test_without_credentials_everything_is_401(client, login_mode):
    for url in READS:
        response = client.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Token"
        assert errors(response) == {"__all__": [DENIED[Action.VIEW]]}
    for url, action in WRITES.items():
        response = post_json(client, url, {"message": "x", "count": 1})
        assert response.status_code == 401, url
        assert errors(response) == {"__all__": [DENIED[action]]}
    assert client.get("/api/docs/").status_code == 401


def test_a_user_without_a_group_may_not_even_view(client, login_mode, make_user, token_for):
    headers = token_for(make_user("nobody"))
    response = client.get(LAUNCH, **headers)
    assert response.status_code == 403
    assert errors(response) == {"__all__": [DENIED[Action.VIEW]]}


@pytest.mark.parametrize("how", ["session", "token"])
def test_a_viewer_reads_but_launches_and_controls_nothing(client, login_mode, make_user, token_for, how):
    viewer = make_user("vera", "viewers")
    headers = {}
    if how == "session":
        client.force_login(viewer)
    else:
        headers = token_for(viewer)
    assert client.get(LAUNCH, **headers).status_code == 200
    assert client.get("/api/schema/", **headers).status_code == 200
    assert client.get("/api/docs/", **headers).status_code == 200
    queued = broker_queue_length()
    for url, action in WRITES.items():
        response = post_json(client, url, {"message": "x", "count": 1}, **headers)
        assert response.status_code == 403, url
        assert errors(response) == {"__all__": [DENIED[action]]}
    assert broker_queue_length() == queued
    assert history.last_event_id() == "0-0"


def test_an_operator_gets_past_the_permissions(client, login_mode, make_user, token_for):
    headers = token_for(make_user("olga", "operators"))
    assert post_json(client, LAUNCH, {"count": 1}, **headers).status_code == 400  # no message
    assert post_json(client, "/api/tasks/any/revoke", **headers).status_code == 404
    assert post_json(client, "/api/tasks/any/rerun", **headers).status_code == 404


def test_with_login_mode_off_anyone_may_do_anything(client):
    assert client.get(LAUNCH).status_code == 200
    assert post_json(client, LAUNCH, {"count": 1}).status_code == 400
    assert post_json(client, "/api/tasks/any/rerun").status_code == 404
