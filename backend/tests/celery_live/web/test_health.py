"""GET /healthz checks Redis, the database and the workers for real."""

import pytest


@pytest.mark.django_db
def test_no_worker_is_a_503_naming_the_workers(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["workers"] == 0
    assert body["down"] == ["workers"]


@pytest.mark.django_db
def test_redis_down_is_a_503_naming_redis(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"].startswith("error")
    assert body["down"] == ["redis", "workers"]


# Last: the module-scoped worker it starts lives until the module ends.
@pytest.mark.django_db
def test_healthy_when_redis_database_and_a_worker_answer(client, celery_worker):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"redis": "ok", "database": "ok", "workers": 1}
