"""The launch form per kind (htmx and without JS) and re-running from a run's page: as it
was (a notice links the new run) or with changes (the kind's form, prefilled)."""

import re

import pytest
from django.test import Client

from apps.assets import tasks
from celery_live.access import DENIED, Action
from celery_live.runs import history
from tests.helpers import final_run

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def run_id(url: str) -> str:
    """The id in a run page's URL (other modules' runs may reach the log: never guess it)."""
    assert re.fullmatch(r"/tasks/[^/]+/", url), url
    return url.split("/")[2]


def names_of_fields(html: str) -> list[str]:
    return re.findall(r'<(?:input|select|textarea)[^>]* name="([a-z_]+)"', html)


def test_the_form_shows_only_the_chosen_kinds_fields_keeping_shared_values(client):
    index = client.get("/").content.decode()
    assert names_of_fields(index)[:6] == [
        "csrfmiddlewaretoken",
        "kind",
        "message",
        "count",
        "delay",
        "fail_at",
    ]
    swapped = client.get("/launch/", {"kind": "test", "message": "Kept <b>", "count": "9"}, **HX)
    html = swapped.content.decode()
    assert html.startswith('<form id="launch-form"')  # the fragment htmx swaps in
    assert names_of_fields(html) == ["csrfmiddlewaretoken", "kind", "message", "delay"]
    assert 'value="Kept &lt;b&gt;"' in html
    assert '<option value="test" title="Sleeps, then returns the message processed." selected>' in html
    assert 'placeholder="2"' in html
    assert "Empty: 2 s" in html
    signature = client.get("/launch/", {"kind": "add"}, **HX).content.decode()
    assert names_of_fields(signature) == ["csrfmiddlewaretoken", "kind", "x", "y"]
    assert 'name="y" value="2"' in signature
    no_js = client.get("/launch/", {"kind": "add"})
    assert "<title>Run a task · celery-live</title>" in no_js.content.decode()  # a page


def test_a_field_the_kind_does_not_take_is_named_on_the_page(client):
    before = history.recent_task_ids()
    response = client.post("/launch/", {"kind": "test", "message": "hi", "count": "3"}, **HX)
    assert response.status_code == 422
    assert (
        "<code>count</code>: Single step (test_task) does not take this field; it takes: message, delay."
        in response.content.decode()
    )
    assert history.recent_task_ids() == before  # nothing sent


def test_without_js_a_launch_opens_the_new_runs_page_and_errors_come_back_as_a_page(client, celery_worker):
    refused = client.post("/launch/", {"kind": "add", "x": "two"})
    assert refused.status_code == 422
    assert "Enter a whole number." in refused.content.decode()
    assert "<title>Run a task · celery-live</title>" in refused.content.decode()
    response = client.post("/launch/", {"kind": "add", "x": "40", "y": ""})
    assert response.status_code == 302
    task_id = run_id(response["Location"])
    run = final_run(task_id)
    assert (run.kwargs, run.result) == ({"x": 40}, 42)  # empty y: the task's default


def test_the_rerun_button_answers_a_notice_linking_the_new_run(client, celery_worker):
    first = tasks.test_task.delay("Again", delay=0)
    final_run(first.id)
    response = client.post(f"/tasks/{first.id}/rerun", **HX)
    assert response.status_code == 200
    html = response.content.decode()
    new_id = run_id(re.search(r'Re-run started: <a href="([^"]+)"', html)[1])
    assert html.startswith('<p class="notice notice--ok" role="status" data-testid="rerun-started">')
    assert f'Re-run started: <a href="/tasks/{new_id}/">' in html
    assert final_run(new_id).rerun_of == first.id


def test_rerun_with_changes_opens_the_kinds_form_prefilled_from_the_runs_arguments(client, celery_worker):
    first = tasks.example_async_task.delay("<Old>", 2, delay=0)
    final_run(first.id)
    page = client.get(f"/tasks/{first.id}/").content.decode()
    assert f'<a class="button button--ghost" href="/tasks/{first.id}/rerun">Re-run with changes</a>' in page
    form = client.get(f"/tasks/{first.id}/rerun").content.decode()
    assert names_of_fields(form) == ["csrfmiddlewaretoken", "edited", "message", "count", "delay", "fail_at"]
    for field in ('name="message" value="&lt;Old&gt;"', 'name="count" value="2"', 'name="delay" value="0"'):
        assert field in form
    bad = client.post(f"/tasks/{first.id}/rerun", {"edited": "1", "message": "New", "count": "0"})
    assert bad.status_code == 422
    assert "Ensure this value is greater than or equal to 1." in bad.content.decode()
    response = client.post(
        f"/tasks/{first.id}/rerun",
        {"edited": "1", "message": "New", "count": "3", "delay": "0", "fail_at": ""},
    )
    assert response.status_code == 302
    new_id = run_id(response["Location"])
    again = final_run(new_id)
    assert (again.kwargs, again.rerun_of) == ({"name": "New", "count": 3, "delay": 0}, first.id)


def test_a_signature_forms_rerun_page_is_its_parameters(client, celery_worker):
    first = tasks.add.delay(5, y=6)
    final_run(first.id)
    form = client.get(f"/tasks/{first.id}/rerun").content.decode()
    assert 'name="x" value="5"' in form
    assert 'name="y" value="6"' in form
    assert "Add two numbers" in form


def test_rerun_pages_refuse_what_they_cannot_do(client, celery_worker, make_user, login_mode):
    other = tasks.noop.delay()
    final_run(other.id)
    client.force_login(make_user("otto", "operators"))
    assert client.get("/tasks/nope/rerun").status_code == 404
    undeclared = client.get(f"/tasks/{other.id}/rerun")
    assert undeclared.status_code == 400
    assert "not a launchable task here" in undeclared.content.decode()
    assert 'id="rerun-form"' not in undeclared.content.decode()
    done = tasks.test_task.delay("x", delay=0)
    final_run(done.id)
    client.force_login(make_user("vera", "viewers"))
    viewer = client.get(f"/tasks/{done.id}/rerun").content.decode()
    assert DENIED[Action.CONTROL] in viewer
    assert 'id="rerun-form"' not in viewer
    runs = history.recent_task_ids()
    refused = client.post(f"/tasks/{done.id}/rerun", {"edited": "1", "message": "no"})
    assert (refused.status_code, refused.content.decode()) == (403, DENIED[Action.CONTROL])
    assert history.recent_task_ids() == runs  # nothing sent
    client.logout()
    assert client.get(f"/tasks/{done.id}/rerun").status_code == 302  # to the login page


def test_the_rerun_form_needs_a_csrf_token(celery_worker):
    first = tasks.test_task.delay("x", delay=0)
    final_run(first.id)
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(f"/tasks/{first.id}/rerun", {"edited": "1", "message": "y"}).status_code == 403
    assert strict.post(f"/tasks/{first.id}/rerun").status_code == 403


def test_a_refused_rerun_button_says_why_in_a_notice(client, make_user, login_mode):
    client.force_login(make_user("otto", "operators"))
    unknown = client.post("/tasks/nope/rerun", **HX)
    assert unknown.status_code == 404
    assert "Re-run refused: unknown task id &#x27;nope&#x27;" in unknown.content.decode()
    client.force_login(make_user("vera", "viewers"))
    denied = client.post("/tasks/nope/rerun", **HX)
    assert denied.status_code == 403
    assert f'data-testid="rerun-refused">Re-run refused: {DENIED[Action.CONTROL]}' in denied.content.decode()
