"""Health checks: Redis, the database and the Celery workers, each for real."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app

_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="healthz")


def check_redis() -> str:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
        return "ok"
    except redis.RedisError as exc:
        return f"error: {exc}"
    finally:
        client.close()


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception as exc:  # any driver's error means "down"
        return f"error: {exc}"


def count_workers(timeout: float = 1.0) -> int:
    """Ping the workers through the broker; the number that answered."""
    future = _pool.submit(celery_app.control.ping, timeout=timeout)
    try:
        return len(future.result(timeout + 3))
    except (FutureTimeout, Exception):
        return 0


def health() -> tuple[dict, bool]:
    """Return the health report and whether everything is up."""
    report: dict = {"redis": check_redis(), "database": check_database()}
    # With the broker on the same Redis, a ping cannot succeed; don't wait for it.
    broker_down = report["redis"] != "ok" and settings.CELERY_BROKER_URL == settings.REDIS_URL
    report["workers"] = 0 if broker_down else count_workers()
    down = [name for name in ("redis", "database") if report[name] != "ok"]
    if report["workers"] == 0:
        down.append("workers")
    if down:
        report["down"] = down
    return report, not down
