"""Redis away: a 503 that says so, never a 500 with a traceback."""

import json

import redis
from django.http import HttpResponse
from django.test import RequestFactory

from celery_live.processes.redis_server import free_port
from celery_live.web.middleware import MESSAGE, RedisUnavailableMiddleware


def unreachable_redis_error() -> redis.RedisError:
    try:
        redis.Redis(port=free_port(), socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return exc
    raise AssertionError("something answers on a free port")


def test_an_api_request_that_meets_an_unreachable_redis_gets_503_json_with_retry_after():
    middleware = RedisUnavailableMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/api/tasks/x/")
    response = middleware.process_exception(request, unreachable_redis_error())
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert json.loads(response.content) == {"errors": {"__all__": [MESSAGE]}}


def test_a_page_gets_a_plain_503_and_other_errors_are_left_alone():
    middleware = RedisUnavailableMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/runs/")
    response = middleware.process_exception(request, unreachable_redis_error())
    assert (response.status_code, response.content.decode()) == (503, MESSAGE)
    assert middleware.process_exception(request, ValueError("a bug")) is None
