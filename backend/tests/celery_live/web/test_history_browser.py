"""History and control in a real browser: restarts, reconnects, revoke/terminate/re-run."""

import json
import re
import time
import urllib.request

import pytest

from celery_live.log import publishing, store
from tests.browser import card, launch, open_page, wait_state
from tests.helpers import wait_for

pytestmark = pytest.mark.browser


def click_confirmed(page, locator):
    locator.click()  # open_page accepts the confirmation dialog


def test_the_page_recovers_by_itself_when_daphne_restarts_mid_run(browser, stack, artifacts_dir):
    page = open_page(browser, stack.url)
    time.sleep(0.5)
    task_id = launch(page, "Survivor", 8, delay="0.4")
    card(page, task_id).locator(".iteration").nth(1).wait_for(timeout=15_000)
    stack.stop_web()
    page.wait_for_selector("#connection.conn--reconnecting", timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "page-reconnecting.png"))
    time.sleep(1.0)
    stack.start_web()
    wait_state(page, task_id, "Succeeded", timeout=40_000)
    page.wait_for_selector("#connection.conn--live", timeout=10_000)
    assert card(page, task_id).locator(".iteration").all_inner_texts() == [
        f"Survivor - iteration {i}" for i in range(1, 9)
    ]
    assert card(page, task_id).locator("[data-testid=progress]").inner_text() == "8 / 8"
    assert page.evaluate("window.__sameDocument") is True
    page.context.close()


def test_revoke_terminate_and_rerun_from_the_page_show_live_in_another_browser(browser, stack, artifacts_dir):
    actor, watcher = open_page(browser, stack.url), open_page(browser, stack.url)
    time.sleep(0.5)
    busy_one = launch(actor, "Busy one", 60, delay="0.3")
    busy_two = launch(actor, "Busy two", 60, delay="0.3")
    for task_id in (busy_one, busy_two):
        wait_state(watcher, task_id, "Running", timeout=15_000)
    queued = launch(actor, "Waiting", 3, delay="0.1")  # both worker processes are busy
    wait_state(watcher, queued, "Received", timeout=15_000)

    click_confirmed(actor, card(actor, queued).get_by_role("button", name="Revoke"))
    wait_state(watcher, queued, "Revoked", timeout=15_000)
    assert card(watcher, queued).locator(".iteration").count() == 0

    click_confirmed(actor, card(actor, busy_one).get_by_role("button", name="Terminate"))
    wait_state(watcher, busy_one, "Revoked", timeout=15_000)
    watcher.screenshot(path=str(artifacts_dir / "page-controls.png"))

    known = set(watcher.locator(".run").evaluate_all("els => els.map(e => e.dataset.taskId)"))
    click_confirmed(actor, card(actor, busy_one).get_by_role("button", name="Re-run"))
    new_card = wait_for(
        lambda: [
            t
            for t in watcher.locator(".run").evaluate_all("els => els.map(e => e.dataset.taskId)")
            if t not in known
        ],
        timeout=15,
        message="the re-run's card",
    )
    rerun_id = new_card[0]
    assert card(watcher, rerun_id).locator(".run__message").inner_text() == "Busy one"
    wait_state(watcher, rerun_id, "Running", timeout=15_000)
    for task_id in (busy_two, rerun_id):  # leave the worker free for the next tests
        stack.api(f"/api/tasks/{task_id}/revoke", {"terminate": True})
        wait_state(watcher, task_id, "Revoked", timeout=15_000)
    assert stack.api(f"/api/tasks/{rerun_id}/")["rerun_of"] == busy_one
    for page in (actor, watcher):
        page.context.close()


