"""The API's one error shape, `{"errors": {field: [message, ...]}}` (`__all__` for what belongs
to no field), for every error it answers: bad JSON (400), refused (401, 403), unknown (404),
wrong method (405), conflict (409), too big (413), not JSON (415), too many (429), broker
away (503).

Redis away is a 503 with `Retry-After` here too, whether or not the host installed
`celery_live.web.middleware.RedisUnavailableMiddleware` (which does the same for pages).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from kombu.exceptions import OperationalError
from redis import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from celery_live.control.launch import broker_away
from celery_live.log import store

#: The key of the messages that belong to no field (Django's NON_FIELD_ERRORS).
NON_FIELD = "__all__"


class ApiError(exceptions.APIException):
    """An error with its status chosen where it happens (a `ControlError`'s, for one);
    `wait` (seconds) becomes `Retry-After`."""

    def __init__(self, detail: str, status_code: int, wait: float | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.wait = wait


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE

    def __init__(self) -> None:
        super().__init__(f"The body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")


def as_api_exception(exc: Exception) -> exceptions.APIException | None:
    """`exc` as the APIException it is answered as; None for one the API does not answer."""
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, Http404):
        return exceptions.NotFound(*exc.args)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, OperationalError):
        return ApiError(broker_away(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, RedisError):
        return ApiError(store.UNREACHABLE, status.HTTP_503_SERVICE_UNAVAILABLE, store.RETRY_AFTER)
    return None


def messages(detail: Any) -> list[str]:
    """Every message in a DRF error detail (a string, or lists and dicts of them), flat."""
    if isinstance(detail, dict):
        return [message for value in detail.values() for message in messages(value)]
    if isinstance(detail, list):
        return [message for item in detail for message in messages(item)]
    return [str(detail)]


def errors(detail: Any) -> dict[str, list[str]]:
    """A DRF error detail as the API's `errors`: by field for a dict, else under `__all__`."""
    if isinstance(detail, dict):
        return {str(field): messages(value) for field, value in detail.items()}
    return {NON_FIELD: messages(detail)}


def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The views' exception handler: DRF's (status, `WWW-Authenticate`, `Retry-After`,
    `Allow`, the transaction rolled back), with the body in the one shape."""
    api_exc = as_api_exception(exc)
    if api_exc is None:
        return None
    response = exception_handler(api_exc, context)
    if response is not None:
        response.data = {"errors": errors(api_exc.detail)}
    return response
