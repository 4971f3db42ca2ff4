"""The chart pages render the last 15 minutes from the database (the socket: stream/test_charts.py)."""

import html
import json
import re
import time

import pytest

from celery_live.log import publishing
from celery_live.stream import stats
from tests.helpers import record_all

pytestmark = pytest.mark.django_db

NAME = "apps.assets.tasks.example_async_task"


def a_run(task_id, ts, name=NAME, state="SUCCESS", run_time=0.4, exception=None):
    """A finished run, published with the times given (its events carry `ts`)."""
    end = {"SUCCESS": "task.succeeded", "FAILURE": "task.failed"}[state]
    for etype, at, data in [
        ("task.sent", ts, {"args": [], "kwargs": {}}),
        ("task.started", ts + 0.2, {}),
        (end, ts + 0.2 + run_time, {"exception": exception} if exception else {}),
    ]:
        publishing.publish(etype, task_id=task_id, name=name, data=data, ts=at)


def chart_data(page: str) -> dict:
    found = re.search(r'<div id="chart-data" hidden data-chart="([^"]*)"', page)
    return json.loads(html.unescape(found.group(1)))


def test_the_charts_page_draws_every_task_and_lists_each_name_from_the_database(client):
    now = time.time()
    a_run("a", now - 60)
    a_run("b", now - 30, name="apps.other.task", state="FAILURE", exception="ValueError: 1")
    a_run("old", now - stats.WINDOW - 120)  # ended before the window
    record_all()
    page = client.get("/charts/").content.decode()
    for text in ('ws-connect="/ws/charts/"', "uPlot.iife.min.js", "js/charts.js", 'data-chart="throughput"'):
        assert text in page
    data = chart_data(page)
    assert data["full"] is True
    assert data["step"] == stats.STEP
    assert "histogram" not in data
    assert sum(point[1] for point in data["points"]) == 2  # started
    assert sum(point[3] for point in data["points"]) == 1  # failed
    assert 'href="/charts/apps.assets.tasks.example_async_task/"' in page
    assert 'href="/charts/apps.other.task/"' in page
    assert page.count('class="row chart-row" id="chart-name-') == 2


def test_a_task_names_page_has_its_histogram_figures_and_only_its_runs(client):
    now = time.time()
    for i, run_time in enumerate([0.3, 0.3, 2.0]):
        a_run(f"r{i}", now - 100 + i, run_time=run_time)
    a_run("other", now - 50, name="apps.other.task")
    record_all()
    page = client.get(f"/charts/{NAME}/").content.decode()
    assert f'ws-connect="/ws/charts/?name={NAME}"' in page
    data = chart_data(page)
    assert sum(point[1] for point in data["points"]) == 3
    assert sum(count for _, _, count in data["histogram"]) == 3
    assert '<dd data-testid="started">3</dd>' in page
    assert f'href="/runs/?name={NAME}"' in page


def test_an_empty_window_says_so(client):
    page = client.get("/charts/").content.decode()
    assert chart_data(page)["points"] == []
    assert "No run started or ended in the last 15 minutes." in page
    assert client.get("/charts/nothing.ran/").status_code == 200


def test_the_chart_pages_escape_task_names_and_link_any_of_them(client):
    now = time.time()
    a_run("x", now - 10, name="<img src=x onerror=alert(1)>")
    a_run("y", now - 10, name="odd/name with space")
    record_all()
    page = client.get("/charts/").content.decode()
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="/charts/odd/name%20with%20space/"' in page
    one = client.get("/charts/odd/name%20with%20space/").content.decode()
    assert '<dd data-testid="started">1</dd>' in one


@pytest.mark.usefixtures("login_mode")
@pytest.mark.parametrize("path", ["/charts/", f"/charts/{NAME}/", "/failures/"])
def test_the_pages_send_an_anonymous_visitor_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
