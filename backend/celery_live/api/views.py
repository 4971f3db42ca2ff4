"""The API's endpoints, one view each. Thin: a launch is validated by `LaunchForm` and the
list's filters by `RunFilter` (as for the page and the CLI), runs are read through
`control.runs.find`, control goes through `control.runs`. Errors are raised and answered in
one shape (`exceptions.handle`); nothing reaches Celery when a request is refused.

Each view's description for the schema is a class decorator per method (`extend_schema`
with `methods`): on a method, drf-spectacular would build it on the host's
DEFAULT_SCHEMA_CLASS rather than on the view's own schema class.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from celery_live.access import Action, actor
from celery_live.api import serializers
from celery_live.api.base import ApiView
from celery_live.api.exceptions import ApiError
from celery_live.api.parsers import json_object
from celery_live.api.schema import (
    EXAMPLE_ID,
    TASK_ID,
    UNKNOWN_EXAMPLE,
    LaunchSchema,
    RerunSchema,
    error_example,
    responses,
)
from celery_live.control import rate
from celery_live.control import runs as control
from celery_live.control.launch import LaunchForm
from celery_live.runs.filters import RunFilter
from celery_live.runs.relations import with_children
from celery_live.validation import error_messages

#: Runs a list answers when `limit` is not given.
DEFAULT_LIMIT = 50


def run_url(task_id: str) -> str:
    """The run's page."""
    return reverse("celery_live:task", args=[task_id])


@extend_schema(
    methods=["GET"],
    summary="Runs, newest first, filtered",
    description="From the database: every recorded run. The next (older) page: `before` = "
    "this answer's `next_before`.",
    parameters=[serializers.RunFilterQuery],
    responses=responses({200: serializers.RunListSerializer}, 400),
    examples=[error_example(400, {"limit": ["Ensure this value is less than or equal to 500."]})],
)
@extend_schema(
    methods=["POST"],
    summary="Launch a declared task",
    description="`kind` (a kind the host declares; none: the first) and that kind's fields, "
    "validated as the page's form validates them. Counts toward the launch rate.",
    responses=responses({201: serializers.LaunchedSerializer}, 400, 413, 415, 429, 503),
    examples=[
        OpenApiExample(
            "launched",
            value={"task_id": EXAMPLE_ID, "url": f"/tasks/{EXAMPLE_ID}/"},
            response_only=True,
            status_codes=["201"],
        ),
        error_example(400, {"message": ["This field is required."], "kind": ["Select a valid choice."]}),
        error_example(
            429,
            {
                "__all__": [
                    "Too many launches: CELERY_LIVE_LAUNCH_RATE allows 60/minute. "
                    "Expected available in 12 seconds."
                ]
            },
        ),
    ],
)
class TasksView(ApiView):
    """`/api/tasks/`: the runs (GET), or a launch (POST)."""

    operation_ids = {"GET": "list_runs", "POST": "launch"}
    actions = {"GET": Action.VIEW, "POST": Action.LAUNCH}
    throttle_classes = (rate.LaunchThrottle,)
    schema = LaunchSchema()

    def get(self, request: Request) -> Response:
        run_filter, errors, form = RunFilter.from_params(request.query_params)
        if run_filter is None:
            raise ValidationError(errors)
        limit = form.cleaned_data.get("limit") or DEFAULT_LIMIT
        rows = list(run_filter.queryset()[: limit + 1])  # one more: is there an older page?
        page = rows[:limit]
        return Response(
            {
                "results": [
                    run.as_dict(with_events=False) for run in with_children([row.to_state() for row in page])
                ],
                "count": len(page),
                "next_before": page[-1].first_seen if len(rows) > limit else None,
            }
        )

    def post(self, request: Request) -> Response:
        form = LaunchForm(json_object(request, required=True))
        if not form.is_valid():
            raise ValidationError(error_messages(form))
        result = form.launch()  # the broker away: 503 (exceptions.handle)
        return Response({"task_id": result.id, "url": run_url(result.id)}, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="One run, with all its events",
    description="Its events from the log (and the database, for what the log no longer holds).",
    parameters=[TASK_ID],
    responses=responses({200: serializers.RunDetailSerializer}, 404),
    examples=[UNKNOWN_EXAMPLE],
)
class TaskView(ApiView):
    """`/api/tasks/<id>/`: one run."""

    operation_ids = {"GET": "get_run"}

    def get(self, request: Request, task_id: str) -> Response:
        # An unknown id: `find`'s ControlError says 404.
        return Response(with_children([controlled(control.find, task_id)])[0].as_dict())


