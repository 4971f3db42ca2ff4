"""/api/schema/ (OpenAPI 3) and /api/docs/ (Swagger UI from the sidecar's files, no CDN)."""

import re

import pytest
from django.contrib.staticfiles import finders
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/tasks/", "get"): ("list_runs", {"200", "400", "401", "403"}),
    ("/api/tasks/", "post"): ("launch", {"201", "400", "401", "403", "413", "415", "429", "503"}),
    ("/api/tasks/{task_id}/", "get"): ("get_run", {"200", "401", "403", "404"}),
    ("/api/tasks/{task_id}/revoke", "post"): (
        "revoke",
        {"202", "400", "401", "403", "404", "409", "413", "415", "503"},
    ),
    ("/api/tasks/{task_id}/rerun", "post"): (
        "rerun",
        {"201", "400", "401", "403", "404", "413", "415", "429", "503"},
    ),
    ("/api/queues/", "get"): ("list_queues", {"200", "401", "403", "503"}),
    ("/api/workers/", "get"): ("list_workers", {"200", "401", "403", "503"}),
    ("/api/workers/{hostname}/{action}", "post"): (
        "control_worker",
        {"202", "400", "401", "403", "404", "409", "413", "415", "503"},
    ),
    ("/api/failures/", "get"): ("list_failures", {"200", "401", "403"}),
    ("/api/scenarios/", "get"): ("list_scenarios", {"200", "401", "403"}),
    ("/api/scenarios/{name}/", "post"): (
        "launch_scenario",
        {"201", "400", "401", "403", "404", "413", "415", "429", "503"},
    ),
}
ERRORS_REF = "#/components/schemas/Errors"


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def test_the_schema_is_valid_openapi_3_with_every_operation_and_its_responses(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    found = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert found == set(OPERATIONS)
    for (path, method), (operation_id, statuses) in OPERATIONS.items():
        operation = schema["paths"][path][method]
        assert operation["operationId"] == operation_id
        assert set(operation["responses"]) == statuses
        for status, response in operation["responses"].items():
            content = response["content"]["application/json"]
            if status.startswith(("4", "5")):
                assert content["schema"]["$ref"] == ERRORS_REF, (path, method, status)
        assert any(
            "examples" in response["content"]["application/json"]
            for response in operation["responses"].values()
        )


def test_the_list_parameters_are_the_filters_of_the_runs_page(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/tasks/"]["get"]["parameters"]}
    assert set(parameters) == {
        "state",
        "name",
        "worker",
        "queue",
        "q",
        "root",
        "group",
        "exception",
        "time_from",
        "time_to",
        "limit",
        "before",
    }
    assert all(p["in"] == "query" and p["description"] for p in parameters.values())
    assert (parameters["limit"]["schema"]["minimum"], parameters["limit"]["schema"]["maximum"]) == (1, 500)
    assert "FAILURE" in parameters["state"]["schema"]["enum"]
    assert schema["components"]["schemas"]["RunList"]["properties"]["count"]["description"]


def test_the_launch_body_is_described_from_the_declared_kinds(schema):
    launch = schema["paths"]["/api/tasks/"]["post"]["requestBody"]["content"]["application/json"]
    assert launch["examples"]["Launch"]["value"] == {
        "kind": "example",
        "message": "Hello from Celery!",
        "count": 5,
    }
    body = schema["components"]["schemas"]["LaunchBody"]
    assert schema["components"]["schemas"]["KindEnum"]["enum"] == ["example", "test", "add"]
    assert set(body["properties"]) == {"kind", "message", "count", "delay", "fail_at", "x", "y"}
    assert "required" not in body  # no field is required by every kind's form
    assert (body["properties"]["x"]["type"], body["properties"]["y"]["type"]) == ("integer", "integer")
    assert (body["properties"]["count"]["minimum"], body["properties"]["count"]["maximum"]) == (1, 1000)
    assert body["properties"]["message"]["oneOf"][0]["maxLength"] == 500  # or blank: not every kind needs it


def test_the_schema_follows_the_declared_kinds_as_the_settings_change(client, settings):
    settings.CELERY_LIVE_LAUNCHABLE_TASKS = ["apps.assets.launchable.TEST"]
    schema = client.get("/api/schema/").json()
    body = schema["components"]["schemas"]["LaunchBody"]
    assert set(body["properties"]) == {"kind", "message", "delay"}
    assert body["required"] == ["message"]


def test_the_rerun_body_is_the_declared_kinds_fields_none_required(schema):
    operation = schema["paths"]["/api/tasks/{task_id}/rerun"]["post"]
    rerun = operation["requestBody"]["content"]["application/json"]
    assert rerun["schema"]["$ref"] == "#/components/schemas/RerunBody"
    body = schema["components"]["schemas"]["RerunBody"]
    assert set(body["properties"]) == {"message", "count", "delay", "fail_at", "x", "y"}
    assert "required" not in body
    assert rerun["examples"]["Changes"]["value"] == {"count": 3}


def test_the_security_schemes_are_the_token_and_the_session_cookie(client, schema, settings):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
    assert {} in schema["paths"]["/api/tasks/"]["get"]["security"]  # login mode off: none needed
    settings.CELERY_LIVE_REQUIRE_LOGIN = True
    client.force_login(_superuser())
    in_login_mode = client.get("/api/schema/").json()
    assert in_login_mode["paths"]["/api/tasks/"]["get"]["security"] == [{"tokenAuth": []}, {"cookieAuth": []}]


def _superuser():
    from django.contrib.auth.models import User

    return User.objects.create_superuser("root", password="pw")


def test_the_schema_is_also_yaml(client):
    response = client.get("/api/schema/?format=yaml")
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


@pytest.mark.urls("tests.celery_live.api.host_urls")
def test_only_the_dashboards_endpoints_are_described_at_the_hosts_paths(client):
    schema = client.get("/dash/api/schema/").json()
    assert sorted(schema["paths"]) == [
        "/dash/api/failures/",
        "/dash/api/queues/",
        "/dash/api/scenarios/",
        "/dash/api/scenarios/{name}/",
        "/dash/api/tasks/",
        "/dash/api/tasks/{task_id}/",
        "/dash/api/tasks/{task_id}/rerun",
        "/dash/api/tasks/{task_id}/revoke",
        "/dash/api/workers/",
        "/dash/api/workers/{hostname}/{action}",
    ]
    assert 'url: "/dash/api/schema/"' in client.get("/dash/api/docs/").content.decode()


def test_the_docs_page_loads_swagger_ui_from_the_sidecar_not_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(assets) == [
        "/static/drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
    ]
    assert "cdn" not in html.lower()
    assert not re.search(r"https?://", html)
    assert 'url: "/api/schema/"' in html
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset
