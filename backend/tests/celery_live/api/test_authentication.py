"""CSRF on every write: a token needs none, a session needs Django's check, and an anonymous
write must be JSON (which no cross-site page can send unasked) or carry a CSRF token."""

import pytest
from django.test import Client

from celery_live.log import publishing
from celery_live.runs import history
from tests.celery_live.api.calls import JSON, broker_queue_length, errors, post_json
from tests.helpers import record_all

pytestmark = pytest.mark.django_db

CSRF_SECRET = "a" * 32
FOREIGN = "https://evil.example"


@pytest.fixture
def runs():
    """`queued`, a launchable run not yet ended (revocable, re-runnable), and `done`, ended
    and of a task that is not launchable (a revoke is 409, a re-run 400: past the checks,
    nothing sent)."""
    publishing.publish(
        "task.sent",
        task_id="queued",
        name="apps.assets.tasks.example_async_task",
        data={"args": [], "kwargs": {"name": "x", "count": 1, "delay": 0}},
    )
    publishing.publish("task.sent", task_id="done", name="apps.assets.tasks.noop")
    publishing.publish("task.succeeded", task_id="done", name="apps.assets.tasks.noop")
    record_all()


@pytest.fixture
def browser():
    """A client that, like a browser, gets no CSRF pass."""
    return Client(enforce_csrf_checks=True)


def with_csrf_token(client: Client) -> dict[str, str]:
    """What the page sends: the CSRF cookie, and its value in `X-CSRFToken`."""
    client.cookies["csrftoken"] = CSRF_SECRET
    return {"HTTP_X_CSRFTOKEN": CSRF_SECRET}


CROSS_SITE_BODIES = {
    # What a foreign page can send without a CORS preflight (a form, a no-cors fetch).
    "empty": {"data": b"", "content_type": ""},
    "form": {"data": "terminate=1", "content_type": "application/x-www-form-urlencoded"},
    "text": {"data": '{"terminate": true}', "content_type": "text/plain"},
    "multipart": {
        "data": '--x\r\nContent-Disposition: form-data; name="terminate"\r\n\r\n1\r\n--x--\r\n',
        "content_type": "multipart/form-data; boundary=x",
    },
}


@pytest.mark.parametrize("body", CROSS_SITE_BODIES.values(), ids=CROSS_SITE_BODIES.keys())
@pytest.mark.parametrize("action", ["revoke", "rerun"])
def test_an_anonymous_cross_site_write_is_refused_and_changes_nothing(runs, browser, action, body):
    last_event, queued = history.last_event_id(), broker_queue_length()
    response = browser.generic("POST", f"/api/tasks/queued/{action}", HTTP_ORIGIN=FOREIGN, **body)
    assert response.status_code == 403
    assert errors(response)["__all__"][0].startswith("CSRF Failed")
    assert history.last_event_id() == last_event  # not revoked, no re-run logged
    assert broker_queue_length() == queued  # no new run sent
    assert history.get_run("queued").state == "PENDING"


def test_an_anonymous_json_write_needs_no_csrf_token(runs, browser):
    assert post_json(browser, "/api/tasks/done/revoke").status_code == 409
    # `curl -X POST -H 'Content-Type: application/json'`: the header, and no body.
    empty_json = browser.generic("POST", "/api/tasks/done/rerun", CONTENT_TYPE=JSON)
    assert empty_json.status_code == 400  # past the check: `noop` is not launchable


def test_an_anonymous_write_with_the_pages_csrf_token_passes_the_check(runs, browser):
    headers = with_csrf_token(browser)
    assert browser.generic("POST", "/api/tasks/done/revoke", **headers).status_code == 409
    form = browser.post("/api/tasks/", "message=hi", "application/x-www-form-urlencoded", **headers)
    assert form.status_code == 415  # past the check: the API reads JSON only


def test_a_session_user_writes_with_the_csrf_token_from_the_sites_own_origin(runs, browser, make_user):
    browser.force_login(make_user("ann", "operators"))
    no_token = post_json(browser, "/api/tasks/done/revoke")
    assert no_token.status_code == 403
    assert errors(no_token) == {"__all__": ["CSRF Failed: CSRF cookie not set."]}
    headers = with_csrf_token(browser)
    foreign = post_json(browser, "/api/tasks/done/revoke", HTTP_ORIGIN=FOREIGN, **headers)
    assert foreign.status_code == 403
    assert "Origin checking failed" in errors(foreign)["__all__"][0]
    own = post_json(browser, "/api/tasks/done/revoke", HTTP_ORIGIN="http://testserver", **headers)
    assert own.status_code == 409


def test_a_token_needs_no_csrf_token_and_its_user_is_recorded(
    runs, browser, make_user, token_for, monkeypatch
):
    from celery_live.control import runs as control

    asked = []
    monkeypatch.setattr(control.app.control, "revoke", lambda *a, **kw: asked.append(kw) or [])
    headers = token_for(make_user("ann", "operators"))
    response = post_json(
        browser, "/api/tasks/queued/revoke", {"terminate": True}, HTTP_ORIGIN=FOREIGN, **headers
    )
    assert response.status_code == 202
    assert response.json() == {"task_id": "queued", "terminate": True, "status": "requested"}
    assert asked[0]["terminate"] is True
    note = history.get_run("queued").events[-1]
    assert (note["data"]["control"], note["data"]["by"]) == ("terminate", "ann")


def test_a_wrong_token_is_401(browser):
    response = browser.get("/api/tasks/", HTTP_AUTHORIZATION="Token nope")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert errors(response) == {"__all__": ["Invalid token."]}
