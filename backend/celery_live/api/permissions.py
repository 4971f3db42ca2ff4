"""Who may call what: `celery_live.access` decides (view, launch, control), and anonymous
writes must come from this site (`authentication.anonymous_write_check`)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from celery_live.access import DENIED, Action, allows
from celery_live.api.authentication import anonymous_write_check


class SameSiteWrites(BasePermission):
    """An anonymous write passes the CSRF rule (authentication.py's docstring). A token
    needs no CSRF token; SessionAuthentication already checked a session user's."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method not in SAFE_METHODS and request.successful_authenticator is None:
            # Raised, not returned False: DRF would answer an anonymous refusal with 401, and
            # logging in is not what this request lacks.
            anonymous_write_check(request)
        return True


class Allowed(BasePermission):
    """`access.allows(user, action)` for the action the view names for the request's method
    (`view.action_for(method)`); its refusal says what is needed (`access.DENIED`)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        action: Action = view.action_for(request.method)
        self.message = DENIED[action]
        return allows(request.user, action)
