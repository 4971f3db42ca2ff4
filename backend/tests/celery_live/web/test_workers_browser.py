"""Workers, for real: a second worker process appears online in the API and on the workers page,
answers control commands (its pool and its queues change in its next beats), and goes offline
within the timeout when it is killed; a run of a task no worker knows is flagged. Real
Daphne, recorder (and its reaper), prefork workers; Chromium for the page."""

from __future__ import annotations

import os
import signal
import time
import urllib.request

import pytest

from celery_live.runs import history
from config.celery import app
from tests.browser import card, open_page
from tests.helpers import wait_for
from tests.stack import Stack

#: This module's CELERY_LIVE_WORKER_TIMEOUT (s): a killed worker is offline this soon.
TIMEOUT = 3
EXAMPLE_TASK = "apps.assets.tasks.example_async_task"


@pytest.fixture(scope="module")
def stack():
    """The stack, with workers beating every 0.5 s and silent ones dead after `TIMEOUT` s."""
    running = Stack()
    running.env.update(CELERY_LIVE_WORKER_TIMEOUT=str(TIMEOUT), CELERY_LIVE_HEARTBEAT_INTERVAL="0.5")
    running.start()
    yield running
    app.control.purge()  # the runs sent to queues no worker consumes
    running.stop()


@pytest.fixture(scope="module")
def second(stack):
    """A second worker process (prefork, 1 process) on its own queue."""
    return stack.spawn_worker("second", "second-q", concurrency=1)


def newest(stack, name: str) -> dict | None:
    """The newest instance of the worker `name@…`, as `GET /api/workers/` lists it."""
    found = [w for w in stack.api("/api/workers/")["results"] if w["hostname"].startswith(f"{name}@")]
    return found[0] if found else None


def listed(stack, name: str, knows: str | None = None, **expected) -> dict:
    """Wait until the newest instance of `name@…` is listed with `expected` (and registering
    the task `knows`: each test starts with an empty log, and a worker sends its registered
    tasks again at its next beat)."""

    def check():
        worker = newest(stack, name)
        if not worker or (knows is not None and knows not in worker["registered"]):
            return None
        return worker if all(worker[k] == v for k, v in expected.items()) else None

    return wait_for(check, timeout=20, interval=0.2, message=f"{name} listed with {expected}")


def test_a_second_worker_is_listed_online_with_its_pool_concurrency_and_queues(stack, second):
    worker = listed(
        stack, "second", EXAMPLE_TASK, online=True, pool="prefork", concurrency=1, queues=["second-q"]
    )
    assert worker["pid"] == second.pid
    assert not [name for name in worker["registered"] if name.startswith("celery.")]
    assert (worker["active"], worker["processed"], worker["failed"]) == (0, 0, 0)
    # A task failing in its pool process counts on the worker's own beats.
    failing = {"name": "doomed", "count": 1, "delay": 0, "fail_at": 1}
    app.send_task(EXAMPLE_TASK, kwargs=failing, queue="second-q")
    app.send_task(EXAMPLE_TASK, kwargs={"name": "fine", "count": 1, "delay": 0}, queue="second-q")
    listed(stack, "second", processed=2, failed=1, active=0)


def test_pool_grow_through_the_api_is_acknowledged_and_its_next_beats_say_so(stack, second):
    hostname = listed(stack, "second", online=True)["hostname"]
    grown = stack.api(f"/api/workers/{hostname}/pool_grow", {"n": 1})
    assert (grown["status"], grown["message"]) == (
        "acknowledged",
        f"pool_grow sent → acknowledged by {hostname}",
    )
    listed(stack, "second", concurrency=2)
    shrunk = stack.api(f"/api/workers/{hostname}/pool_shrink", {"n": 1})
    assert shrunk["status"] == "acknowledged"
    listed(stack, "second", concurrency=1)
    commands = [e["data"]["action"] for e in history.read_after("0-0") if e["type"] == "worker.control"]
    assert commands == ["pool_grow", "pool_shrink"]


