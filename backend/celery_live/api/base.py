"""What every view of the API does the same way, set on the views themselves so that the
host's `REST_FRAMEWORK` settings change none of it: who is asking (token, session), who
may (`access`), CSRF, JSON in and out, the launch rate, the one error shape, the schema.
"""

from __future__ import annotations

from typing import Any, NoReturn

from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from celery_live.access import Action
from celery_live.api import exceptions as api_exceptions
from celery_live.api.authentication import AUTHENTICATION_CLASSES
from celery_live.api.parsers import JSONObjectParser
from celery_live.api.permissions import Allowed, SameSiteWrites
from celery_live.api.renderers import JSONOnlyRenderer
from celery_live.conf import conf
from celery_live.control import rate

#: The one tag of every operation.
TAG = "runs"


class DashboardSchema(AutoSchema):
    """drf-spectacular's inspector; with login mode off, no credentials are needed either
    (an empty security requirement beside the token and the session cookie)."""

    def get_auth(self) -> list[dict[str, Any]]:
        auth = super().get_auth()
        return auth if conf.require_login else [*auth, {}]

    def get_tags(self) -> list[str]:
        return [TAG]

    def get_operation_id(self) -> str:
        """The view's name for the operation (`ApiView.operation_ids`), not one made from
        the path."""
        return self.view.operation_ids[self.method]


class ApiPolicy:
    """Mixed into every view of the API, the schema's and the docs' included.

    `actions` names what each method needs (`access.Action`; HEAD is GET's).
    """

    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = (SameSiteWrites, Allowed)
    parser_classes = (JSONObjectParser,)
    throttle_classes: tuple[type, ...] = ()
    content_negotiation_class = DefaultContentNegotiation
    # No OPTIONS answers (a CORS preflight included: none is ever granted) and no versions.
    metadata_class = None
    versioning_class = None
    http_method_names = ["get", "head", "post"]
    actions: dict[str, Action] = {"GET": Action.VIEW}

    def action_for(self, method: str) -> Action:
        """What `method` needs (a method the view answers)."""
        return self.actions["GET" if method == "HEAD" else method]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # A method the view does not answer is a 405 before anything else, not a refusal
        # by the permissions that run first in DRF.
        if request.method not in self.allowed_methods:
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def get_exception_handler(self) -> Any:
        return api_exceptions.handle

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> NoReturn:
        """DRF's choice of 401 (no credentials: `WWW-Authenticate: Token`) or 403, with the
        permission's own message (`access.DENIED`) in both."""
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated(message)
        raise exceptions.PermissionDenied(message, code)

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        raise rate.refusal(wait)


class ApiView(ApiPolicy, APIView):
    """An endpoint of the API: JSON in, JSON out, described by drf-spectacular."""

    renderer_classes = (JSONOnlyRenderer,)
    schema = DashboardSchema()
    #: The schema's operationId of each method.
    operation_ids: dict[str, str] = {}
