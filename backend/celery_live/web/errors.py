"""Error answers in the product's words: JSON under the API, the dashboard's own pages elsewhere.

A host points Django's handlers here (`handler404 = "celery_live.web.errors.handler404"`,
and 403, 500 alike in its root `urls.py`). A path under the API (the folder of the
`celery_live:api-tasks` route, wherever the host mounted it) gets `{"errors": {"__all__":
[message]}}`, as every API error does; any other path gets a page.
"""

from __future__ import annotations

import posixpath

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render, resolve_url
from django.template import loader
from django.urls import reverse

from celery_live.conf import conf

NOT_FOUND = "Nothing here: the address may be mistyped, or what it named is gone."
FORBIDDEN = "You may not see this page."
SERVER_ERROR = "Something went wrong on our side. It has been logged; try again in a moment."


def under_api(request: HttpRequest) -> bool:
    """Whether `request` is for the JSON API (so an error is answered in JSON)."""
    api_root = posixpath.dirname(reverse("celery_live:api-tasks").rstrip("/")) + "/"
    return request.path.startswith(api_root)


def api_error(message: str, status: int) -> JsonResponse:
    """The API's shape for an error that belongs to no field."""
    return JsonResponse({"errors": {"__all__": [message]}}, status=status)


def _message(exception: Exception | None, default: str) -> str:
    # A view's own words (`Http404("No such task")`) say more than the default; the
    # resolver's (a dict of the patterns tried) say nothing to a reader.
    detail = exception.args[0] if exception is not None and exception.args else None
    return detail if isinstance(detail, str) and detail else default


def _page_context(request: HttpRequest, message: str) -> dict[str, str | None]:
    # An anonymous visitor in login mode gets the header's "Log in" link (the host's
    # LOGIN_URL); the pages behind it would only send them there.
    user = getattr(request, "user", None)
    anonymous = user is None or not user.is_authenticated
    login_url = resolve_url(settings.LOGIN_URL) if anonymous and conf.require_login else None
    return {"message": message, "login_url": login_url}


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    """403 with `message`: in JSON under the API, else the product's page."""
    if under_api(request):
        return api_error(message, 403)
    return render(request, "celery_live/403.html", _page_context(request, message), status=403)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's `handler403`: a `PermissionDenied` no view answered itself."""
    return forbidden(request, _message(exception, FORBIDDEN))


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's `handler404` (with DEBUG off): no route, or a view raised `Http404`."""
    message = _message(exception, NOT_FOUND)
    if under_api(request):
        return api_error(message, 404)
    return render(request, "celery_live/404.html", _page_context(request, message), status=404)


def handler500(request: HttpRequest) -> HttpResponse:
    """Django's `handler500`. It renders without a request context: whatever broke (the
    database, a context processor) must not break the error page too."""
    if under_api(request):
        return api_error(SERVER_ERROR, 500)
    html = loader.get_template("celery_live/500.html").render(
        {"message": SERVER_ERROR, "index_url": reverse("celery_live:index")}
    )
    return HttpResponse(html, status=500)