def test_cancel_and_add_consumer_change_the_queues_it_consumes(stack, second):
    hostname = listed(stack, "second", online=True)["hostname"]
    assert (
        stack.api(f"/api/workers/{hostname}/add_consumer", {"queue": "extra-q"})["status"] == "acknowledged"
    )
    listed(stack, "second", queues=["extra-q", "second-q"])
    assert (
        stack.api(f"/api/workers/{hostname}/cancel_consumer", {"queue": "second-q"})["status"]
        == "acknowledged"
    )
    listed(stack, "second", queues=["extra-q"])
    stack.api(f"/api/workers/{hostname}/add_consumer", {"queue": "second-q"})
    stack.api(f"/api/workers/{hostname}/cancel_consumer", {"queue": "extra-q"})
    listed(stack, "second", queues=["second-q"])


def test_a_killed_worker_goes_offline_within_the_timeout_with_one_event(stack, second):
    instance = listed(stack, "second", online=True)["instance"]
    os.killpg(second.pid, signal.SIGKILL)
    worker = listed(stack, "second", online=False)
    assert worker["instance"] == instance
    assert worker["offline_reason"].startswith("no heartbeat for ")

    def announced():
        return [e for e in history.read_after("0-0") if e["type"] == "worker.offline"]

    wait_for(announced, message="worker.offline")
    time.sleep(2)  # the reaper looks every second: two more looks must not announce it again
    [offline] = announced()
    assert offline["data"]["instance"] == instance
    assert offline["data"]["reason"].startswith("no heartbeat for ")
    assert listed(stack, "second")["offline_reason"] == offline["data"]["reason"]


def task_page(stack, task_id: str) -> str:
    with urllib.request.urlopen(f"{stack.url}/tasks/{task_id}/", timeout=10) as response:
        return response.read().decode()


def test_a_run_of_a_task_no_online_worker_registers_is_flagged(stack):
    listed(stack, f"stack-{stack.port}", EXAMPLE_TASK, online=True)
    unknown = app.send_task("nobody.knows.this", queue="nobody-q")
    known = app.send_task(EXAMPLE_TASK, kwargs={"name": "x", "count": 1}, queue="nobody-q")
    assert "No worker knows this task: it will wait." in task_page(stack, unknown.id)
    assert 'data-testid="unknown-task"' not in task_page(stack, known.id)


@pytest.mark.browser
def test_the_workers_page_follows_a_worker_live_from_its_start_to_its_death(stack, browser, artifacts_dir):
    page = open_page(browser, stack.url, "/workers/")
    third = stack.spawn_worker("third", "third-q", concurrency=1)
    worker = page.locator('[data-testid=worker][data-hostname^="third@"]')
    worker.locator("[data-testid=concurrency]", has_text="1").wait_for(timeout=20_000)
    worker.locator("summary", has_text="Control").click()
    worker.locator("[data-testid=pool-grow]").click()
    worker.locator("[data-testid=ack]", has_text="pool_grow sent → acknowledged by third@").wait_for(
        timeout=10_000
    )
    worker.locator("[data-testid=concurrency]", has_text="2").wait_for(timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "workers-live.png"), full_page=True)
    os.killpg(third.pid, signal.SIGKILL)
    worker.locator("[data-testid=worker-state]", has_text="Offline").wait_for(timeout=(TIMEOUT + 15) * 1000)
    assert worker.locator("[data-testid=offline-reason]").inner_text().startswith("no heartbeat for ")
    assert not worker.locator(".worker__control-panel").is_visible()  # nothing would answer
    assert page.evaluate("window.__sameDocument") is True
    page.context.close()


@pytest.mark.browser
def test_a_run_no_worker_can_take_is_flagged_on_its_card_as_it_arrives(stack, browser):
    page = open_page(browser, stack.url, "/")
    result = app.send_task("nobody.knows.this", queue="nobody-q")
    card(page, result.id).locator("[data-testid=unknown-task]").wait_for(timeout=10_000)
    page.context.close()