def controlled(call: Any, task_id: str, **kwargs: Any) -> Any:
    """`call(task_id, **kwargs)` (a `control.runs` function), its ControlError answered with
    the status it names."""
    try:
        return call(task_id, **kwargs)
    except control.ControlError as exc:
        raise ApiError(str(exc), exc.status) from exc


@extend_schema(
    summary="Revoke a run (terminate it, if running)",
    description="Answers once the workers confirm (up to 1 s); what they did arrives as the "
    "run's events. The body is optional.",
    parameters=[TASK_ID],
    request=serializers.RevokeBodySerializer,
    responses=responses({202: serializers.RevokeRequestedSerializer}, 400, 404, 409, 413, 415, 503),
    examples=[
        OpenApiExample("terminate", value={"terminate": True}, request_only=True),
        OpenApiExample(
            "requested",
            value={"task_id": EXAMPLE_ID, "terminate": True, "status": serializers.REQUESTED},
            response_only=True,
            status_codes=["202"],
        ),
        error_example(409, {"__all__": ["the task already ended (SUCCESS); nothing to revoke"]}),
        UNKNOWN_EXAMPLE,
    ],
)
class RevokeView(ApiView):
    """`/api/tasks/<id>/revoke`."""

    operation_ids = {"POST": "revoke"}
    actions = {"POST": Action.CONTROL}

    def post(self, request: Request, task_id: str) -> Response:
        terminate = json_object(request).get("terminate", False)
        if not isinstance(terminate, bool):
            raise ValidationError({"terminate": ["Must be true or false."]})
        controlled(control.revoke, task_id, terminate=terminate, by=actor(request.user))
        return Response(
            {"task_id": task_id, "terminate": terminate, "status": serializers.REQUESTED},
            status=status.HTTP_202_ACCEPTED,
        )


def rerun_form(task_id: str, changes: dict[str, Any]) -> LaunchForm:
    """The bound form re-running run `task_id` with `changes` (ControlError: no such run,
    or not one of a declared task)."""
    return control.rerun_form(control.find(task_id), changes)


@extend_schema(
    summary="Send the same task again, with the same arguments or some changed",
    description="Only a task the host declares launchable. Counts toward the launch rate. "
    "The body is optional: none (or `{}`) re-runs with the same arguments; otherwise it holds "
    "the fields to change, of the run's kind's form (the others keep the run's values), "
    "validated as a launch is; a field that kind does not take is a 400 naming it.",
    parameters=[TASK_ID],
    responses=responses({201: serializers.RerunSerializer}, 400, 404, 413, 415, 429, 503),
    examples=[
        OpenApiExample("no changes", value={}, request_only=True),
        OpenApiExample("changes", value={"count": 3}, request_only=True),
        OpenApiExample(
            "rerun",
            value={"task_id": EXAMPLE_ID, "url": f"/tasks/{EXAMPLE_ID}/", "rerun_of": "…"},
            response_only=True,
            status_codes=["201"],
        ),
        error_example(
            400, {"count": ["Single step (test_task) does not take this field; it takes: message, delay."]}
        ),
        UNKNOWN_EXAMPLE,
    ],
)
class RerunView(ApiView):
    """`/api/tasks/<id>/rerun`."""

    operation_ids = {"POST": "rerun"}
    actions = {"POST": Action.CONTROL}
    throttle_classes = (rate.LaunchThrottle,)
    schema = RerunSchema()

    def post(self, request: Request, task_id: str) -> Response:
        changes = json_object(request)  # a body, if one is sent, follows the rules of every other
        form = None
        if changes:
            form = controlled(rerun_form, task_id, changes=changes)
            if not form.is_valid():
                raise ValidationError(error_messages(form))
        result = controlled(control.rerun, task_id, by=actor(request.user), form=form)
        return Response(
            {"task_id": result.id, "url": run_url(result.id), "rerun_of": task_id},
            status=status.HTTP_201_CREATED,
        )
