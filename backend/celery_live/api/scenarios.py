"""`GET /api/scenarios/`: the host's scenarios (celery_live/scenarios.py); `POST
/api/scenarios/<name>/`: launch one, as the Tour page's buttons do (a launch: the launch
permission and the launch rate)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from celery_live import scenarios
from celery_live.access import Action
from celery_live.api.base import ApiView
from celery_live.api.parsers import json_object
from celery_live.api.schema import EXAMPLE_ID, error_example, responses
from celery_live.control import rate


class ScenarioSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Its name in `POST /api/scenarios/<name>/`.")
    title = serializers.CharField()
    description = serializers.CharField(help_text="What Celery does in it, in two or three sentences.")


class ScenarioListSerializer(serializers.Serializer):
    results = ScenarioSerializer(many=True, help_text="In the order the host declares them.")


class ScenarioLaunchedSerializer(serializers.Serializer):
    task_ids = serializers.ListField(
        child=serializers.CharField(), help_text="Every run it sent, the one to open first first."
    )
    root_id = serializers.CharField(
        help_text="Celery's root_id of the first run: shared by a chain's steps; each task of a "
        "top-level group or chord header is its own root (their group id links them)."
    )
    url = serializers.CharField(help_text="The first run's page.")


@extend_schema(
    summary="The scenarios of the tour",
    description="The one-click demonstrations the host declares (`CELERY_LIVE_SCENARIOS`).",
    responses=responses({200: ScenarioListSerializer}),
    examples=[
        OpenApiExample(
            "scenarios",
            value={
                "results": [
                    {
                        "name": "retry",
                        "title": "Retry with exponential backoff",
                        "description": "Two runs call a flaky service; autoretry_for sends them again.",
                    }
                ]
            },
            response_only=True,
            status_codes=["200"],
        )
    ],
)
class ScenariosView(ApiView):
    """`/api/scenarios/`."""

    operation_ids = {"GET": "list_scenarios"}

    def get(self, request: Request) -> Response:
        return Response(
            {
                "results": [
                    {"name": item.name, "title": item.title, "description": item.description}
                    for item in scenarios.declared().values()
                ]
            }
        )


@extend_schema(
    summary="Launch a scenario",
    description="Sends the scenario's runs. Counts toward the launch rate. The body is optional.",
    parameters=[
        OpenApiParameter(
            "name",
            str,
            OpenApiParameter.PATH,
            description="A scenario's name.",
            examples=[OpenApiExample("retry", value="retry")],
        )
    ],
    request=OpenApiTypes.OBJECT,
    responses=responses({201: ScenarioLaunchedSerializer}, 400, 404, 413, 415, 429, 503),
    examples=[
        OpenApiExample(
            "launched",
            value={"task_ids": [EXAMPLE_ID], "root_id": EXAMPLE_ID, "url": f"/tasks/{EXAMPLE_ID}/"},
            response_only=True,
            status_codes=["201"],
        ),
        error_example(404, {"__all__": ["unknown scenario 'nope'"]}),
    ],
)
class ScenarioLaunchView(ApiView):
    """`/api/scenarios/<name>/`."""

    operation_ids = {"POST": "launch_scenario"}
    actions = {"POST": Action.LAUNCH}
    throttle_classes = (rate.LaunchThrottle,)

    def post(self, request: Request, name: str) -> Response:
        json_object(request)  # a body, if one is sent, follows the rules of every other
        try:
            scenario = scenarios.get(name)
        except scenarios.UnknownScenario as exc:
            raise NotFound(str(exc)) from None
        launched = scenario.launch(request.user)  # the broker away: 503 (exceptions.handle)
        return Response(launched.as_dict(), status=status.HTTP_201_CREATED)
