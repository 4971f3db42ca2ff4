"""The failures inbox page renders the database's groups (live counts: stream/test_failures_live.py)."""

import pytest

from celery_live.log import publishing
from celery_live.runs.history import newest_recorded_id
from tests.helpers import record_all

pytestmark = pytest.mark.django_db

NAME = "apps.assets.tasks.example_async_task"


def fail(task_id, exception, name=NAME):
    publishing.publish("task.sent", task_id=task_id, name=name, data={"args": [], "kwargs": {}})
    publishing.publish("task.failed", task_id=task_id, name=name, data={"exception": exception})


def test_the_inbox_groups_failures_counts_them_and_links_to_their_runs(client):
    fail("f1", "DemoTaskError: Failed at iteration 2 of 3")
    fail("f2", "DemoTaskError: Failed at iteration 4 of 9", name="apps.other.task")
    fail("f3", "KeyError: '<script>'")
    record_all()
    page = client.get("/failures/").content.decode()
    assert 'ws-connect="/ws/page/?view=failures"' in page
    assert f'data-last-id="{newest_recorded_id()}"' in page  # the socket replays after what was counted
    assert page.count('data-testid="failure-group"') == 2
    assert 'data-testid="failure-total">3<' in page
    assert '<span class="failure__count" data-testid="count" title="runs">2</span>' in page
    assert "Failed at iteration &lt;n&gt; of &lt;n&gt;" in page
    assert (
        'href="/runs/?state=FAILURE&amp;exception=DemoTaskError%3A%20Failed%20at%20iteration%20%3Cn%3E'
        '%20of%20%3Cn%3E"' in page
    )
    assert "<script>" not in page.split("<main", 1)[1].replace('<script src="', "")
    assert '<code class="failure__name">apps.other.task</code>' in page


def test_a_groups_link_lists_exactly_its_runs(client):
    fail("f1", "DemoTaskError: Failed at iteration 2 of 3")
    fail("f2", "DemoTaskError: Failed at step 2")
    record_all()
    page = client.get(
        "/runs/", {"state": "FAILURE", "exception": "DemoTaskError: Failed at iteration <n> of <n>"}
    )
    html = page.content.decode()
    assert 'id="row-f1"' in html
    assert 'id="row-f2"' not in html
    assert "exception=DemoTaskError" in html  # its socket filters live rows alike
    assert "Failed with <code>DemoTaskError: Failed at iteration &lt;n&gt; of &lt;n&gt;</code>" in html
    assert '<input type="hidden" name="exception" value="DemoTaskError: Failed' in html  # kept by "Filter"


def test_an_empty_inbox_says_so_and_follows_the_log(client):
    page = client.get("/failures/").content.decode()
    assert "No run has failed." in page
    assert 'data-last-id="0-0"' in page
