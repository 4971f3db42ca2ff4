"""Redis away is an outage, not a server error: the request gets a 503 that says so."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.http import HttpRequest, HttpResponse

from celery_live.log.store import RETRY_AFTER
from celery_live.log.store import UNREACHABLE as MESSAGE
from celery_live.web.errors import api_error, under_api

logger = logging.getLogger(__name__)


class RedisUnavailableMiddleware:
    """Turns a `redis.RedisError` a view did not handle into 503 (JSON under the API), with
    `Retry-After`, and one log line instead of a traceback."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, redis.RedisError):
            return None
        logger.warning("%s %s: %s (%s)", request.method, request.path, MESSAGE, exception)
        if under_api(request):
            response: HttpResponse = api_error(MESSAGE, 503)
        else:
            response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER)
        return response
