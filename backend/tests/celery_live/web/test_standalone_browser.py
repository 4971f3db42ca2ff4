"""`celery-live` watching a plain Celery cluster, in Chromium: the cluster's runs appear on
the page and change live (the bridge's events rendered like our own), and its worker's card
says what Celery's events cannot tell."""

from __future__ import annotations

import os
import re
import socket

import pytest
import redis

from celery_live.processes.redis_server import free_port
from tests.browser import card, open_page, wait_state
from tests.celery_live.standalone import Running
from tests.helpers import wait_for
from tests.plain_celery import ADD, SLEEP, PlainCelery

pytestmark = pytest.mark.browser

#: The test run's Redis database this module's cluster uses as its broker.
BROKER_DB = 12


@pytest.fixture
def standalone(tmp_path):
    broker = re.sub(r"/\d*$", "", os.environ["REDIS_URL"]) + f"/{BROKER_DB}"
    redis.Redis.from_url(broker).flushdb()
    running = Running(tmp_path, free_port(), "--broker", broker, "--data-dir", str(tmp_path / "data"))
    try:
        running.wait_ready()
        yield running, broker
        assert running.interrupt() == 0, running.output
    finally:
        running.kill()


def test_a_plain_clusters_runs_go_live_through_their_states_on_the_page(
    browser, standalone, tmp_path, artifacts_dir
):
    running, broker = standalone
    hostname = f"plain-{running.port}@{socket.gethostname()}"
    with PlainCelery(tmp_path / "other", broker, queue="browser-standalone") as other:
        with other.worker(events=True, hostname=hostname):
            page = open_page(browser, running.url)
            assert "Every run its Celery workers report" in page.content()
            slow = other.app.send_task(SLEEP, args=(2,)).id
            wait_state(page, slow, "Started")  # live: the page was open before it was sent
            added = other.app.send_task(ADD, args=(40, 2)).id
            wait_state(page, added, "Succeeded")
            assert card(page, added).locator("[data-testid=result]").inner_text() == "42"
            wait_state(page, slow, "Succeeded")
            page.screenshot(path=str(artifacts_dir / "standalone-runs.png"))

            page.goto(running.url + "/workers/")
            worker = page.locator("[data-testid=worker]", has_text=hostname)
            worker.wait_for(timeout=10_000)
            assert worker.get_by_test_id("pool").inner_text() == "? (via Celery's events)"
            assert "offline" not in worker.inner_text().lower()
            # Its next heartbeats (Celery's, every 2 s) count what the bridge saw end.
            idle = re.compile(r"active\s+0\s+reserved\s+0\s+processed\s+2", re.IGNORECASE)
            wait_for(lambda: idle.search(worker.inner_text()), 15, message="the worker idle after its 2 runs")
            page.set_viewport_size({"width": 390, "height": 900})
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(artifacts_dir / "standalone-workers-390.png"))
        wait_for(
            lambda: "offline" in worker.inner_text().lower(), 20, message="the worker offline on the page"
        )
