"""Workers, live: each worker event becomes the workers page's swaps, and each process keeps a
board of its workers from the events (for the "no worker knows this task" flag)."""

import asyncio
import time

from asgiref.sync import sync_to_async

from celery_live.log import publishing
from celery_live.log.events import make_event
from celery_live.log.vocabulary import EventType
from celery_live.log.workers import WorkerRecord, record_worker
from celery_live.stream.workers import WorkerBoard, board, render_event
from tests.celery_live.stream.test_consumers import connect

NOW = time.time()
INSTANCE = "41-1000"


def event(etype, ts=NOW, **data):
    return {**make_event(etype, worker="w@h", ts=ts, data={"instance": INSTANCE, **data}), "id": f"{ts}-0"}


def beat(ts=NOW, **data):
    return event(
        EventType.WORKER_HEARTBEAT, ts, **{"pool": "prefork", "concurrency": 2, "queues": ["celery"], **data}
    )


def test_a_beat_swaps_its_instances_figures_and_one_with_its_registered_tasks_brings_its_card():
    stats = render_event(beat())
    assert stats.startswith('<dl class="worker__meta" id="worker-41-1000-stats" hx-swap-oob="true">')
    assert 'id="worker-41-1000-state" data-online="1"' in stats
    assert '<span data-testid="concurrency">2</span>' in stats
    assert "Registered tasks" not in stats  # the few hundred bytes of every beat
    card = render_event(beat(registered=["app.a", "app.b"]))
    assert 'id="worker-41-1000"' in card
    assert 'hx-swap-oob="true" data-upsert="workers-rows"' in card  # inserted when the page has none
    assert "<code>app.a</code>" in card
    assert "/workers/w@h/pool_grow" in card


def test_a_beat_that_changed_nothing_moves_only_its_clock_and_load():
    html = render_event(beat(changed=False, load=[0.5, 0.25, 0.125]))
    assert html.startswith('<span id="worker-41-1000-load" hx-swap-oob="true">0.50 0.25 0.12</span>')
    assert f'<time id="worker-41-1000-beat" data-ago="{NOW}" hx-swap-oob="true">' in html
    assert "concurrency" not in html
    assert len(html) < 250


def test_offline_swaps_the_badge_and_says_why():
    html = render_event(event(EventType.WORKER_OFFLINE, reason="no heartbeat for 12 s"))
    assert 'id="worker-41-1000-state" data-online="0"' in html
    assert ">Offline<" in html
    assert "no heartbeat for 12 s" in html


def test_a_command_and_the_workers_answer_show_on_its_card():
    html = render_event(
        event(
            EventType.WORKER_CONTROL,
            status="acknowledged",
            message="pool_grow sent → acknowledged by w@h",
            by="alice",
        )
    )
    assert 'id="worker-41-1000-ack"' in html
    assert "pool_grow sent → acknowledged by w@h" in html
    assert "by alice" in html


def test_what_a_worker_says_is_escaped_and_an_odd_instance_id_made_safe_for_the_page():
    html = render_event({**beat(queues=["<b>q"]), "data": {"instance": "<x> y", "queues": ["<b>q"]}})
    assert 'id="worker-_x__y-stats"' in html
    assert "&lt;b&gt;q" in html
    assert "<b>q" not in html


def test_events_of_no_worker_instance_show_nothing():
    assert render_event(make_event(EventType.WORKER_ONLINE, worker="w@h")) == ""
    assert render_event(make_event(EventType.TASK_SENT, task_id="t", name="n")) == ""


def test_a_task_no_online_worker_registers_is_unknown_until_one_does(settings):
    settings.CELERY_LIVE_WORKER_TIMEOUT = 10
    known = WorkerBoard()
    known.load([], NOW)
    assert not known.nobody_registers("app.a", NOW)  # no worker of ours ever seen: cannot tell
    known.observe(beat(registered=["app.a"]))
    known.observe(beat(NOW + 1))  # later beats carry no names: the board keeps them
    assert not known.nobody_registers("app.a", NOW + 1)
    assert known.nobody_registers("app.b", NOW + 1)
    known.observe(event(EventType.WORKER_OFFLINE, NOW + 2, reason="shut down"))
    assert known.nobody_registers("app.a", NOW + 2)


def test_the_registry_read_after_subscribing_does_not_undo_a_newer_event():
    known = WorkerBoard()
    known.observe(event(EventType.WORKER_HEARTBEAT, NOW + 5, registered=["app.a"]))
    older = WorkerRecord.from_beat("w@h", NOW, {"instance": INSTANCE, "registered": []})
    known.load([older], NOW + 5)
    assert known.instances[INSTANCE].registered == ("app.a",)


def test_a_sync_view_where_nothing_follows_reads_the_registry(redis_client):
    record_worker(redis_client, WorkerRecord.from_beat("w@h", time.time(), {"instance": INSTANCE}), ["app.a"])
    fresh = WorkerBoard()
    assert fresh.unknown_task("app.b")
    assert not fresh.unknown_task("app.a")


async def test_the_workers_page_socket_swaps_each_beat_and_the_board_follows_it():
    ws = await connect("/ws/page/?view=workers")
    await sync_to_async(publishing.publish)(
        EventType.WORKER_HEARTBEAT,
        worker="w@h",
        data={"instance": INSTANCE, "concurrency": 3, "registered": ["app.a"]},
    )
    html = ""
    async with asyncio.timeout(10):
        while 'id="worker-41-1000"' not in html:
            html += await ws.receive_from(10)
    assert '<span data-testid="concurrency">3</span>' in html
    # The page's connection made this process's board follow the log: it holds the beat.
    assert board.following
    assert board.instances[INSTANCE].registered == ("app.a",)
    await ws.disconnect()


async def test_a_page_that_does_not_show_workers_gets_no_frame_for_their_heartbeats():
    ws = await connect("/ws/page/")

    def beat_then_send():
        publishing.publish(EventType.WORKER_HEARTBEAT, worker="w@h", data={"instance": INSTANCE})
        time.sleep(0.3)  # the relay reads the beat alone (a frame of its own, if it had one)
        return publishing.publish(EventType.TASK_SENT, task_id="after-the-beat", name="n")["id"]

    sent_id = await sync_to_async(beat_then_send)()
    frame = await ws.receive_from(10)
    assert 'id="run-after-the-beat"' in frame  # the first frame it gets is the run's
    assert f'data-last-id="{sent_id}"' in frame
    await ws.disconnect()
