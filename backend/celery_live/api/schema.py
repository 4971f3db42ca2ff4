"""The API's OpenAPI 3 description (`/api/schema/`) and its Swagger UI (`/api/docs/`).

Only the dashboard's own endpoints are described, wherever the host mounts them and
whatever other DRF views it has; drf-spectacular's settings are the app's own
(`SPECTACULAR`), the UI's files come from drf-spectacular-sidecar (no CDN).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.settings import patched_settings
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response

from celery_live.api import serializers
from celery_live.api.base import ApiPolicy, ApiView, DashboardSchema
from celery_live.api.renderers import JSONOnlyRenderer

SIDECAR = "SIDECAR"

#: drf-spectacular's settings for this API, over the host's SPECTACULAR_SETTINGS.
SPECTACULAR: dict[str, Any] = {
    "TITLE": "celery-live",
    "DESCRIPTION": "Launch, follow, revoke and re-run Celery tasks. Every error is "
    '`{"errors": {field: [message, ...]}}`. The live events are the WebSocket /ws/events/ '
    "(docs/api.md in the project).",
    "VERSION": "1",
    "SWAGGER_UI_DIST": SIDECAR,
    "SWAGGER_UI_FAVICON_HREF": SIDECAR,
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    # A host's hooks (drf-spectacular's default filters nothing) must not drop endpoints here.
    "PREPROCESSING_HOOKS": [],
}


#: What each error status means.
ERROR_MEANINGS = {
    400: "Invalid input, by field; nothing was sent to Celery.",
    401: "No credentials, in login mode (`WWW-Authenticate: Token`).",
    403: "Not allowed; or a write whose CSRF check failed (a session without the token or "
    "from another origin; anonymous, neither JSON nor with a CSRF token).",
    404: "No such run.",
    409: "The run already ended: nothing to revoke.",
    413: "The body is over the host's DATA_UPLOAD_MAX_MEMORY_SIZE.",
    415: "The body is not `Content-Type: application/json`.",
    429: "Too many launches (CELERY_LIVE_LAUNCH_RATE); `Retry-After` says in how many seconds to retry.",
    503: "The broker or Redis is unreachable.",
}


def error_example(status: int, errors: dict[str, list[str]]) -> OpenApiExample:
    """An example of an error answer."""
    return OpenApiExample(
        f"{status}", value={"errors": errors}, response_only=True, status_codes=[str(status)]
    )


EXAMPLE_ID = "8f14e45f-ceea-467f-a0e6-2c1d2c5ae2a1"
UNKNOWN_EXAMPLE = error_example(404, {"__all__": ["unknown task id 'nope'"]})
TASK_ID = OpenApiParameter(
    "task_id",
    str,
    OpenApiParameter.PATH,
    description="The run's Celery task id.",
    examples=[OpenApiExample("a run", value=EXAMPLE_ID)],
)


def responses(success: dict[int, Any], *error_statuses: int) -> dict[int, Any]:
    """An operation's responses: `success`, and its errors (401 and 403 come with every one)."""
    return {
        **success,
        **{
            code: OpenApiResponse(serializers.ErrorsSerializer, ERROR_MEANINGS[code])
            for code in sorted({401, 403, *error_statuses})
        },
    }


class LaunchSchema(DashboardSchema):
    """POST /api/tasks/: the body and its example are the host's declared kinds, read when
    the schema is made (`serializers.launch_request`)."""

    def get_request_serializer(self) -> Any:
        if self.method == "POST":
            return serializers.launch_request()
        return super().get_request_serializer()

    def get_examples(self) -> list[OpenApiExample]:
        examples = super().get_examples()
        if self.method == "POST":
            examples.append(OpenApiExample("launch", value=serializers.launch_example(), request_only=True))
        return examples


class RerunSchema(DashboardSchema):
    """POST /api/tasks/<id>/rerun: its optional body is the changes, the declared kinds'
    fields (`serializers.rerun_request`)."""

    def get_request_serializer(self) -> Any:
        if self.method == "POST":
            return serializers.rerun_request()
        return super().get_request_serializer()


class OwnEndpoints(EndpointEnumerator):
    """Only the API's endpoints (`ApiView`s), not the host's other DRF views."""

    def should_include_endpoint(self, path: str, callback: Any) -> bool:
        view_class = getattr(callback, "cls", None)
        return (
            isinstance(view_class, type)
            and issubclass(view_class, ApiView)
            and super().should_include_endpoint(path, callback)
        )


class OwnGenerator(SchemaGenerator):
    endpoint_inspector_cls = OwnEndpoints


class SchemaView(ApiPolicy, SpectacularAPIView):
    """`/api/schema/`: JSON (`application/json`, as its errors), or YAML with `?format=yaml`."""

    renderer_classes = (JSONOnlyRenderer, OpenApiJsonRenderer, OpenApiYamlRenderer)
    generator_class = OwnGenerator
    custom_settings = SPECTACULAR
    # Not the host's SERVE_PUBLIC / SERVE_URLCONF: every endpoint, found in the host's URLs.
    serve_public = True
    urlconf = None
    # The description pages describe the API, not themselves (and drf-spectacular's deploy
    # check, which walks every view with the host's schema class, cannot describe them).
    schema = None


class DocsView(ApiPolicy, SpectacularSwaggerView):
    """`/api/docs/`: Swagger UI on `/api/schema/`, its files the sidecar's static files."""

    url_name = "celery_live:api-schema"
    title = SPECTACULAR["TITLE"]
    schema = None

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The page's asset URLs are read from the settings while its data is made.
        with patched_settings(SPECTACULAR):
            return super().get(request, *args, **kwargs)