def test_after_every_process_restarts_the_list_and_details_still_show_every_run(
    browser, stack, artifacts_dir
):
    ids = [
        stack.api("/api/tasks/", {"message": f"Kept {i}", "count": 2, "delay": 0})["task_id"]
        for i in range(3)
    ]
    ids.append(
        stack.api("/api/tasks/", {"message": "Kept failing", "count": 2, "delay": 0, "fail_at": 2})["task_id"]
    )
    wait_for(
        lambda: (
            {
                r["task_id"]
                for r in stack.api("/api/tasks/?limit=500")["results"]
                if r["state"] in ("SUCCESS", "FAILURE")
            }
            >= set(ids)
        ),
        timeout=30,
        message="all recorded",
    )
    stack.stop_worker()
    stack.stop_web()
    client = publishing.get_publisher().client  # even Redis loses the event log: the database keeps it
    client.delete(*client.keys(f"{store.stream_key()}*"))
    stack.start_web()
    stack.start_worker()

    listed = {r["task_id"]: r for r in stack.api("/api/tasks/?limit=500")["results"]}
    launch_page = open_page(browser, stack.url)
    for task_id in ids:
        launch_page.locator(f"#run-{task_id}").wait_for(timeout=5_000)
    launch_page.context.close()
    assert set(ids) <= set(listed)
    assert listed[ids[-1]]["state"] == "FAILURE"
    page = open_page(browser, stack.url, "/runs/?q=kept")
    for task_id in ids:
        page.locator(f"#row-{task_id}").wait_for(timeout=5_000)
    assert page.locator("#runs-rows .row").count() == 4
    page.screenshot(path=str(artifacts_dir / "runs-list.png"))
    page.goto(f"{stack.url}/tasks/{ids[-1]}/")
    assert page.locator("[data-testid=state]").text_content() == "Failed"
    assert "DemoTaskError" in page.locator("[data-testid=traceback]").inner_text()
    timeline = page.locator("#timeline .timeline__item").evaluate_all("els => els.map(e => e.dataset.type)")
    assert timeline[0] == "task.sent"
    assert timeline[-1] == "task.failed"
    page.screenshot(path=str(artifacts_dir / "task-detail.png"), full_page=True)
    page.context.close()


def test_the_list_page_updates_live_and_respects_its_filters(browser, stack):
    page = open_page(browser, stack.url, "/runs/?state=FAILURE")
    time.sleep(0.5)
    ok = stack.api("/api/tasks/", {"message": "fine", "count": 1, "delay": 0})["task_id"]
    bad = stack.api("/api/tasks/", {"message": "broken", "count": 2, "delay": 0.2, "fail_at": 2})["task_id"]
    page.locator(f"#row-{bad} [data-testid=state]", has_text="Failed").wait_for(timeout=15_000)
    assert page.locator(f"#row-{ok}").count() == 0
    everything = open_page(browser, stack.url, "/runs/")
    time.sleep(0.5)
    new = stack.api("/api/tasks/", {"message": "arrives live", "count": 2, "delay": 0.2})["task_id"]
    everything.locator(f"#row-{new} [data-testid=state]", has_text="Succeeded").wait_for(timeout=15_000)
    assert everything.locator("#runs-rows .row").first.get_attribute("id") == f"row-{new}"
    for p in (page, everything):
        p.context.close()


def test_a_page_opened_after_redis_lost_its_log_replays_none_of_the_history(stack):
    # Redis restarted empty while the database keeps days of history: the page's snapshot
    # comes from the database, so its socket must start after it, not from "0-0".
    task_id = stack.api("/api/tasks/", {"message": "Before the loss", "count": 2, "delay": 0})["task_id"]
    wait_for(
        lambda: task_id in {r["task_id"] for r in stack.api("/api/tasks/?state=SUCCESS")["results"]},
        timeout=30,
        message="the run recorded",
    )
    stack.stop_worker()  # no heartbeat may refill the stream before the page is rendered
    client = publishing.get_publisher().client
    client.delete(*client.keys(f"{store.stream_key()}*"))
    with urllib.request.urlopen(stack.url + "/", timeout=10) as response:
        cursor = re.search(r'data-last-id="([^"]*)"', response.read().decode()).group(1)
    stack.start_worker()
    assert cursor != "0-0"
    new = publishing.publish("task.sent", task_id="after-the-loss", name="n")  # before the socket opens

    from websockets.sync.client import connect  # sync: Playwright's loop runs in this thread

    with connect(f"ws://127.0.0.1:{stack.port}/ws/events/?since={cursor}", origin=stack.url) as ws:
        frame = {}
        while not frame.get("task_id"):  # skip worker heartbeats
            frame = json.loads(ws.recv(timeout=10))
    assert frame["id"] == new["id"]
