"""The API is self-contained: a host's REST_FRAMEWORK settings change none of it."""

import pytest

from tests.celery_live.api.calls import errors, post_json

pytestmark = pytest.mark.django_db

#: Defaults a host might set for its own API, each of which would change ours if it leaked.
HOST_REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.FormParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": "1/day"},
    "DEFAULT_SCHEMA_CLASS": "rest_framework.schemas.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "rest_framework.views.exception_handler",
    "NON_FIELD_ERRORS_KEY": "general",
}


def test_the_hosts_rest_framework_settings_change_nothing(client, settings):
    settings.REST_FRAMEWORK = HOST_REST_FRAMEWORK
    for _ in range(2):  # not throttled by the host's 1/day
        response = client.get("/api/tasks/")
        assert (response.status_code, response["Content-Type"]) == (200, "application/json")
    assert errors(client.get("/api/tasks/nope/")) == {"__all__": ["unknown task id 'nope'"]}
    assert post_json(client, "/api/tasks/", {"message": ""}).status_code == 400
    assert client.post("/api/tasks/", "message=hi", "application/x-www-form-urlencoded").status_code == 415
    schema = client.get("/api/schema/").json()
    assert schema["paths"]["/api/tasks/"]["get"]["operationId"] == "list_runs"
