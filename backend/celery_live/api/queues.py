"""`GET /api/queues/`: every known queue as the sampler last saw it, read from Redis.

No broker call and no database query: the queue sampler (runs/queues.py) keeps each
queue's last sample in Redis, so asking costs one HGETALL however often it is asked.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from celery_live.api.base import ApiView
from celery_live.api.schema import responses
from celery_live.conf import conf
from celery_live.log import store
from celery_live.log.queues import QueueSample, read_samples, sampled_at
from celery_live.runs.queues import waiting_runs_url


def queue_as_dict(sample: QueueSample) -> dict[str, Any]:
    return {**sample.as_dict(), "runs_url": waiting_runs_url(sample.name)}


class QueueSerializer(serializers.Serializer):
    name = serializers.CharField()
    depth = serializers.IntegerField(help_text="Messages waiting in the broker, all priorities.")
    priorities = serializers.DictField(
        child=serializers.IntegerField(),
        allow_null=True,
        help_text="Messages waiting by priority step (Redis: kombu's steps, 0 served first); "
        "null where the broker keeps no such count (RabbitMQ).",
    )
    consumers = serializers.IntegerField(
        help_text="RabbitMQ's count of consumers; elsewhere the workers that consume it."
    )
    workers = serializers.ListField(
        child=serializers.CharField(), help_text="Workers whose heartbeats say they consume it."
    )
    changed_at = serializers.FloatField(help_text="When it was last seen to change (epoch seconds).")
    runs_url = serializers.CharField(help_text="The list of runs waiting in it (`state=PENDING`).")


class QueueListSerializer(serializers.Serializer):
    results = QueueSerializer(many=True, help_text="By name.")
    sampled_at = serializers.FloatField(
        allow_null=True,
        help_text="When the sampler last looked at the broker (epoch seconds); null: it never "
        "did (no recorder runs).",
    )
    interval = serializers.FloatField(help_text="Seconds between two samples.")


@extend_schema(
    summary="Queues: depth, by priority, consumers",
    description="The last sample of every known queue (from Redis; no broker call). Changes "
    "arrive live as `queue.depth` events on /ws/events/.",
    responses=responses({200: QueueListSerializer}, 503),
    examples=[
        OpenApiExample(
            "queues",
            value={
                "results": [
                    {
                        "name": "celery",
                        "depth": 3,
                        "priorities": {"0": 1, "3": 2, "6": 0, "9": 0},
                        "consumers": 1,
                        "workers": ["celery@host"],
                        "changed_at": 1764090000.5,
                        "runs_url": "/runs/?state=PENDING&queue=celery",
                    }
                ],
                "sampled_at": 1764090001.0,
                "interval": 0.5,
            },
            response_only=True,
            status_codes=["200"],
        )
    ],
)
class QueuesView(ApiView):
    """`/api/queues/`."""

    operation_ids = {"GET": "list_queues"}

    def get(self, request: Request) -> Response:
        client = store.client()
        samples = read_samples(client)
        return Response(
            {
                "results": [queue_as_dict(samples[name]) for name in sorted(samples)],
                "sampled_at": sampled_at(client),
                "interval": conf.QUEUE_SAMPLE_INTERVAL,
            }
        )
