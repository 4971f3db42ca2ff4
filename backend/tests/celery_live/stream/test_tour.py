"""The tour view (/ws/page/?view=tour): the index's cards plus the diagram's dots moving
through Celery's stages and the explain feed; the index view gets none of the extras."""

import re

from django.template.loader import render_to_string

from celery_live.log.vocabulary import EventType, State
from celery_live.runs.state import RunState
from celery_live.stream.fragments import timeline_item
from celery_live.stream.tour import diagram_dots
from tests.celery_live.stream.sockets import connect, frames_until, publish

NAME = "apps.assets.tasks.test_task"


def dot_class(html, task_id):
    return re.search(rf'<li class="([^"]*)" id="dot-{task_id}"', html).group(1).split()


async def test_a_runs_dot_moves_from_the_broker_to_a_worker_to_the_result_backend():
    tour, index = await connect("/ws/page/?view=tour"), await connect("/ws/page/")
    sent = await publish(
        EventType.TASK_SENT, task_id="r1", name=NAME, data={"queue": "celery", "process": "web"}
    )
    html = await frames_until(tour, sent["id"])
    assert 'hx-swap-oob="afterbegin:#diagram-dots"' in html  # its first event brings the dot
    assert "dot--broker" in dot_class(html, "r1")
    assert 'hx-swap-oob="afterbegin:#runs"' in html  # and its card, as on the index
    received = await publish(EventType.TASK_RECEIVED, task_id="r1", name=NAME, worker="celery@box")
    html = await frames_until(tour, received["id"])
    assert "dot--worker" in dot_class(html, "r1")
    assert 'data-upsert="diagram-dots" hx-swap-oob="true"' in html  # a page that lacks it gets it
    done = await publish(EventType.TASK_SUCCEEDED, task_id="r1", name=NAME, data={"result": 1})
    html = await frames_until(tour, done["id"])
    assert {"dot--backend", "state-success"} <= set(dot_class(html, "r1"))
    assert "Succeeded, done, its result in the result backend" in html  # for screen readers

    plain = await frames_until(index, done["id"])
    assert "dot-r1" not in plain  # the index pays for none of it
    assert "event-feed" not in plain
    assert 'hx-swap-oob="afterbegin:#runs"' in plain
    await tour.disconnect()
    await index.disconnect()


async def test_a_callback_not_sent_yet_waits_near_django_then_goes_to_the_broker():
    tour = await connect("/ws/page/?view=tour")
    data = {"group_id": "g", "waiting_for": "its chord header"}
    waiting = await publish(EventType.TASK_WAITING, task_id="cb", name=NAME, data=data)
    assert "dot--waiting" in dot_class(await frames_until(tour, waiting["id"]), "cb")
    sent = await publish(EventType.TASK_SENT, task_id="cb", name=NAME, data={"queue": "celery"})
    assert "dot--broker" in dot_class(await frames_until(tour, sent["id"]), "cb")
    await tour.disconnect()


async def test_the_feed_explains_each_event_newest_first_and_leaves_heartbeats_out():
    tour = await connect("/ws/page/?view=tour")
    await publish(EventType.WORKER_HEARTBEAT, worker="celery@box", data={})
    online = await publish(EventType.WORKER_ONLINE, worker="celery@box", data={"process": "worker"})
    html = await frames_until(tour, online["id"])
    assert html.count('hx-swap-oob="afterbegin:#event-feed"') == 1
    assert 'data-type="worker.online"' in html
    assert "worker.heartbeat" not in html
    assert (
        '<span class="explain-note__process" data-testid="explain-process">worker&#x27;s main process</span>'
        in html
    )
    assert '<code class="explain-note__signal" data-testid="explain-signal">worker_ready</code>' in html
    await tour.disconnect()


async def test_what_a_task_reports_is_escaped_in_the_feed_and_its_explanation():
    tour = await connect("/ws/page/?view=tour")
    bad = "<img src=x onerror=alert(1)>"
    await publish(EventType.TASK_SENT, task_id="x1", name=NAME, data={"queue": bad})
    failed = await publish(EventType.TASK_FAILED, task_id="x1", name=NAME, data={"exception": bad})
    html = await frames_until(tour, failed["id"])
    assert bad not in html
    assert "The task raised &lt;img src=x onerror=alert(1)&gt;: the worker stored" in html
    await tour.disconnect()


def test_timeline_items_carry_their_explanation_escaped():
    event = {"type": "task.sent", "ts": 1.0, "task_id": "t", "data": {"queue": "<b>q</b>", "process": "pool"}}
    html = render_to_string("celery_live/_timeline_item.html", timeline_item(event, None))
    assert "worker&#x27;s pool child" in html
    assert "before_task_publish" in html
    assert "put the message on queue &lt;b&gt;q&lt;/b&gt;" in html


async def test_an_unknown_view_is_refused_naming_the_tour_among_the_views():
    ws = await connect("/ws/page/?view=nope")
    frame = await ws.receive_json_from()
    assert frame["error"].endswith("workers or tour")
    await ws.disconnect()


def test_the_tour_page_draws_the_dots_of_its_runs_still_in_flight():
    running = RunState(task_id="busy", name=NAME, state=State.STARTED)
    done = RunState(task_id="over", name=NAME, state=State.SUCCESS)
    (dot,) = diagram_dots([running, done])
    assert 'class="dot dot--worker state-started" id="dot-busy"' in dot
    assert "hx-swap-oob" not in dot  # part of the page, not a swap
