"""Login mode on the pages: who gets in, and what each user is shown and may post."""

from __future__ import annotations

import pytest

from celery_live.access import DENIED, Action
from celery_live.log import publishing
from celery_live.runs import history

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("login_mode")]

RUNNING = "apps.assets.tasks.example_async_task"


@pytest.fixture
def queued_run() -> str:
    """A run that is sent but not started: the kind that offers Revoke."""
    publishing.publish("task.sent", task_id="queued", name=RUNNING, data={"args": [], "kwargs": {}})
    return "queued"


@pytest.mark.parametrize("path", ["/", "/runs/?state=success", "/tasks/queued/"])
def test_an_anonymous_visitor_is_sent_to_log_in_and_then_back(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert client.get(response["Location"]).context["next"] == path


def test_health_and_static_files_stay_open(client):
    assert client.get("/healthz").status_code in (200, 503)  # no worker here: 503, not a redirect
    assert client.get("/static/celery_live/css/app.css").status_code == 200


def test_a_user_without_the_view_permission_gets_the_products_403_page(client, make_user):
    client.force_login(make_user("nobody"))
    response = client.get("/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'class="topbar"' in html
    assert DENIED[Action.VIEW] in html
    assert 'data-testid="username"' in html  # and the way out: the header's logout


def test_a_viewer_watches_runs_without_the_form_or_the_controls(client, make_user, queued_run):
    client.force_login(make_user("vera", "viewers"))
    index = client.get("/").content.decode()
    assert 'id="run-queued"' in index
    assert 'id="launch-form"' not in index
    assert 'data-testid="read-only"' in index
    # The cards are the live fragments every viewer gets: the page's class hides their controls.
    assert "<body hx-headers" in index
    page = client.get("/tasks/queued/").content.decode()
    assert 'id="run-queued"' in page
    assert "run__controls" not in page
    assert ">Revoke</button>" not in page


def test_a_viewer_is_refused_launching_and_control_and_nothing_is_sent(client, make_user, queued_run):
    client.force_login(make_user("vera", "viewers"))
    sent = history.last_event_id()
    launch = client.post("/launch/", {"kind": "example", "message": "no", "count": 1}, HTTP_HX_REQUEST="true")
    assert launch.status_code == 403
    assert DENIED[Action.LAUNCH] in launch.content.decode()
    for path in ("/tasks/queued/revoke", "/tasks/queued/rerun"):
        response = client.post(path)
        assert (response.status_code, response.content.decode()) == (403, DENIED[Action.CONTROL])
    assert history.last_event_id() == sent


def test_an_operator_gets_the_form_and_the_controls(client, make_user, queued_run):
    client.force_login(make_user("otto", "operators"))
    index = client.get("/").content.decode()
    assert 'id="launch-form"' in index
    assert '<body class="can-control"' in index
    page = client.get("/tasks/queued/").content.decode()
    assert ">Revoke</button>" in page


def test_a_revoke_is_recorded_with_the_operators_name(client, make_user, queued_run):
    client.force_login(make_user("otto", "operators"))
    assert client.post("/tasks/queued/revoke").status_code == 204
    [asked] = [e for e in history.get_run("queued").events if e["type"] == "task.log"]
    assert asked["data"]["message"].startswith("revoke requested by otto;")


def test_login_free_everyone_gets_the_form_and_the_controls(client, settings, queued_run):
    settings.CELERY_LIVE_REQUIRE_LOGIN = False
    index = client.get("/").content.decode()
    assert 'id="launch-form"' in index
    assert '<body class="can-control"' in index
    assert ">Revoke</button>" in client.get("/tasks/queued/").content.decode()
