"""Calling the API in tests: JSON posts, the one error shape, what reached the broker."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from config.celery import app

JSON = "application/json"


def post_json(client: Client, url: str, body: Any = None, **extra: Any):
    """POST `body` (`{}` if None) as JSON."""
    return client.post(url, data=json.dumps({} if body is None else body), content_type=JSON, **extra)


def errors(response) -> dict[str, list[str]]:
    """The response's `errors`, after checking it is the API's one error shape."""
    assert response.status_code >= 400
    assert response["Content-Type"] == JSON
    body = response.json()
    assert list(body) == ["errors"]
    assert all(isinstance(messages, list) and messages for messages in body["errors"].values())
    return body["errors"]


def broker_queue_length() -> int:
    """Messages waiting in the default queue: what a refused request must not add to."""
    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen(app.conf.task_default_queue)
