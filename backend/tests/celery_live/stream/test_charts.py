"""The charts' socket (/ws/charts/): the process's aggregator, seeded from the database and fed
by the relay, through the real ASGI app and Redis. The hub's ticks are driven by the test
(its own ticker is held off), so what each tick sends is exact."""

import asyncio
import html
import json
import re
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from celery_live.log import publishing
from celery_live.stream import charts
from celery_live.stream.stats import ALL
from config.asgi import application
from tests.helpers import record_all

pytestmark = pytest.mark.django_db(transaction=True)  # the hub reads the database from its thread

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
NAME = "apps.assets.tasks.example_async_task"


@pytest.fixture(autouse=True)
def ticks_by_hand(monkeypatch):
    monkeypatch.setattr(charts, "TICK", 3600)


def publish_run(task_id, ts, name=NAME, failed=False):
    publishing.publish("task.sent", task_id=task_id, name=name, ts=ts)
    publishing.publish("task.started", task_id=task_id, name=name, ts=ts + 0.5)
    end = "task.failed" if failed else "task.succeeded"
    publishing.publish(
        end, task_id=task_id, name=name, ts=ts + 1.5, data={"exception": "E: x"} if failed else {}
    )


async def connect(path):
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def data_of(frame):
    return json.loads(html.unescape(re.search(r'data-chart="([^"]*)"', frame).group(1)))


async def folded(predicate, timeout=10.0):
    """Wait until the relay has fed the hub what the test published."""
    async with asyncio.timeout(timeout):
        while not predicate(charts.hub.aggregator.window):
            await asyncio.sleep(0.02)


async def test_a_viewer_gets_the_window_from_the_database_then_each_ticks_changes_once():
    now = time.time()
    await sync_to_async(publish_run)("recorded", now - 120)
    # Not on the thread the consumers share: its connection to the in-memory test database
    # stays open, and a later test without one would trip on it there.
    await sync_to_async(record_all, thread_sensitive=False)()
    ws = await connect("/ws/charts/")
    first = await ws.receive_from(5)
    data = data_of(first)
    assert data["full"] is True
    assert sum(p[1] for p in data["points"]) == 1  # the recorded run, from the database
    assert f'href="/charts/{NAME}/"' in first

    await sync_to_async(publish_run)("live-1", now)
    await sync_to_async(publish_run)("live-2", now, name="apps.other.task", failed=True)
    await folded(lambda w: w.summary(ALL)["finished"] == 3)
    await charts.hub.tick(time.time())
    update = await ws.receive_from(5)
    data = data_of(update)
    assert data["full"] is False
    assert sum(p[1] for p in data["points"]) == 2  # only the buckets that changed
    assert sum(p[3] for p in data["points"]) == 1
    assert update.count('hx-swap-oob="true" data-upsert="chart-names"') == 2  # both names' rows
    await charts.hub.tick(time.time())
    assert await ws.receive_nothing(0.3)  # nothing changed, nothing sent
    await ws.disconnect()


async def test_a_task_names_viewer_gets_only_its_name_with_its_histogram():
    ws = await connect(f"/ws/charts/?name={NAME}")
    first = data_of(await ws.receive_from(5))
    assert (first["points"], first["histogram"]) == ([], [])
    await sync_to_async(publish_run)("other", time.time(), name="apps.other.task")
    await folded(lambda w: w.summary(ALL)["finished"] == 1)
    await charts.hub.tick(time.time())
    assert await ws.receive_nothing(0.3)  # another name changed
    await sync_to_async(publish_run)("mine", time.time())
    await folded(lambda w: w.summary(NAME)["finished"] == 1)
    await charts.hub.tick(time.time())
    frame = await ws.receive_from(5)
    assert sum(count for _, _, count in data_of(frame)["histogram"]) == 1
    assert 'id="task-name-summary" hx-swap-oob="true"' in frame
    assert '<dd data-testid="finished">1</dd>' in frame
    await ws.disconnect()


async def test_a_viewer_gone_is_sent_nothing_more():
    ws = await connect("/ws/charts/")
    await ws.receive_from(5)
    await ws.disconnect()
    await asyncio.sleep(0.05)
    assert not charts.hub.viewers


async def test_login_mode_refuses_an_anonymous_viewer_with_4401(settings):
    settings.CELERY_LIVE_REQUIRE_LOGIN = True
    ws = await connect("/ws/charts/")
    assert "login_url" in json.loads(await ws.receive_from(5))
    assert (await ws.receive_output(5)) == {"type": "websocket.close", "code": 4401}
