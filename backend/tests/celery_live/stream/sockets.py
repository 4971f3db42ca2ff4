"""The page socket as a test drives it: through the real ASGI app (origin check included),
reading its htmx frames up to a given event."""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from celery_live.log import publishing
from config.asgi import application

#: Headers of a browser on the dashboard's own origin (stream/routing.py lets it in).
ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]

#: `publishing.publish` for async tests.
publish = sync_to_async(publishing.publish)


async def connect(path: str) -> WebsocketCommunicator:
    """A socket connected to `path` (e.g. "/ws/page/?view=tour"); fails the test if refused."""
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def frames_until(ws: WebsocketCommunicator, last_id: str, timeout: float = 10.0) -> str:
    """Every frame up to the one whose cursor is `last_id` (an event's id), joined."""
    text = ""
    async with asyncio.timeout(timeout):
        while f'data-last-id="{last_id}"' not in text:
            text += await ws.receive_from(timeout)
    return text
