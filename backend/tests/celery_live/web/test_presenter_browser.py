"""Presenter mode in Chromium: two people, each on their own web replica (two Daphne
processes on one Redis), one presenting and one following. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from celery_live.log import publishing
from tests.browser import open_page, wait_live
from tests.stack import Stack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def replicas():
    """Two Daphne processes on the test run's Redis and database (no worker: runs are logged
    by the test), started side by side after one migration."""
    both = (Stack(), Stack())
    both[0].migrate()
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(Stack.start_web, both))
        yield both
    finally:
        for web in both:
            web.stop()


def bar_text(page) -> str:
    return page.locator("#presenter").inner_text()


def wait_bar(page, text: str) -> None:
    page.locator("#presenter", has_text=text).wait_for(timeout=10_000)


def test_followers_follow_the_presenters_pages_and_pointing_across_replicas(browser, replicas, artifacts_dir):
    first, second = replicas
    presenter = open_page(browser, first.url, "/")
    # The follower's page is open before the presentation starts: it must learn of it.
    follower = open_page(browser, second.url, "/runs/")
    presenter.locator('[data-present-action="present"]').click()
    wait_bar(presenter, "You are presenting")
    wait_bar(follower, "Someone is presenting")
    follower.locator('[data-present-action="follow"]').click()
    # Following takes it to the presenter's page, where both see the count.
    follower.wait_for_url(second.url + "/")
    wait_live(follower)
    wait_bar(follower, "Following Someone")
    wait_bar(follower, "1 watching")
    wait_bar(presenter, "1 watching")
    presenter.screenshot(path=str(artifacts_dir / "presenter-presenting-1280.png"))

    task_id = f"present-{time.monotonic_ns()}"
    publishing.publish("task.sent", task_id=task_id, name="apps.assets.tasks.example_async_task")
    mark = "el => el.setAttribute('data-present-highlight', 'launch-panel')"
    for page in (presenter, follower):
        page.wait_for_selector(f"#run-{task_id}")
        page.locator(".panel").first.evaluate(mark)  # as the tour's scenario buttons carry it
    presenter.locator(f"#run-{task_id} header").click()
    follower.locator(f"#run-{task_id}.present-highlight").wait_for(timeout=10_000)
    presenter.locator(".panel").first.click(position={"x": 5, "y": 5})
    follower.locator('[data-present-highlight="launch-panel"].present-highlight').wait_for(timeout=10_000)
    follower.screenshot(path=str(artifacts_dir / "presenter-follower-1280.png"))

    presenter.goto(f"{first.url}/tasks/{task_id}/")
    follower.wait_for_url(f"{second.url}/tasks/{task_id}/")
    wait_bar(follower, "1 watching")
    wait_bar(presenter, "You are presenting")
    follower.set_viewport_size({"width": 390, "height": 844})
    follower.screenshot(path=str(artifacts_dir / "presenter-follower-390.png"))
    assert follower.evaluate("document.documentElement.scrollWidth") <= 390

    follower.locator('[data-present-action="unfollow"]').click()
    wait_bar(follower, "Someone is presenting")
    wait_bar(presenter, "0 watching")
    presenter.goto(f"{first.url}/runs/")
    wait_bar(presenter, "You are presenting")
    presenter.wait_for_timeout(500)  # a navigation would have reached it by now
    assert follower.url == f"{second.url}/tasks/{task_id}/"
    assert follower.dialogs == []
    assert presenter.dialogs == []
    presenter.context.close()
    follower.context.close()
