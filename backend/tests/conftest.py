"""Shared fixtures: a clean event log per test and a real in-thread Celery worker."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from config.celery import app as celery_app


@pytest.fixture
def redis_client():
    from apps.live.events import get_publisher

    client = get_publisher().client
    return client


@pytest.fixture(autouse=True)
def clean_log(redis_client):
    """Each test starts with an empty event log.

    Only our keys go: flushing the whole database would also drop kombu's queue
    bindings under a running worker, and its tasks would be routed nowhere.
    """
    keys = list(redis_client.scan_iter(match=f"{settings.CELERY_LIVE_STREAM_KEY}*", count=1000))
    if keys:
        redis_client.delete(*keys)
    return


@pytest.fixture(scope="session")
def celery_worker():
    """A real Celery worker (solo pool) in a thread of the test process."""
    assert settings.CELERY_BROKER_URL.startswith("redis://127.0.0.1:")
    with start_worker(celery_app, pool="solo", concurrency=1, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=10) as worker:
        yield worker
