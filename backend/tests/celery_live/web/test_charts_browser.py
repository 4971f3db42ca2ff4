"""The chart pages and the failures inbox in Chromium, against the real stack: uPlot draws, a
run's start reaches the charts, a failure the inbox; screenshots at 1280 and 390 px."""

import pytest

from tests.browser import new_page, wait_live

pytestmark = pytest.mark.browser

NAME = "apps.assets.tasks.example_async_task"
STARTED = "document.querySelector('.chart[data-chart=throughput]').dataset.started"


def launch(stack, **body):
    return stack.api("/api/tasks/", {"kind": "example", "message": "chart", "count": 1, "delay": 0, **body})


def open_live(browser, url, width=1280):
    page = new_page(browser)
    page.set_viewport_size({"width": width, "height": 900})
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(url)
    wait_live(page)
    return page


def test_the_charts_draw_with_uplot_and_a_new_run_reaches_them_live(browser, stack, artifacts_dir):
    page = open_live(browser, stack.url + "/charts/")
    assert page.locator(".chart canvas").count() == 4
    before = int(page.evaluate(STARTED) or 0)
    launch(stack)
    page.wait_for_function(f"Number({STARTED}) > {before}", timeout=15_000)
    # its name's row came with it
    page.locator(f'#chart-names a[href="/charts/{NAME}/"]').wait_for(timeout=5_000)
    page.screenshot(path=str(artifacts_dir / "charts-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts_dir / "charts-390.png"), full_page=True)

    one = open_live(browser, f"{stack.url}/charts/{NAME}/")
    assert one.locator(".chart canvas").count() == 5  # the histogram, and the four over time
    assert int(one.text_content("[data-testid=started]")) >= 1
    one.screenshot(path=str(artifacts_dir / "task-name-1280.png"), full_page=True)
    one.set_viewport_size({"width": 390, "height": 844})
    one.screenshot(path=str(artifacts_dir / "task-name-390.png"), full_page=True)
    assert page.errors == one.errors == []


def test_a_failure_is_counted_into_its_group_live(browser, stack, artifacts_dir):
    launch(stack, count=2, fail_at=1)
    page = open_live(browser, stack.url + "/failures/")
    group = page.locator("[data-testid=failure-group]", has_text="DemoTaskError")
    group.wait_for(timeout=15_000)  # the first failure: from the database, or live
    count, group_id = int(group.get_attribute("data-count")), group.get_attribute("id")
    launch(stack, count=3, fail_at=2)
    page.wait_for_function(
        "([id, n]) => Number(document.getElementById(id).dataset.count) > n",
        arg=[group_id, count],
        timeout=15_000,
    )
    assert group.count() == 1  # counted into its group, not a second one
    assert page.locator("[data-testid=failure-group]").first.get_attribute("id") == group_id  # on top
    assert page.locator("#failure-feed > *").count() == 0
    page.screenshot(path=str(artifacts_dir / "failures-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts_dir / "failures-390.png"), full_page=True)
    assert page.errors == []
