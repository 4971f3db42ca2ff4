"""The page in a real browser: launch in one, watch in two (real Daphne, worker, Chromium)."""

import itertools
import json
import time

import pytest

from tests.browser import card, launch, open_page, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture
def two_pages(browser, stack):
    viewer_a, viewer_b = open_page(browser, stack.url), open_page(browser, stack.url)
    yield viewer_a, viewer_b
    for page in (viewer_a, viewer_b):
        assert page.evaluate("window.__sameDocument") is True
        page.context.close()


def test_a_run_launched_in_one_browser_plays_out_live_in_both(two_pages, artifacts_dir):
    viewer_a, viewer_b = two_pages
    task_id = launch(viewer_a, "Bob", 5)
    for page in (viewer_a, viewer_b):
        card(page, task_id).locator(".iteration").nth(1).wait_for(timeout=15_000)
    viewer_b.screenshot(path=str(artifacts_dir / "page-midrun.png"))
    expected = [f"Bob - iteration {i}" for i in range(1, 6)]
    for page in (viewer_a, viewer_b):
        wait_state(page, task_id, "Succeeded")
        run = card(page, task_id)
        assert run.locator(".iteration").all_inner_texts() == expected
        assert run.locator("[data-testid=progress]").inner_text() == "5 / 5"
        # The result's `results` are the iterations listed under it: said, not repeated.
        result = run.locator("[data-testid=result]").inner_text()
        assert json.loads(result.replace("[… the 5 iterations listed]", '"listed"')) == {
            "name": "Bob",
            "count": 5,
            "results": "listed",
            "status": "completed",
        }
        assert run.locator("[data-testid=worker]").inner_text().startswith("stack-")
        assert run.locator("[data-testid=run-time]").inner_text().endswith(" s")
    viewer_a.screenshot(path=str(artifacts_dir / "page-done.png"))


def test_a_failing_run_shows_failure_and_its_error_in_both(two_pages):
    viewer_a, viewer_b = two_pages
    task_id = launch(viewer_a, "Doomed", 3, delay="0.05", fail_at=2)
    for page in (viewer_a, viewer_b):
        wait_state(page, task_id, "Failed")
        run = card(page, task_id)
        assert run.locator("[data-testid=error]").inner_text() == (
            "DemoTaskError: Failed at iteration 2 of 3 (fail_at=2)"
        )
        assert run.locator(".iteration").all_inner_texts() == ["Doomed - iteration 1"]


def test_a_message_with_a_script_tag_is_shown_as_text_and_never_run(two_pages):
    viewer_a, viewer_b = two_pages
    message = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    task_id = launch(viewer_a, message, 1, delay="0")
    for page in (viewer_a, viewer_b):
        wait_state(page, task_id, "Succeeded")
        run = card(page, task_id)
        assert run.locator(".run__message").inner_text() == message
        assert run.locator(".iteration").inner_text() == f"{message} - iteration 1"
        assert run.locator("script, img").count() == 0
        assert page.dialogs == []


def test_bad_input_shows_errors_next_to_the_fields(two_pages):
    viewer_a, _ = two_pages
    viewer_a.get_by_label("Message").fill("")
    viewer_a.get_by_label("Iterations").fill("5000")
    viewer_a.get_by_role("button", name="Run task").click()
    viewer_a.get_by_text("This field is required.").wait_for(timeout=5_000)
    assert viewer_a.get_by_text("Ensure this value is less than or equal to 1000.").is_visible()


def test_a_long_unbroken_message_does_not_widen_the_page(two_pages):
    viewer_a, viewer_b = two_pages
    task_id = launch(viewer_a, "x" * 500, 2, delay="0")  # the longest message the form takes
    for page in (viewer_a, viewer_b):
        wait_state(page, task_id, "Succeeded")
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


#: Records, in the page, when its socket dropped and when each reconnect began.
RECORD_RECONNECTS = """
window.__attempts = [];
window.__droppedAt = null;
document.addEventListener("htmx:wsConnecting", () => window.__attempts.push(performance.now()));
new MutationObserver(() => {
  if (document.documentElement.dataset.connection === "reconnecting" && window.__droppedAt === null)
    window.__droppedAt = performance.now();
}).observe(document.documentElement, {attributes: true, attributeFilter: ["data-connection"]});
"""


def test_pages_are_live_again_seconds_after_the_server_and_reload_when_told_to_resync(browser, stack):
    steady, stale = open_page(browser, stack.url), open_page(browser, stack.url)
    steady.evaluate(RECORD_RECONNECTS)
    stack.stop_web()
    for page in (steady, stale):
        page.wait_for_selector("#connection.conn--reconnecting", timeout=10_000)
    # What a page holds after Redis lost its data and its ids went back: its socket is
    # refused with 4409, and the page reloads its snapshot by itself.
    stale.evaluate("document.getElementById('live-cursor').dataset.lastId = '99999999999999-0'")
    stack.start_web()
    back = time.monotonic()
    steady.wait_for_selector("#connection.conn--live", timeout=10_000)
    live_after = time.monotonic() - back
    dropped, attempts = steady.evaluate("[window.__droppedAt, window.__attempts]")
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert attempts[0] - dropped < 1000, f"first retry after {attempts[0] - dropped:.0f} ms"
    assert max(gaps) < 5500, f"retries {[round(g) for g in gaps]} ms apart"
    assert live_after < 3, f"live {live_after:.1f} s after the server was back (retries {gaps} ms apart)"
    assert steady.evaluate("window.__sameDocument") is True  # reconnected, not reloaded

    stale.wait_for_function("window.__sameDocument === undefined", timeout=15_000)  # reloaded
    stale.wait_for_selector("#connection.conn--live", timeout=10_000)
    assert stale.locator("#live-cursor").get_attribute("data-last-id") != "99999999999999-0"
    for page in (steady, stale):
        page.context.close()
