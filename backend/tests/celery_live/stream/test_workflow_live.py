"""A run's detail socket keeps its workflow graph live: the events of the workflow's other
runs reach it as their nodes' swaps (not their cards), a run that joins later is inserted
in its column, and the progress bar counts the finished runs."""

import pytest
from asgiref.sync import sync_to_async

from celery_live.log.vocabulary import EventType
from tests.celery_live.stream.sockets import connect, frames_until, publish
from tests.helpers import record_all

NAME = "apps.assets.tasks.test_task"
pytestmark = pytest.mark.django_db(transaction=True)


async def chord():
    await publish(
        EventType.TASK_WAITING, task_id="cb", name=NAME, data={"group_id": "g", "waiting_for": "its header"}
    )
    await publish(EventType.TASK_SENT, task_id="h1", name=NAME, data={"root_id": "h1", "group_id": "g"})
    await publish(EventType.TASK_SENT, task_id="h2", name=NAME, data={"root_id": "h2", "group_id": "g"})
    await sync_to_async(record_all, thread_sensitive=False)()


async def test_a_header_tasks_page_follows_its_sibling_and_callback_and_a_later_step():
    await chord()
    ws = await connect("/ws/page/?view=detail&task=h1")
    await publish(EventType.TASK_SENT, task_id="stranger", name=NAME, data={"root_id": "stranger"})
    started = await publish(EventType.TASK_STARTED, task_id="h2", name=NAME, worker="celery@box")
    html = await frames_until(ws, started["id"])
    assert "stranger" not in html  # not of the workflow
    assert 'id="wf-node-h2" data-state="STARTED"' in html
    assert "run-h2" not in html  # a node, not a card the page lacks
    assert "0 / 3 done" in html
    assert "ETA —" in html

    await publish(EventType.TASK_SUCCEEDED, task_id="h2", name=NAME, ts=100.0)
    done = await publish(EventType.TASK_SUCCEEDED, task_id="h1", name=NAME)
    html = await frames_until(ws, done["id"])
    assert 'id="run-h1-head"' in html  # the page's own run, as any detail page
    assert 'id="wf-node-h1" data-state="SUCCESS"' in html
    assert "2 / 3 done" in html
    assert "ETA ~" in html

    # The last header task sends the callback; the callback sends a chain's next step.
    await publish(EventType.TASK_SENT, task_id="cb", name=NAME, data={"root_id": "h2", "parent_id": "h2"})
    step = await publish(
        EventType.TASK_SENT, task_id="next", name=NAME, data={"root_id": "h2", "parent_id": "cb"}
    )
    html = await frames_until(ws, step["id"])
    assert 'class="wf-node state-pending" id="wf-node-cb"' in html  # no longer waiting
    assert 'hx-swap-oob="beforeend:#wf-columns"><div class="wf-col" id="wf-col-2"' in html
    assert 'id="wf-node-next"' in html
    assert "2 / 4 done" in html
    await ws.disconnect()


async def test_a_run_with_no_relatives_gets_its_graph_when_the_first_one_joins():
    await publish(EventType.TASK_SENT, task_id="solo", name=NAME, data={"root_id": "solo"})
    await sync_to_async(record_all, thread_sensitive=False)()
    ws = await connect("/ws/page/?view=detail&task=solo")
    started = await publish(EventType.TASK_STARTED, task_id="solo", name=NAME, worker="celery@box")
    html = await frames_until(ws, started["id"])
    assert "workflow-graph" not in html  # alone: no graph
    kid = await publish(
        EventType.TASK_SENT, task_id="kid", name=NAME, data={"root_id": "solo", "parent_id": "solo"}
    )
    html = await frames_until(ws, kid["id"])
    assert 'id="workflow-graph" data-testid="workflow-graph" hx-swap-oob="true"' in html
    assert html.index('id="wf-node-solo"') < html.index('id="wf-col-1"') < html.index('id="wf-node-kid"')
    await ws.disconnect()
