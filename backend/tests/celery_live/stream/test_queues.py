"""The queues page's live rows: a `queue.depth` event swaps in the rows of the queues it names."""

from __future__ import annotations

from asgiref.sync import sync_to_async

from celery_live.log import publishing
from celery_live.log.queues import QueueSample
from celery_live.stream.queues import dom_id, queue_fragment, render_queue_row
from tests.celery_live.stream.test_consumers import connect


def depth_event(*queues: dict) -> dict:
    return publishing.publish("queue.depth", data={"broker": "redis", "queues": list(queues)})


def test_each_queue_named_becomes_an_out_of_band_row_and_other_events_nothing():
    event = depth_event(
        {"name": "images", "depth": 7, "priorities": {"0": 4, "3": 3}, "consumers": 0, "changed_at": 1.0},
        {"name": "odd <name>", "depth": 0, "consumers": 2, "workers": ["a@h", "b@h"], "changed_at": 1.0},
    )
    html = queue_fragment(event)
    assert html.count('hx-swap-oob="true"') == 2
    assert f'id="{dom_id("images")}"' in html
    assert "odd &lt;name&gt;" in html  # escaped
    assert "no consumer" in html  # 7 waiting, nobody to take them
    assert queue_fragment(event) is html  # rendered once per event
    sent = publishing.publish("task.sent", task_id="t", name="n")
    assert queue_fragment(sent) == ""


def test_a_row_links_to_the_runs_waiting_in_its_queue():
    row = render_queue_row(QueueSample(name="a b", depth=1))
    assert 'href="/runs/?state=PENDING&amp;queue=a+b"' in row


async def test_the_queues_page_socket_sends_queue_rows_and_no_run_cards():
    ws = await connect("/ws/page/?view=queues")
    await sync_to_async(publishing.publish)("task.sent", task_id="t-q", name="n", data={"queue": "celery"})
    await sync_to_async(depth_event)({"name": "celery", "depth": 1, "consumers": 1, "changed_at": 2.0})
    frames = []
    while dom_id("celery") not in "".join(frames):
        frames.append(await ws.receive_from(5))
    assert "t-q" not in "".join(frames)
    await ws.disconnect()
