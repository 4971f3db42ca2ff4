"""Shared fixtures: a clean event log per test and a real in-thread Celery worker."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from celery_live.conf import conf
from config.celery import app as celery_app
from tests.paths import ROOT_DIR


@pytest.fixture
def redis_client():
    from celery_live.log.publishing import get_publisher

    client = get_publisher().client
    return client


@pytest.fixture(autouse=True)
def clean_log(redis_client):
    """Each test starts with an empty event log.

    Only our keys go: flushing the whole database would also drop kombu's queue
    bindings under a running worker, and its tasks would be routed nowhere.
    """
    keys = list(redis_client.scan_iter(match=f"{conf.STREAM_KEY}*", count=1000))
    if keys:
        redis_client.delete(*keys)
    return


@pytest.fixture(scope="module")
def celery_worker():
    """A real Celery worker (solo pool) in a thread of the test process.

    Module-scoped, like `stack`, so a module's tasks are run by the workers it asked for.
    """
    assert settings.CELERY_BROKER_URL.startswith("redis://127.0.0.1:")
    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=10,
    ) as worker:
        yield worker


@pytest.fixture(scope="module")
def stack():
    """Daphne and a prefork worker in subprocesses, on the test run's Redis."""
    from tests.stack import Stack

    running = Stack().start()
    yield running
    running.stop()


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts_dir():

    path = ROOT_DIR / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
