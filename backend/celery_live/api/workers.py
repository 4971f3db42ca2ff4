"""The workers' endpoints: `GET /api/workers/`, every worker instance the registry remembers
(from Redis; no broker call, no database), and `POST /api/workers/<hostname>/<action>`, a
control command validated by its action's form, as the workers page validates it
(control/workers.py).
"""

from __future__ import annotations

import time
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from celery_live.access import Action, actor
from celery_live.api.base import ApiView
from celery_live.api.exceptions import ApiError
from celery_live.api.parsers import json_object
from celery_live.api.schema import error_example, responses
from celery_live.api.serializers import ErrorsSerializer
from celery_live.control import workers as control
from celery_live.control.runs import ControlError
from celery_live.log import store
from celery_live.log.workers import FORGET_AFTER, read_workers
from celery_live.validation import error_messages

EXAMPLE_HOST = "celery@web-1"
EXAMPLE_WORKER = {
    "hostname": EXAMPLE_HOST,
    "instance": "4127-1764090000123",
    "pid": 4127,
    "online": True,
    "pool": "prefork",
    "concurrency": 4,
    "queues": ["celery"],
    "active": 1,
    "active_tasks": ["8f14e45f-ceea-467f-a0e6-2c1d2c5ae2a1"],
    "reserved": 0,
    "processed": 120,
    "failed": 3,
    "load": [0.52, 0.4, 0.33],
    "last_heartbeat": 1764090321.5,
    "started": 1764090000.123,
    "offline_at": None,
    "offline_reason": None,
    "registered": ["apps.assets.tasks.example_async_task", "apps.assets.tasks.test_task"],
    "bridged": False,
}


class WorkerSerializer(serializers.Serializer):
    """A worker instance as its last heartbeat described it; times in epoch seconds."""

    hostname = serializers.CharField()
    instance = serializers.CharField(help_text="The worker process: `<pid>-<start time in ms>`.")
    pid = serializers.IntegerField(allow_null=True)
    online = serializers.BooleanField(
        help_text="Beating within CELERY_LIVE_WORKER_TIMEOUT and not gone offline since."
    )
    pool = serializers.CharField(allow_null=True, help_text="prefork, threads, solo, …")
    concurrency = serializers.IntegerField(
        allow_null=True, help_text="The pool's size at the last beat (pool_grow/pool_shrink change it)."
    )
    queues = serializers.ListField(child=serializers.CharField(), help_text="The queues it consumes.")
    active = serializers.IntegerField(help_text="Tasks it is running.")
    active_tasks = serializers.ListField(child=serializers.CharField(), help_text="Their ids.")
    reserved = serializers.IntegerField(help_text="Tasks it holds, waiting for a free process.")
    processed = serializers.IntegerField(help_text="Tasks it has started since it started.")
    failed = serializers.IntegerField(help_text="Tasks that failed on it since it started.")
    load = serializers.ListField(
        child=serializers.FloatField(), help_text="Its machine's load: 1, 5, 15 min."
    )
    last_heartbeat = serializers.FloatField()
    started = serializers.FloatField(allow_null=True)
    offline_at = serializers.FloatField(allow_null=True)
    offline_reason = serializers.CharField(allow_null=True)
    registered = serializers.ListField(
        child=serializers.CharField(),
        help_text="The task names it registers (Celery's own left out), sorted.",
    )
    bridged = serializers.BooleanField(
        help_text="Seen through Celery's own events (manage.py bridge_events): it does not run "
        "celery-live, and its pool, concurrency and queues are not known."
    )


class WorkerListSerializer(serializers.Serializer):
    results = WorkerSerializer(many=True, help_text="By hostname, each one's newest instance first.")


class ControlBodySerializer(serializers.Serializer):
    """The fields each action takes (the others are ignored)."""

    n = serializers.IntegerField(
        required=False, min_value=1, max_value=control.MAX_POOL_STEP, help_text="pool_grow, pool_shrink."
    )
    queue = serializers.CharField(required=False, max_length=255, help_text="add_consumer, cancel_consumer.")
    task = serializers.CharField(required=False, max_length=255, help_text="rate_limit: a registered task.")
    rate = serializers.CharField(
        required=False, max_length=32, help_text="rate_limit: 10/s, 100/m, 1000/h; 0: no limit."
    )


class ControlledSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    action = serializers.ChoiceField(choices=list(control.WorkerAction))
    arguments = serializers.DictField(help_text="The remote control command's arguments, as sent.")
    status = serializers.ChoiceField(choices=list(control.ControlStatus))
    message = serializers.CharField(
        help_text="What happened, in a line: `pool_grow sent → acknowledged by …`."
    )
    by = serializers.CharField(help_text="Who sent it (empty: anonymous).")
    acknowledged_by = serializers.ListField(child=serializers.CharField())
    replies = serializers.DictField(help_text="Each answering worker's reply (`ok` or `error`).")


def control_responses() -> dict[int, Any]:
    """The command's answers: a 404 and a 409 of its own (a worker's, not a run's)."""
    answers = responses({202: ControlledSerializer}, 400, 413, 415, 503)
    answers[404] = OpenApiResponse(ErrorsSerializer, "No such worker in the registry, or no such action.")
    answers[409] = OpenApiResponse(ErrorsSerializer, "The worker is offline: nothing would answer.")
    return dict(sorted(answers.items()))


HOSTNAME = OpenApiParameter(
    "hostname",
    str,
    OpenApiParameter.PATH,
    description="The worker's hostname, as `GET /api/workers/` lists it.",
    examples=[OpenApiExample("a worker", value=EXAMPLE_HOST)],
)
ACTION = OpenApiParameter(
    "action",
    str,
    OpenApiParameter.PATH,
    enum=list(control.WorkerAction),
    description="Celery's remote control command.",
)


@extend_schema(
    summary="Worker instances: online or not, pool, queues, counts, registered tasks",
    description=f"Every instance seen within {FORGET_AFTER / 3600:g} h (from Redis; no broker call). "
    "Changes arrive live as `worker.heartbeat`, `worker.offline` and `worker.control` events on "
    "/ws/events/.",
    responses=responses({200: WorkerListSerializer}, 503),
    examples=[
        OpenApiExample(
            "workers", value={"results": [EXAMPLE_WORKER]}, response_only=True, status_codes=["200"]
        )
    ],
)
class WorkersView(ApiView):
    """`/api/workers/`."""

    operation_ids = {"GET": "list_workers"}

    def get(self, request: Request) -> Response:
        now = time.time()
        return Response({"results": [record.as_dict(now) for record in read_workers(store.client(), now)]})


@extend_schema(
    summary="Send a worker a control command",
    description="To the one worker named; answers with its reply (up to 1 s; a shutdown is "
    "not answered: its `worker.offline` event says it is gone). Recorded as a `worker.control` "
    "event with who sent it.",
    parameters=[HOSTNAME, ACTION],
    request=ControlBodySerializer,
    responses=control_responses(),
    examples=[
        OpenApiExample("pool_grow", value={"n": 1}, request_only=True),
        OpenApiExample(
            "acknowledged",
            value={
                "hostname": EXAMPLE_HOST,
                "action": "pool_grow",
                "arguments": {"n": 1},
                "status": "acknowledged",
                "message": f"pool_grow sent → acknowledged by {EXAMPLE_HOST}",
                "by": "alice",
                "acknowledged_by": [EXAMPLE_HOST],
                "replies": {EXAMPLE_HOST: {"ok": "pool will grow"}},
            },
            response_only=True,
            status_codes=["202"],
        ),
        error_example(400, {"n": ["Ensure this value is greater than or equal to 1."]}),
        error_example(404, {"__all__": ["unknown worker 'celery@nope'"]}),
    ],
)
class WorkerControlView(ApiView):
    """`/api/workers/<hostname>/<action>`."""

    operation_ids = {"POST": "control_worker"}
    actions = {"POST": Action.CONTROL}

    def post(self, request: Request, hostname: str, action: str) -> Response:
        body = json_object(request)
        try:
            form_class = control.form_class(action)
            form = form_class(body, worker=control.find_worker(hostname))
            if not form.is_valid():
                raise ValidationError(error_messages(form))
            outcome = control.send(form, by=actor(request.user))
        except ControlError as exc:
            raise ApiError(str(exc), exc.status) from exc
        return Response(outcome.as_dict(), status=status.HTTP_202_ACCEPTED)
