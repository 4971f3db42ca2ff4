"""Operational endpoints."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import health


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 with {"redis", "database", "workers"} when all is up, else 503 naming what is down."""
    report, ok = health()
    return JsonResponse(report, status=200 if ok else 503)
