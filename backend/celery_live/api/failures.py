"""`GET /api/failures/`: every recorded failure grouped by exception type and message, as the
failures inbox (`/failures/`) shows them (runs/failures.py)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from celery_live.api.base import ApiView
from celery_live.api.schema import responses
from celery_live.log.vocabulary import State
from celery_live.runs.failures import failure_groups


class FailureGroupSerializer(serializers.Serializer):
    key = serializers.CharField(
        help_text="The exception with numbers and ids replaced (`<n>`, `<id>`, `<uuid>`): the "
        "group. The list's `exception` filter takes it."
    )
    exc_type = serializers.CharField(help_text='The exception\'s type ("" when it names none).')
    message = serializers.CharField(help_text="The key's message, after the type.")
    example = serializers.CharField(help_text="The latest exception of the group, as it was raised.")
    count = serializers.IntegerField(help_text="Runs that failed so.")
    first_seen = serializers.FloatField(allow_null=True, help_text="The first failure (epoch seconds).")
    last_seen = serializers.FloatField(allow_null=True, help_text="The latest failure (epoch seconds).")
    names = serializers.ListField(child=serializers.CharField(), help_text="The tasks that failed so.")
    runs_url = serializers.CharField(help_text="Its runs: `GET /api/tasks/` filtered to the group.")


class FailureListSerializer(serializers.Serializer):
    results = FailureGroupSerializer(many=True, help_text="The most recent failure first.")
    count = serializers.IntegerField(help_text="How many groups.")
    last_event_id = serializers.CharField(
        allow_null=True,
        help_text="The newest recorded event the counts include: follow `/ws/events/?since=` it "
        "and count each `task.failed` in to keep them live.",
    )


EXAMPLE_KEY = "DemoTaskError: Failed at iteration <n> of <n>"


@extend_schema(
    summary="Failures grouped by exception",
    description="From the database: every run that ended FAILURE, grouped by exception type and "
    "message with numbers and ids replaced, so one bug's failures make one group.",
    responses=responses({200: FailureListSerializer}),
    examples=[
        OpenApiExample(
            "groups",
            value={
                "results": [
                    {
                        "key": EXAMPLE_KEY,
                        "exc_type": "DemoTaskError",
                        "message": "Failed at iteration <n> of <n>",
                        "example": "DemoTaskError: Failed at iteration 2 of 3",
                        "count": 12,
                        "first_seen": 1764090000.123,
                        "last_seen": 1764093600.5,
                        "names": ["apps.assets.tasks.example_async_task"],
                        "runs_url": "/api/tasks/?state=FAILURE&exception=DemoTaskError%3A+Failed+at"
                        "+iteration+%3Cn%3E+of+%3Cn%3E",
                    }
                ],
                "count": 1,
                "last_event_id": "1764093600500-0",
            },
            response_only=True,
            status_codes=["200"],
        )
    ],
)
class FailuresView(ApiView):
    """`/api/failures/`."""

    operation_ids = {"GET": "list_failures"}

    def get(self, request: Request) -> Response:
        groups, last_event_id = failure_groups()
        runs = reverse("celery_live:api-tasks")
        results = [
            {
                **group.as_dict(),
                "runs_url": f"{runs}?{urlencode({'state': State.FAILURE, 'exception': group.key})}",
            }
            for group in groups
        ]
        return Response({"results": results, "count": len(results), "last_event_id": last_event_id})
