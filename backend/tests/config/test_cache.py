"""The demo's cache (config/cache.py): Django's Redis cache on the shared Redis, whose
`clear()` deletes its own keys only, never the broker's queues or the event log."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from celery_live.processes.redis_server import free_port
from config.cache import RedisCache, glob_escape


def test_the_demo_caches_in_redis_under_a_prefix_of_its_own():
    [config] = settings.CACHES.values()
    assert config["BACKEND"] == "config.cache.RedisCache"
    assert config["LOCATION"] == os.environ["REDIS_URL"]
    assert config["KEY_PREFIX"]


def test_clearing_the_cache_leaves_every_other_key_of_the_redis():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    others = [f"another-app-queue-{uuid.uuid4().hex}", f"{settings.CACHES['default']['KEY_PREFIX']}-not-ours"]
    for key in others:
        client.rpush(key, "a task of theirs")
    try:
        cache.set("count", 1)
        cache.set("count", 2, version=3)
        assert cache.clear()
        assert cache.get("count") is None
        assert cache.get("count", version=3) is None
        assert all(client.llen(key) == 1 for key in others)
        assert not cache.clear()  # nothing of its own left
    finally:
        client.delete(*others)


def test_a_prefix_with_pattern_characters_clears_itself_only():
    url = os.environ["REDIS_URL"]
    odd, plain = RedisCache(url, {"KEY_PREFIX": "team[1]*?"}), RedisCache(url, {"KEY_PREFIX": "team1x"})
    odd.set("k", 1)
    plain.set("k", 2)
    odd.clear()
    assert (odd.get("k"), plain.get("k")) == (None, 2)
    plain.clear()
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"


@pytest.mark.django_db
def test_a_launch_while_the_caches_redis_is_away_is_503_with_retry_after(client, settings):
    settings.CELERY_LIVE_LAUNCH_RATE = "5/minute"  # counted in the cache, which is away
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }
    response = client.post("/api/tasks/", data={"kind": "add", "x": 1}, content_type="application/json")
    assert response.status_code == 503
    assert response["Retry-After"]
