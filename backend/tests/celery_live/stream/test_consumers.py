"""The WebSocket consumers, through the real ASGI app, relay and Redis (no mocks)."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.assets.tasks import example_async_task
from celery_live.log import events, publishing, store
from celery_live.stream import consumers
from config.asgi import application

ORIGIN = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


async def connect(path: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def receive_task_events(communicator, count, timeout=5.0):
    """The next `count` task events, skipping worker heartbeats (a worker may be running)."""
    got = []
    while len(got) < count:
        frame = json.loads(await communicator.receive_from(timeout))
        if not frame["type"].startswith("worker."):
            got.append(frame)
    return got


async def receive_json_until(communicator, predicate, timeout=20.0):
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await communicator.receive_from(timeout))
            frames.append(frame)
            if predicate(frame):
                return frames


async def test_events_socket_streams_one_task_in_order_each_step_once(celery_worker):
    ws = await connect("/ws/events/")
    result = await sync_to_async(example_async_task.delay)("Bob", 4, delay=0.01)
    frames = await receive_json_until(
        ws, lambda f: f["task_id"] == result.id and f["type"] == "task.succeeded"
    )
    mine = [f for f in frames if f["task_id"] == result.id]
    assert [f["type"] for f in mine] == ["task.sent", "task.received", "task.started"] + [
        "task.progress"
    ] * 4 + ["task.succeeded"]
    assert [f["data"]["current"] for f in mine if f["type"] == "task.progress"] == [1, 2, 3, 4]
    assert len({f["id"] for f in mine}) == len(mine)
    assert mine[-1]["data"]["result"]["results"][-1] == "Bob - iteration 4"
    await ws.disconnect()


async def test_a_viewer_that_reconnects_with_since_gets_exactly_what_it_missed():
    ws = await connect("/ws/events/")
    first = await sync_to_async(publishing.publish)("task.sent", task_id="t-0", name="n")
    assert (await receive_task_events(ws, 1))[0]["id"] == first["id"]
    await ws.disconnect()

    def publish_missed():
        return [
            publishing.publish(
                "task.progress", task_id=f"t-{i % 7}", name="n", data={"current": i, "total": 500}
            )
            for i in range(500)
        ]

    missed = await sync_to_async(publish_missed)()
    ws = await connect(f"/ws/events/?since={first['id']}")
    got = await receive_task_events(ws, 500)
    assert [g["id"] for g in got] == [m["id"] for m in missed]
    live = await sync_to_async(publishing.publish)("task.succeeded", task_id="t-1", name="n")
    assert (await receive_task_events(ws, 1))[0]["id"] == live["id"]
    extra = []
    while not await ws.receive_nothing(0.3):
        extra.append(json.loads(await ws.receive_from(1)))
    assert {e["type"] for e in extra} <= {"worker.heartbeat"}  # no task event twice
    await ws.disconnect()


async def test_task_filter_follows_one_run_only():
    ws = await connect("/ws/events/?task=mine")
    await sync_to_async(publishing.publish)("task.sent", task_id="other", name="n")
    wanted = await sync_to_async(publishing.publish)("task.sent", task_id="mine", name="n")
    assert json.loads(await ws.receive_from(5))["id"] == wanted["id"]
    await ws.disconnect()


async def test_a_bad_since_gets_a_clear_error_and_close_4400():
    communicator = WebsocketCommunicator(application, "/ws/events/?since=yesterday", headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    error = json.loads(await communicator.receive_from(5))
    assert "since must be an event id" in error["error"]
    assert (await communicator.receive_output(5)) == {"type": "websocket.close", "code": 4400}


async def test_an_older_page_of_the_list_gets_a_clear_refusal_and_the_newest_its_rows():
    # Only the newest page is live (runs.html): an older one would be sent the new runs.
    older = await connect("/ws/page/?view=list&name=paged&before=1700000000.5")
    assert json.loads(await older.receive_from(5)) == {"errors": {"before": [consumers.OLDER_PAGE_NOT_LIVE]}}
    assert (await older.receive_output(5)) == {"type": "websocket.close", "code": 4400}
    newest = await connect("/ws/page/?view=list&name=paged")
    await sync_to_async(publishing.publish)("task.sent", task_id="paged-run", name="apps.paged")
    frame = await newest.receive_from(5)
    while "row-paged-run" not in frame:  # skip frames of other events (a worker's heartbeat)
        frame = await newest.receive_from(5)
    assert 'id="row-paged-run" role="row"' in frame
    assert 'hx-swap-oob="true" data-upsert="runs-rows"' in frame  # live.js inserts it: a new run
    await newest.disconnect()


@pytest.mark.parametrize("headers", [[], [(b"origin", b"http://evil.example")]])
async def test_sockets_refuse_a_missing_or_foreign_origin(headers):
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected


async def test_page_socket_sends_htmx_swaps_with_user_text_escaped(celery_worker):
    ws = await connect("/ws/page/")
    result = await sync_to_async(example_async_task.delay)("<script>alert(1)</script>", 3, delay=0.01)
    html = ""
    async with asyncio.timeout(20):
        while "Succeeded" not in html:
            html += await ws.receive_from(20)
    assert html.count('hx-swap-oob="afterbegin:#runs"') == 1
    assert html.count(f'hx-swap-oob="beforeend:#run-{result.id}-results"') == 3
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; - iteration 3" in html
    assert 'id="live-cursor"' in html
    await ws.disconnect()


async def test_a_viewer_that_falls_too_far_behind_while_catching_up_is_told_to_reconnect(
    monkeypatch, settings
):
    settings.CELERY_LIVE_VIEWER_QUEUE = 3
    since = await sync_to_async(publishing.publish)("task.sent", task_id="before", name="n")
    burst_logged = asyncio.Event()
    catch_up = consumers.LogConsumer._catch_up

    async def slow_catch_up(self):
        # A long catch-up (e.g. from the database): live events queue meanwhile.
        await burst_logged.wait()
        await asyncio.sleep(0.5)
        await catch_up(self)

    monkeypatch.setattr(consumers.LogConsumer, "_catch_up", slow_catch_up)
    ws = await connect(f"/ws/events/?since={since['id']}")

    def burst():
        # One MULTI: the relay reads all 50 in one batch.
        publisher = publishing.get_publisher()
        script = publisher._ensure()
        pipe = publisher.client.pipeline(transaction=True)
        for i in range(50):
            event = events.make_event("task.sent", task_id=f"b{i}")
            script(
                keys=[store.stream_key(), store.task_key(f"b{i}"), store.runs_key()],
                args=[events.encode(event), 1000, 60, f"b{i}", event["ts"]],
                client=pipe,
            )
        pipe.execute()

    await sync_to_async(burst)()
    burst_logged.set()
    async with asyncio.timeout(10):
        while True:
            output = await ws.receive_output(10)
            if output["type"] == "websocket.close":
                break
    assert output["code"] == consumers.Close.BEHIND == 4408


async def test_a_live_viewer_gets_a_burst_whole_and_in_order():
    ws = await connect("/ws/events/")

    def publish_many():
        return [publishing.publish("task.sent", task_id=f"c{i}")["id"] for i in range(300)]

    ids = await sync_to_async(publish_many)()
    last = await sync_to_async(publishing.publish)("task.sent", task_id="last")
    received = [frame["id"] for frame in await receive_task_events(ws, len(ids) + 1, timeout=10)]
    assert received[: len(ids)] == ids
    assert received[-1] == last["id"]  # and nothing twice in between
    await ws.disconnect()


async def test_an_idle_viewer_stays_connected_past_redis_timeouts():
    # redis-py 8 + channels-redis 4.3 closed idle consumers after ~5 s (README, Troubleshooting).
    ws = await connect("/ws/events/?task=late")  # nothing but "late" reaches this viewer
    assert await ws.receive_nothing(11, interval=0.5)  # no frame, and no close
    event = await sync_to_async(publishing.publish)("task.sent", task_id="late", name="n")
    assert json.loads(await ws.receive_from(5))["id"] == event["id"]
    await ws.disconnect()
