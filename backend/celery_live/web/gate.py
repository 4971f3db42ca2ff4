"""The pages' gate: in login mode a page needs a user who may view (`celery_live.access`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from celery_live.access import DENIED, Action, allows
from celery_live.web.errors import forbidden

View = Callable[..., HttpResponse]


def view_required(view: View) -> View:
    """Wrap a page: an anonymous visitor goes to the host's `LOGIN_URL` (with `?next=` back),
    a user without the view permission gets the 403 page; login-free, everyone passes."""

    @wraps(view)
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if allows(request.user, Action.VIEW):
            return view(request, *args, **kwargs)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return forbidden(request, DENIED[Action.VIEW])

    return gated
