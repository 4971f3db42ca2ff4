"""Queue depth with real processes: the stack's recorder runs the sampler, a second worker
consumes a queue of its own, and its consumption is cancelled and resumed by Celery's
remote control; seen through `/api/queues/`, as `queue.depth` events in the log, and on the
queues page in Chromium.

Here, among the pages' tests, rather than beside the sampler's (runs/): Playwright's sync
API leaves an event loop running in the test process, which the async tests of stream/
(collected after runs/) could not run beside.
"""

from __future__ import annotations

import itertools
import socket
import uuid

import pytest

from celery_live.runs import history
from config.celery import app
from tests.browser import open_page
from tests.helpers import final_run, wait_for


def queue_entry(stack, queue: str) -> dict | None:
    return next((q for q in stack.api("/api/queues/")["results"] if q["name"] == queue), None)


def logged(queue: str) -> list[dict]:
    """What `queue.depth` events said of `queue`, in log order."""
    return [
        entry
        for event in history.read_after("0-0")
        if event["type"] == "queue.depth"
        for entry in event["data"]["queues"]
        if entry["name"] == queue
    ]


def test_depth_rises_while_consumption_is_cancelled_and_falls_when_it_resumes(stack):
    queue = f"cl-consumed-{uuid.uuid4().hex[:6]}"
    name = f"consumer-{stack.port}"
    hostname = f"{name}@{socket.gethostname()}"
    stack.spawn_worker(name, queue, concurrency=1)
    # Its heartbeat lists the queue: the sampler knows it, and who consumes it.
    wait_for(lambda: (queue_entry(stack, queue) or {}).get("workers") == [hostname], message="its consumer")

    assert app.control.cancel_consumer(queue, destination=[hostname], reply=True, timeout=5)
    sent = [app.send_task("apps.assets.tasks.noop", queue=queue).id for _ in range(3)]
    wait_for(lambda: (queue_entry(stack, queue) or {}).get("depth") == 3, message="3 waiting")
    assert queue_entry(stack, queue)["priorities"]["0"] == 3
    # Its next heartbeat no longer lists the queue: nobody consumes it.
    wait_for(lambda: (queue_entry(stack, queue) or {}).get("consumers") == 0, message="no consumer")
    assert [history.get_run(task_id).state for task_id in sent] == ["PENDING"] * 3

    assert app.control.add_consumer(queue, destination=[hostname], reply=True, timeout=5)
    wait_for(lambda: (queue_entry(stack, queue) or {}).get("depth") == 0, message="the queue drained")
    assert [final_run(task_id).state for task_id in sent] == ["SUCCESS"] * 3

    said = logged(queue)
    depths = [entry["depth"] for entry in said]
    top = depths.index(3)
    assert depths[: top + 1] == sorted(depths[: top + 1])  # rose to 3
    assert depths[top:] == sorted(depths[top:], reverse=True)  # then fell
    assert depths[-1] == 0
    # Only changes are published: no two in a row say the same.
    unchanged = [a for a, b in itertools.pairwise(said) if a | {"changed_at": 0} == b | {"changed_at": 0}]
    assert not unchanged


@pytest.mark.browser
def test_the_queues_page_shows_a_queue_fill_and_drain_live(stack, browser, artifacts_dir):
    queue = f"cl-page-{uuid.uuid4().hex[:6]}"
    page = open_page(browser, stack.url, "/queues/")
    for priority in (0, 9):  # a queue no worker consumes, new to the page
        app.send_task("apps.assets.tasks.noop", queue=queue, priority=priority)
    row = page.locator(f"[data-queue='{queue}']")
    row.locator("[data-testid=depth]", has_text="2").wait_for(timeout=15_000)
    assert row.locator(".chip--on").all_inner_texts() == ["0: 1", "9: 1"]
    assert row.locator(".badge", has_text="no consumer").count() == 1
    assert row.locator("a").get_attribute("href") == f"/runs/?state=PENDING&queue={queue}"
    page.screenshot(path=str(artifacts_dir / "queues-filled.png"))
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)
    row.locator("[data-testid=depth]", has_text="0").wait_for(timeout=15_000)
    assert row.locator(".badge").count() == 0
    assert page.evaluate("window.__sameDocument")  # live, not reloaded
