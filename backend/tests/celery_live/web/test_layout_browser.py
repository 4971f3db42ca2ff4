"""The pages as a new user finds them, in Chromium against the real stack: every page at
390 px wide (no sideways overflow, the navigation reachable; screenshots in
test-artifacts/), a long run's iterations following their newest, "Run task" with the
server unreachable, pages that cannot go live saying so, a filtered list without htmx
errors, the result not repeating the iterations, the dark theme and the keyboard shortcuts.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from celery_live.web import errors
from tests.browser import new_page, wait_live
from tests.helpers import wait_for

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LONG_RUN = 60  # iterations: the detail page of a run this long was 7,976 px tall at 390 px
NAME = "apps.assets.tasks.example_async_task"
FINAL = ("SUCCESS", "FAILURE")


def launch(stack, **body) -> str:
    answer = stack.api(
        "/api/tasks/", {"kind": "example", "message": "layout", "count": 1, "delay": 0, **body}
    )
    assert "task_id" in answer, answer
    return answer["task_id"]


def wait_final(stack, task_id: str) -> dict:
    """The run once it ended and the recorder wrote it down: the list of runs comes from the
    database, and each test starts with an empty event log (conftest's clean_log)."""

    def recorded():
        runs = stack.api("/api/tasks/?limit=500")["results"]
        return next((r for r in runs if r["task_id"] == task_id and r["state"] in FINAL), None)

    return wait_for(recorded, timeout=30, message=f"run {task_id} to end")


def phone_page(browser, color_scheme: str = "light"):
    page = new_page(browser)
    page.set_viewport_size(PHONE)
    page.emulate_media(color_scheme=color_scheme)
    page.console = []
    page.on("console", lambda message: page.console.append(f"{message.type}: {message.text}"))
    page.sockets = []
    page.on("websocket", lambda ws: page.sockets.append(ws.url))
    return page


@pytest.fixture(scope="module")
def long_run(stack) -> str:
    """A finished run of many iterations (each with its result), and its id."""
    task_id = launch(stack, message="Long", count=LONG_RUN)
    assert wait_final(stack, task_id)["state"] == "SUCCESS"
    return task_id


def forbidden_page() -> str:
    """The product's 403 page, rendered as a refused visitor would get it."""
    request = RequestFactory().get("/workers/")
    request.user = AnonymousUser()
    return errors.forbidden(request, errors.FORBIDDEN).content.decode()


#: Each navigation link scrolled into view: its text, left and right edges.
REACH = """links => links.map(link => {
  link.scrollIntoView({block: "nearest", inline: "nearest"});
  const box = link.getBoundingClientRect();
  return [link.textContent.trim(), box.left, box.right];
})"""

PAGES = {
    "index": "/",
    "tour": "/tour/",
    "runs": "/runs/",
    "runs-bad-filter": "/runs/?time_from=notadate",
    "task": "/tasks/{long_run}/",
    "workers": "/workers/",
    "queues": "/queues/",
    "charts": "/charts/",
    "task-name": f"/charts/{NAME}/",
    "failures": "/failures/",
    "login": "/accounts/login/",
    "404": "/no-such-page/",
    "403": None,  # the 404 page's document, given the 403 page's HTML
}


@pytest.mark.parametrize("name", PAGES)
def test_every_page_fits_390_px_with_its_navigation_reachable(browser, stack, long_run, artifacts_dir, name):
    page = phone_page(browser)
    path = PAGES[name] or PAGES["404"]
    page.goto(stack.url + path.format(long_run=long_run))
    if name == "403":
        page.set_content(forbidden_page())
        assert page.locator(".message-page__code").inner_text() == "403"
    page.wait_for_load_state("load")
    if name == "task":
        # The timeline's detail has a line of its own, not a column a few pixels wide.
        page.locator(".timeline__item").last.wait_for()
        widths = page.eval_on_selector_all(".timeline__detail", "cells => cells.map(c => c.clientWidth)")
        assert min(widths) > 250, widths
    page.screenshot(path=str(artifacts_dir / f"layout-390-{name}.png"), full_page=True)
    overflow = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert overflow[0] <= PHONE["width"], f"{name} is {overflow[0]} px wide"
    # Each link, scrolled into view as a finger would scroll the row, lies within the screen.
    links = page.eval_on_selector_all(".topbar__nav a", REACH)
    if name == "login":  # a login page links nowhere its visitor could go yet
        assert links == []
    else:
        assert len(links) >= 6
        for text, left, right in links:
            assert 0 <= left < right <= PHONE["width"], (text, left, right)
    page.context.close()


def test_the_runs_list_at_390_px_shows_each_runs_figures_within_the_screen(browser, stack, long_run):
    page = phone_page(browser)
    page.goto(stack.url + "/runs/")
    row = page.locator(f"#row-{long_run}")
    box = row.bounding_box()
    assert 0 <= box["x"] <= box["x"] + box["width"] <= PHONE["width"]
    for label in ("progress", "worker", "queue", "run time"):
        cell = row.locator(f"[data-label='{label}']")
        assert cell.is_visible()
        cell_box = cell.bounding_box()
        assert cell_box["x"] + cell_box["width"] <= PHONE["width"], label
    assert row.locator("[data-label=progress]").inner_text().endswith(f"{LONG_RUN} / {LONG_RUN}")
    page.context.close()


def scroll_state(page, task_id):
    return page.eval_on_selector(
        f"#run-{task_id}-results",
        "l => ({top: l.scrollTop, bottom: l.scrollHeight - l.clientHeight, count: l.children.length})",
    )


def at_bottom(page, task_id):
    state = scroll_state(page, task_id)
    return state["top"] >= state["bottom"] - 4


def test_a_long_runs_iterations_follow_the_newest_unless_scrolled_up(browser, stack):
    page = new_page(browser)
    page.goto(stack.url + "/")
    wait_live(page)
    task_id = launch(stack, message="Tail", count=80, delay=0.05)
    results = page.locator(f"#run-{task_id}-results .iteration")
    results.nth(25).wait_for(timeout=15_000)
    assert scroll_state(page, task_id)["bottom"] > 0  # the list scrolls
    # ...and shows the newest (read after the swaps of a frame have all been made).
    wait_for(lambda: at_bottom(page, task_id), timeout=2, message="the list at its newest")
    # The reader scrolls up: the list stays where they are while iterations arrive.
    page.eval_on_selector(f"#run-{task_id}-results", "l => { l.scrollTop = 10; }")
    seen = scroll_state(page, task_id)["count"]
    wait_for(lambda: scroll_state(page, task_id)["count"] > seen + 10, message="more iterations")
    assert scroll_state(page, task_id)["top"] == 10
    # Back at the bottom, it follows again.
    page.eval_on_selector(f"#run-{task_id}-results", "l => { l.scrollTop = l.scrollHeight; }")
    seen = scroll_state(page, task_id)["count"]
    wait_for(lambda: scroll_state(page, task_id)["count"] > seen + 5, message="more iterations")
    wait_for(lambda: at_bottom(page, task_id), timeout=2, message="the list following again")
    page.context.close()


def test_run_task_with_the_server_unreachable_says_so_until_a_launch_succeeds(browser, stack, artifacts_dir):
    page = new_page(browser)
    page.goto(stack.url + "/")
    wait_live(page)
    page.get_by_label("Message").fill("Unreachable")
    if page.get_by_label("Delay (s)").count():  # a short run: the next tests start with an empty log
        page.get_by_label("Delay (s)").fill("0")
    page.route("**/launch/", lambda route: route.abort("connectionrefused"))
    page.get_by_role("button", name="Run task").click()
    note = page.locator("#launch-form .send-error")
    note.wait_for(timeout=5_000)
    assert note.inner_text() == "Could not reach the server: nothing was sent. Is it running?"
    page.locator("#launch-form").screenshot(path=str(artifacts_dir / "launch-unreachable.png"))
    assert page.locator("#launch-form .sent").count() == 0
    page.unroute("**/launch/")
    page.get_by_role("button", name="Run task").click()
    page.locator("#launch-form .sent a").wait_for(timeout=10_000)
    assert page.locator(".send-error").count() == 0
    page.context.close()


def test_pages_that_cannot_go_live_say_so_and_open_no_socket(browser, stack):
    page = phone_page(browser)
    page.goto(stack.url + "/runs/?time_from=notadate&name=layout")
    status = page.get_by_test_id("connection")
    assert status.inner_text() == "Not live: fix the filter"
    assert page.get_by_role("alert").inner_text().startswith("time_from")

    older = f"/runs/?name=layout&before={time.time() - 3600}"
    page.goto(stack.url + older)
    assert status.inner_text() == "Older page · not live · live page"
    page.get_by_role("link", name="live page").click()
    page.wait_for_url(stack.url + "/runs/?name=layout")
    wait_live(page)
    page_sockets = [url for url in page.sockets if "/ws/page/" in url]
    assert len(page_sockets) == 1, page.sockets
    assert "before" not in page_sockets[0]
    page.context.close()


def test_a_filtered_list_gets_no_htmx_errors_for_the_runs_it_does_not_show(browser, stack):
    page = phone_page(browser)
    page.goto(stack.url + "/runs/?state=success&q=filtered")
    wait_live(page)
    failing = launch(stack, message="filtered out", count=3, delay=0.05, fail_at=3)
    wait_final(stack, failing)
    # The log is in order: once this run's row shows, the page has had every event before it.
    passing = launch(stack, message="filtered in", count=3, delay=0.05)
    page.locator(f"#row-{passing}").wait_for(timeout=15_000)
    assert page.locator(f"#row-{passing} [data-testid=state]").text_content() == "Succeeded"
    assert page.locator(f"#row-{failing}").count() == 0
    assert page.locator("#runs-rows .row").count() == 1
    assert not [line for line in page.console if "oobErrorNoTarget" in line or "error" in line.split(":")[0]]
    page.context.close()


def test_the_result_does_not_repeat_the_iterations_and_the_card_links_to_its_run(browser, stack, long_run):
    page = new_page(browser)
    page.goto(stack.url + f"/tasks/{long_run}/")
    result = page.get_by_test_id("result").inner_text()
    assert f'"results": [… the {LONG_RUN} iterations listed]' in result
    assert "Long - iteration 1" not in result
    assert page.locator(".iteration").count() == LONG_RUN
    # The run's own page shows all of its result, uncut.
    assert page.eval_on_selector("[data-testid=result]", "r => r.scrollHeight <= r.clientHeight")
    page.goto(stack.url + "/")
    page.get_by_role("link", name="All runs →").click()
    page.wait_for_url(stack.url + "/runs/")
    page.goto(stack.url + "/")
    page.locator(f"#run-{long_run} .run__meta a").click()
    page.wait_for_url(stack.url + f"/tasks/{long_run}/")
    page.context.close()


def colours(page, selector):
    return page.eval_on_selector(
        selector, "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]"
    )


def luminance(css_rgb: str) -> float:
    red, green, blue = (int(part) for part in css_rgb[css_rgb.index("(") + 1 : -1].split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


PANELS = (".run", ".run__result", ".run__error", ".chart-card", ".failure", ".runs-table", ".panel")


def test_the_dark_theme_follows_the_system(browser, stack, long_run, artifacts_dir):
    light = phone_page(browser, "light")
    light.goto(stack.url + "/")
    background, ink = colours(light, "html")
    assert luminance(background) > 0.9, background
    assert luminance(ink) < 0.2, ink
    light.context.close()
    dark = phone_page(browser, "dark")
    for path in ("/", f"/tasks/{long_run}/", "/charts/", "/failures/"):
        dark.goto(stack.url + path)
        background, ink = colours(dark, "html")
        assert luminance(background) < 0.15, background
        assert luminance(ink) > 0.8, ink
        # Every panel and card stays readable: light text on a dark ground.
        for selector in PANELS:
            if dark.locator(selector).count():
                background, ink = colours(dark, selector)
                assert luminance(background) < 0.2, (path, selector, background)
                assert luminance(ink) > 0.7, (path, selector, ink)
        if dark.locator(".chart canvas").count():  # uPlot's black axes keep a light ground
            background, _ = colours(dark, ".chart")
            assert luminance(background) > 0.9
        slug = path.strip("/").split("/")[0] or "index"
        dark.screenshot(path=str(artifacts_dir / f"dark-390-{slug}.png"))
    dark.context.close()


def test_keyboard_shortcuts_search_help_and_go_but_never_while_typing(browser, stack, artifacts_dir):
    page = new_page(browser)
    page.goto(stack.url + "/")
    page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    help_dialog.wait_for()
    assert "Search the runs" in help_dialog.inner_text()
    page.screenshot(path=str(artifacts_dir / "shortcuts-help.png"))
    page.keyboard.press("Escape")
    help_dialog.wait_for(state="hidden")

    # Typing in a field types: no help, no search.
    page.get_by_label("Message").fill("")
    page.get_by_label("Message").type("a/b?g")
    assert page.get_by_label("Message").input_value() == "a/b?g"
    assert not help_dialog.is_visible()
    assert page.url == stack.url + "/"

    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("/")  # from another page: to the runs page's search
    page.wait_for_url(stack.url + "/runs/#search")
    search = page.get_by_role("searchbox", name="Search")
    wait_for(lambda: search.evaluate("e => e === document.activeElement"), message="search focused")
    page.keyboard.type("x/y")
    assert search.input_value() == "x/y"

    page.locator("h1").click()
    page.keyboard.press("g")
    page.keyboard.press("w")
    page.wait_for_url(stack.url + "/workers/")
    page.keyboard.press("/")
    page.wait_for_url(stack.url + "/runs/#search")
    page.context.close()
