"""The failures inbox's socket (/ws/page/?view=failures): each run that fails adds one failure
to its group, once, live and on catch-up."""

import re

from asgiref.sync import sync_to_async

from celery_live.log import publishing
from celery_live.runs.failures import dom_id
from tests.celery_live.stream.sockets import connect, frames_until

FEED = 'hx-swap-oob="beforeend:#failure-feed"'


def fail(task_id, exception, again=False):
    if not again:
        publishing.publish("task.sent", task_id=task_id, name="t")
    return publishing.publish("task.failed", task_id=task_id, name="t", data={"exception": exception})


async def test_each_failure_reaches_the_inbox_once_as_one_failure_of_its_group():
    ws = await connect("/ws/page/?view=failures")
    await sync_to_async(fail)("a", "DemoTaskError: Failed at iteration 2 of 3")
    await sync_to_async(fail)("b", "DemoTaskError: Failed at iteration 5 of 6")
    await sync_to_async(fail)("a", "DemoTaskError: Failed at iteration 2 of 3", again=True)  # ended already
    last = await sync_to_async(publishing.publish)("task.succeeded", task_id="c", name="t")
    text = await frames_until(ws, last["id"])
    group = dom_id("DemoTaskError: Failed at iteration <n> of <n>")
    assert text.count(FEED) == 2
    assert text.count(f'data-group="{group}"') == 2
    assert re.findall(r'data-count="(\d+)"', text) == ["1", "1"]
    assert '<code class="failure__name">t</code>' in text
    await ws.disconnect()


async def test_a_reconnecting_inbox_gets_the_failures_after_its_cursor_only():
    before = await sync_to_async(fail)("old", "E: old")
    missed = await sync_to_async(fail)("new", "E: new")
    ws = await connect(f"/ws/page/?view=failures&since={before['id']}")
    text = await frames_until(ws, missed["id"])
    assert text.count(FEED) == 1
    assert "E: new" in text
    assert "E: old" not in text
    await ws.disconnect()
