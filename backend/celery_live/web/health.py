"""`GET /healthz`: Redis, the database and the Celery workers, each checked for real."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from celery import current_app as celery_app
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from celery_live.conf import conf

_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="healthz")


def check_redis() -> str:
    client = redis.Redis.from_url(conf.redis_url, socket_timeout=2, socket_connect_timeout=2)
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
    broker_down = report["redis"] != "ok" and conf.redis_url == getattr(settings, "CELERY_BROKER_URL", None)
    report["workers"] = 0 if broker_down else count_workers()
    down = [name for name in ("redis", "database") if report[name] != "ok"]
    if report["workers"] == 0:
        down.append("workers")
    if down:
        report["down"] = down
    return report, not down


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 with {"redis", "database", "workers"} when all is up, else 503 naming what is down."""
    report, ok = health()
    return JsonResponse(report, status=200 if ok else 503)
